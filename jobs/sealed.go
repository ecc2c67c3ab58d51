package jobs

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// A secret reads back as its sealed form, never its value: the stored
// ciphertext in a self-describing armour,
//
//	jobfs-sealed:v1:<job shortname>:<runtime>:<base64 of nonce, ciphertext, tag>
//
// followed by a newline. The key that sealed it is derived from the master
// key, the job's id and the runtime type, and the variable's name is the
// AEAD's additional data (crypt.Sealer), so the text opens only for this
// job, this name and this master key. Writing it back restores the secret
// unchanged (the same ciphertext is stored); anywhere else it is refused
// with the reason. So tar, rsync -a and grep -r copy a job with secrets out
// and back in, and no plaintext leaves the daemon.

// SealedPrefix starts every sealed form; a written value that starts with
// it is taken as one.
const SealedPrefix = "jobfs-sealed:"

const sealedVersion = "v1"

// MaxSealedText bounds a written sealed form: the armour of the largest
// value, its nonce and tag, and a newline.
var MaxSealedText = len(SealedPrefix+sealedVersion+":") + 64 + 1 + 16 + 1 +
	base64.StdEncoding.EncodedLen(MaxEnvValue+24+16) + 2

// armour writes a stored value in its sealed form, without the newline.
func armour(jobID string, e sealedEnv) string {
	return SealedPrefix + sealedVersion + ":" + jobID + ":" + e.Runtime + ":" + base64.StdEncoding.EncodeToString(e.Sealed)
}

// unarmour parses a sealed form: the job it names and the stored value.
func unarmour(text string) (jobID string, e sealedEnv, err error) {
	text = strings.TrimRight(text, " \t\r\n")
	rest, ok := strings.CutPrefix(text, SealedPrefix)
	if !ok {
		return "", e, errors.New("not a sealed form")
	}
	parts := strings.SplitN(rest, ":", 4)
	if len(parts) != 4 || parts[0] != sealedVersion {
		return "", e, fmt.Errorf("not a sealed form this jobfs reads: expected %s%s:<job>:<runtime>:<base64>", SealedPrefix, sealedVersion)
	}
	sealed, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return "", e, errors.New("the sealed form's base64 is damaged")
	}
	return parts[1], sealedEnv{Runtime: parts[2], Sealed: sealed}, nil
}

// IsSealedForm reports whether written bytes are a sealed form rather
// than a value.
func IsSealedForm(b []byte) bool { return bytes.HasPrefix(b, []byte(SealedPrefix)) }

// maySeal reports whether the start of a file being written may still be
// a sealed form.
func maySeal(head []byte) bool {
	n := min(len(head), len(SealedPrefix))
	return n > 0 && bytes.Equal(head[:n], []byte(SealedPrefix[:n]))
}

// SealedEnv returns what a read of config/env/name gives: its sealed form
// and a newline.
func (m *Manager) SealedEnv(jobID, name string) (string, error) {
	envs, err := m.envs(jobID)
	if err != nil {
		return "", err
	}
	e, ok := envs[name]
	if !ok {
		return "", errorf(ErrNotFound, "config/env/%s: not set", name)
	}
	return armour(jobID, e) + "\n", nil
}

// SealedEnvSize is the size of that read, for stat.
func (m *Manager) SealedEnvSize(jobID, name string) int {
	v, err := m.SealedEnv(jobID, name)
	if err != nil {
		return 0
	}
	return len(v)
}

// WriteEnv stores what was written to config/env/name: a sealed form read
// from this job is restored as it was, anything else is a new value.
func (m *Manager) WriteEnv(jobID, name string, written []byte) error {
	if IsSealedForm(written) {
		return m.restoreEnv(jobID, name, string(written))
	}
	return m.setEnv(jobID, name, written)
}

// CheckEnvWrite refuses a write that would make the file larger than a
// value (or, for a sealed form, its armour) can be; head is the start of
// what the file holds with this write.
func (m *Manager) CheckEnvWrite(jobID, name string, head []byte, size int) error {
	if maySeal(head) {
		if size > MaxSealedText {
			return m.reject(jobID, "config/env/"+name, errorf(ErrTooLarge, "config/env/%s: %d bytes is longer than any sealed form (at most %d)", name, size, MaxSealedText))
		}
		return nil
	}
	return m.checkEnvValue(jobID, name, size)
}

// CheckSealedForm judges a sealed form as soon as it is complete (it
// ends with its newline: no other newline is in it), so that a refusal
// reaches write() and the shell's echo or cp reports it; a form written
// without its newline is judged when the file is closed.
func (m *Manager) CheckSealedForm(jobID, name string, written []byte) error {
	if !IsSealedForm(written) || !bytes.HasSuffix(written, []byte("\n")) {
		return nil
	}
	_, err := m.openSealed(jobID, name, string(written))
	return err
}

// restoreEnv stores a sealed form again after checking that it opens for
// this job, name and master key; it is never decrypted for anything else.
func (m *Manager) restoreEnv(jobID, name, text string) error {
	what := "config/env/" + name
	e, err := m.openSealed(jobID, name, text)
	if err != nil {
		return err
	}
	if err := m.putEnv(jobID, name, e); err != nil {
		return fmt.Errorf("store %s: %w", what, err)
	}
	m.event(jobID, "%s restored from its sealed form (encrypted)", what)
	return nil
}

// openSealed parses a sealed form and checks that it opens for this job,
// name and master key; a refusal is logged.
func (m *Manager) openSealed(jobID, name, text string) (sealedEnv, error) {
	what := "config/env/" + name
	if err := CheckEnvName(name); err != nil {
		return sealedEnv{}, m.reject(jobID, what, err)
	}
	from, e, err := unarmour(text)
	if err != nil {
		return e, m.reject(jobID, what, errorf(ErrInvalid, "%s: %v", what, err))
	}
	if from != jobID {
		return e, m.reject(jobID, what, errorf(ErrInvalid, "%s: sealed for job %s, not this one (%s): a sealed value opens only in the job it was set in; write the value itself", what, from, jobID))
	}
	if m.sealer == nil {
		return e, errorf(ErrPermission, "%s: secrets are not available (no master key)", what)
	}
	plain, err := m.sealer.Open(jobID, e.Runtime, name, e.Sealed)
	clear(plain) // only the check was wanted
	if err != nil {
		return e, m.reject(jobID, what, errorf(ErrInvalid, "%s: the sealed form does not open here: sealed under another master key, for another name, or altered; write the value itself", what))
	}
	return e, nil
}
