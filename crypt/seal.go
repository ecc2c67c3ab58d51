package crypt

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealedOverhead is what sealing adds to a value: the nonce and the tag.
const sealedOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Sealer seals env values with XChaCha20-Poly1305 under a key derived with
// HKDF-SHA256 from the master key, the job id and the job's runtime type. A
// sealed value is a random 24-byte nonce followed by the ciphertext and tag;
// the variable's name is the additional data. Safe for concurrent use.
type Sealer struct {
	master [MasterKeySize]byte
}

// NewSealer returns a Sealer for a 32-byte master key; it keeps a copy.
func NewSealer(master []byte) (*Sealer, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(master), MasterKeySize)
	}
	s := &Sealer{}
	copy(s.master[:], master)
	return s, nil
}

// Seal encrypts plaintext for the variable name of job jobID with runtime
// type runtime.
func (s *Sealer) Seal(jobID, runtime, name string, plaintext []byte) ([]byte, error) {
	aead, err := s.aead(jobID, runtime)
	if err != nil {
		return nil, err
	}
	out := make([]byte, chacha20poly1305.NonceSizeX, sealedOverhead+len(plaintext))
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out, plaintext, []byte(name)), nil
}

// Open decrypts a value sealed by Seal with the same job id, runtime type
// and name under the same master key. Every failure wraps ErrOpen.
func (s *Sealer) Open(jobID, runtime, name string, sealed []byte) ([]byte, error) {
	if len(sealed) < sealedOverhead {
		return nil, fmt.Errorf("%s: %w: %d bytes, shorter than nonce and tag (%d)", name, ErrOpen, len(sealed), sealedOverhead)
	}
	aead, err := s.aead(jobID, runtime)
	if err != nil {
		return nil, err
	}
	nonce, box := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	plain, err := aead.Open(nil, nonce, box, []byte(name))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, ErrOpen)
	}
	return plain, nil
}

// aead derives the key of one job and runtime type. Each part of the HKDF
// info is length-prefixed, so no two (job, runtime) pairs share a key.
func (s *Sealer) aead(jobID, runtime string) (cipher.AEAD, error) {
	info := []byte("jobfs env v1")
	for _, part := range []string{jobID, runtime} {
		info = binary.AppendUvarint(info, uint64(len(part)))
		info = append(info, part...)
	}
	key, err := hkdf.Key(sha256.New, s.master[:], nil, string(info), chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.NewX(key)
}
