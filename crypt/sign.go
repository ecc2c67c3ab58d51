package crypt

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Signatures (Horus): a job's canonical form is signed with ed25519; a
// signature line reads `ed25519:<base64 public key> <base64 signature>`.

const (
	sigPrefix = "ed25519:"
	keyPrefix = "ed25519-private:"
)

// ErrBadSignature is returned by Verify for a signature that does not match.
var ErrBadSignature = errors.New("signature does not match")

// Signature is one parsed signature line.
type Signature struct {
	Public ed25519.PublicKey
	Sig    []byte
}

// PublicLine is how a public key is written: `ed25519:<base64>` (the first
// field of a signature line, and one line of a trusted-keys file).
func PublicLine(pub ed25519.PublicKey) string {
	return sigPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublic reads `ed25519:<base64>`.
func ParsePublic(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), sigPrefix)
	if !ok {
		return nil, fmt.Errorf("%q: a public key starts with %s", s, sigPrefix)
	}
	pub, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q: not a base64 ed25519 public key", s)
	}
	return ed25519.PublicKey(pub), nil
}

// ParseSignatures reads a signatures file: one line per signer; blank
// lines and # comments are skipped.
func ParseSignatures(text string) ([]Signature, error) {
	var out []Signature
	for i, line := range strings.Split(text, "\n") {
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: expected `ed25519:<public key> <signature>`", i+1)
		}
		pub, err := ParsePublic(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		sig, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil || len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("line %d: not a base64 ed25519 signature", i+1)
		}
		out = append(out, Signature{Public: pub, Sig: sig})
	}
	return out, nil
}

// ParseTrusted reads a trusted-keys file: one `ed25519:<base64>` per line,
// blank lines and # comments skipped.
func ParseTrusted(text string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for i, line := range strings.Split(text, "\n") {
		if k := strings.IndexByte(line, '#'); k >= 0 {
			line = line[:k]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pub, err := ParsePublic(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		out = append(out, pub)
	}
	return out, nil
}

// LoadTrusted reads the trusted-keys file at path. A file with no key
// (empty, or only comments) is refused: taken as is, it would make every
// run fail, and an operator who wrote it meant to trust someone.
func LoadTrusted(path string) ([]ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := ParseTrusted(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key (only blank lines and comments): add the public key line that `jobfs keygen -o FILE` prints (ed25519:<base64>), then start again", path)
	}
	return keys, nil
}

// Verify checks the signature over msg.
func (s Signature) Verify(msg []byte) error {
	if !ed25519.Verify(s.Public, msg, s.Sig) {
		return ErrBadSignature
	}
	return nil
}

// Line is the signature as written in config/signatures.
func (s Signature) Line() string {
	return PublicLine(s.Public) + " " + base64.StdEncoding.EncodeToString(s.Sig)
}

// Sign signs msg with priv.
func Sign(priv ed25519.PrivateKey, msg []byte) Signature {
	return Signature{Public: priv.Public().(ed25519.PublicKey), Sig: ed25519.Sign(priv, msg)}
}

// WriteNewKey makes a key pair, writes the private key to path (mode 0600,
// never over an existing file) and returns the public key.
func WriteNewKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s exists: refusing to overwrite a key", path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "%s%s\n", keyPrefix, base64.StdEncoding.EncodeToString(priv.Seed())); err != nil {
		_ = f.Close() // the write error is the one to report
		return nil, err
	}
	return pub, f.Close()
}

// ReadKey reads a private key written by WriteNewKey.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b64, ok := strings.CutPrefix(strings.TrimSpace(string(b)), keyPrefix)
	if !ok {
		return nil, fmt.Errorf("%s: not a jobfs key (made by jobfs keygen)", path)
	}
	seed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: damaged key", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
