package jobs

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jobfs/jobfs/crypt"
)

// SignedFields are the settings a signature covers, in canonical order.
// The runtime's program (chains or script) is chosen by type; env names
// (never values) follow. The signatures themselves are never signed.
// The workflow settings come last (see optionalSigned).
var SignedFields = []string{"config/type", "config/chains", "config/script", "config/timeout",
	"config/limits/cpu", "config/limits/io", "config/limits/memory", "config/limits/pids",
	"config/retries", "config/on_failure", "config/on_success", "config/after"}

// optionalSigned are signed fields added after signatures existed: each is
// in the canonical form only when it differs from its default, so a
// signature made before it existed stays valid until it is set.
var optionalSigned = map[string]bool{"config/retries": true, "config/on_failure": true, "config/on_success": true,
	"config/after": true}

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
		if st, _ := SettingFor(f); optionalSigned[f] && (values[f] == "" || values[f] == st.Default) {
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

// KeyRing holds the keys of --trusted-keys. The daemon replaces them on
// SIGHUP while runs are checked: a check reads one set, never a mix. A
// nil KeyRing trusts no one and enforces nothing (no --trusted-keys); a
// ring, even one emptied, enforces (a run then needs a trusted signature
// that cannot exist, so nothing unsigned ever runs).
type KeyRing struct {
	keys atomic.Pointer[[]ed25519.PublicKey]
}

// NewKeyRing returns a ring holding a copy of keys.
func NewKeyRing(keys []ed25519.PublicKey) *KeyRing {
	r := &KeyRing{}
	r.Set(keys)
	return r
}

// Set replaces the keys; checks that started before keep the old set.
func (r *KeyRing) Set(keys []ed25519.PublicKey) {
	cp := append([]ed25519.PublicKey(nil), keys...)
	r.keys.Store(&cp)
}

// Keys returns the current keys; nil for a nil ring.
func (r *KeyRing) Keys() []ed25519.PublicKey {
	if r == nil {
		return nil
	}
	if p := r.keys.Load(); p != nil {
		return *p
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
	enforce := m.opts.TrustedKeys != nil
	keys := m.opts.TrustedKeys.Keys() // one set for the whole check
	if len(sigs) == 0 && !enforce {
		return nil
	}
	if len(sigs) == 0 {
		return fmt.Errorf("signature check failed: the job is not signed (jobfs sign -k KEY MOUNT/job) and --trusted-keys requires it")
	}
	msg := c.canonical()
	trustedSigner, valid := false, false
	for _, s := range sigs {
		ok := s.Verify(msg) == nil
		if !enforce {
			if !ok {
				return fmt.Errorf("signature check failed: config changed since it was signed by %s", crypt.PublicLine(s.Public))
			}
			continue
		}
		if trusted(keys, s.Public) {
			trustedSigner = true
			valid = valid || ok
		}
	}
	switch {
	case !enforce, valid:
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
