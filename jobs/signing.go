package jobs

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"

	"github.com/jobfs/jobfs/crypt"
)

// SignedFields are the settings a signature covers, in canonical order.
// The runtime's program (chains or script) is chosen by type; env names
// (never values) follow. The signatures themselves are never signed.
var SignedFields = []string{"config/type", "config/chains", "config/script", "config/timeout",
	"config/limits/cpu", "config/limits/io", "config/limits/memory", "config/limits/pids"}

// CanonicalForm serialises a job's signed fields deterministically: one
// `<name> <length>\n<value>\n` record per field, in SignedFields order, then
// `env <length>\n<names joined by ,>\n`. values holds the normalised value of
// each field (as stored, or as read through the mount and normalised).
func CanonicalForm(values map[string]string, envNames []string) []byte {
	var b strings.Builder
	b.WriteString("jobfs-job-v1\n")
	field := func(name, v string) {
		b.WriteString(name + " " + strconv.Itoa(len(v)) + "\n" + v + "\n")
	}
	typ := values["config/type"]
	for _, f := range SignedFields {
		if (f == "config/chains" && typ != "chains") || (f == "config/script" && typ != "script") {
			continue
		}
		field(f, values[f])
	}
	field("env", strings.Join(envNames, ","))
	return []byte(b.String())
}

func checkSignatures(_ *Manager, _ Job, v string) error {
	if _, err := crypt.ParseSignatures(v); err != nil {
		return errorf(ErrInvalid, "config/signatures: %v", err)
	}
	return nil
}

// checkSigned decides whether a run of snapshot c may start: with trusted
// keys, it needs a valid signature by one of them over c; without, any
// signature present must be valid. The run then executes c, never a
// fresher read of the settings.
func (m *Manager) checkSigned(c runConfig) error {
	sigs, err := crypt.ParseSignatures(c.values["config/signatures"])
	if err != nil {
		return fmt.Errorf("signature check failed: config/signatures: %v", err)
	}
	if len(sigs) == 0 && len(m.opts.TrustedKeys) == 0 {
		return nil
	}
	if len(sigs) == 0 {
		return fmt.Errorf("signature check failed: the job is not signed (jobfs sign -k KEY MOUNT/job) and --trusted-keys requires it")
	}
	msg := c.canonical()
	trustedSigner, valid := false, false
	for _, s := range sigs {
		ok := s.Verify(msg) == nil
		if len(m.opts.TrustedKeys) == 0 {
			if !ok {
				return fmt.Errorf("signature check failed: config changed since it was signed by %s", crypt.PublicLine(s.Public))
			}
			continue
		}
		if trusted(m.opts.TrustedKeys, s.Public) {
			trustedSigner = true
			valid = valid || ok
		}
	}
	switch {
	case len(m.opts.TrustedKeys) == 0, valid:
		return nil
	case trustedSigner:
		return fmt.Errorf("signature check failed: config changed since it was signed")
	}
	return fmt.Errorf("signature check failed: no signature by a trusted key")
}

func trusted(keys []ed25519.PublicKey, pub ed25519.PublicKey) bool {
	for _, k := range keys {
		if k.Equal(pub) {
			return true
		}
	}
	return false
}
