package jobs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobfs/jobfs/crypt"
)

// sigBase is a script job's signed fields, every one set.
func sigBase(typ string) map[string]string {
	return map[string]string{
		"config/type":          typ,
		"config/chains":        "fetch | clean\n",
		"config/script":        "#!/bin/sh\necho hi\n",
		"config/timeout":       "1h",
		"config/limits/cpu":    "100",
		"config/limits/io":     "0",
		"config/limits/memory": "512",
		"config/limits/pids":   "512",
	}
}

func sigClone(v map[string]string) map[string]string {
	out := make(map[string]string, len(v))
	for k, x := range v {
		out[k] = x
	}
	return out
}

// TestCanonicalFormGolden pins the format: a signature made by one version
// of jobfs must verify in the next.
func TestCanonicalFormGolden(t *testing.T) {
	got := string(CanonicalForm(sigBase("script"), []string{"api_key", "token"}))
	want := "jobfs-job-v1\n" +
		"config/type 6\nscript\n" +
		"config/script 18\n#!/bin/sh\necho hi\n\n" +
		"config/timeout 2\n1h\n" +
		"config/limits/cpu 3\n100\n" +
		"config/limits/io 1\n0\n" +
		"config/limits/memory 3\n512\n" +
		"config/limits/pids 3\n512\n" +
		"env 13\napi_key,token\n"
	if got != want {
		t.Errorf("CanonicalForm =\n%q\nwant\n%q", got, want)
	}
	got = string(CanonicalForm(sigBase("chains"), nil))
	if !strings.HasPrefix(got, "jobfs-job-v1\nconfig/type 6\nchains\nconfig/chains 14\nfetch | clean\n\nconfig/timeout 2\n") ||
		!strings.HasSuffix(got, "env 0\n\n") {
		t.Errorf("CanonicalForm of a chains job = %q", got)
	}
}

// TestCanonicalFormStable: the same settings give the same bytes whatever
// the order the map was filled in, and settings that are not signed
// (signatures included) change nothing.
func TestCanonicalFormStable(t *testing.T) {
	for _, typ := range []string{"script", "chains"} {
		base := sigBase(typ)
		want := CanonicalForm(base, []string{"a", "b"})
		keys := make([]string, 0, len(base))
		for k := range base {
			keys = append(keys, k)
		}
		for i := 0; i < 50; i++ {
			mrand.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
			v := map[string]string{}
			for _, k := range keys {
				v[k] = base[k]
			}
			if got := CanonicalForm(v, []string{"a", "b"}); !bytes.Equal(got, want) {
				t.Fatalf("%s: filled in order %v: CanonicalForm =\n%q\nwant\n%q", typ, keys, got, want)
			}
		}
		extra := sigClone(base)
		for k, x := range map[string]string{
			"config/signatures": "ed25519:AAAA sig\n",
			"config/enabled":    "false",
			"config/schedule":   "*/5 * * * *",
			"config/keep":       "3",
			"config/overlap":    "queue",
			"description":       "changed",
			"name":              "renamed",
		} {
			extra[k] = x
		}
		if got := CanonicalForm(extra, []string{"a", "b"}); !bytes.Equal(got, want) {
			t.Errorf("%s: settings that are not signed changed the canonical form:\n%q\nwant\n%q", typ, got, want)
		}
	}
}

// TestCanonicalFormChanges: a change to any signed field changes the form,
// and no two of the changes give the same form (the length-prefixed
// records leave no room for one field's value to pass for another's).
func TestCanonicalFormChanges(t *testing.T) {
	type change struct {
		what string
		typ  string
		set  func(v map[string]string)
		env  []string
	}
	envAB := []string{"a", "b"}
	set := func(k, x string) func(map[string]string) { return func(v map[string]string) { v[k] = x } }
	var changes []change
	for _, typ := range []string{"script", "chains"} {
		program := "config/script"
		if typ == "chains" {
			program = "config/chains"
		}
		changes = append(changes,
			change{"type", typ, set("config/type", map[string]string{"script": "chains", "chains": "script"}[typ]), envAB},
			change{"program", typ, set(program, "#!/bin/sh\necho bye\n"), envAB},
			change{"program trailing newline", typ, func(v map[string]string) { v[program] = strings.TrimSuffix(v[program], "\n") }, envAB},
			change{"program swallows timeout", typ, func(v map[string]string) { v[program] += "\nconfig/timeout 2\n1h"; v["config/timeout"] = "" }, envAB},
			change{"timeout", typ, set("config/timeout", "30s"), envAB},
			change{"limits/cpu", typ, set("config/limits/cpu", "50"), envAB},
			change{"limits/io", typ, set("config/limits/io", "1000000"), envAB},
			change{"limits/memory", typ, set("config/limits/memory", "256"), envAB},
			change{"limits/pids", typ, set("config/limits/pids", "64"), envAB},
			change{"limits moved", typ, func(v map[string]string) { v["config/limits/cpu"], v["config/limits/io"] = "10", "00" }, envAB},
			change{"env added", typ, nil, []string{"a", "b", "c"}},
			change{"env removed", typ, nil, []string{"a"}},
			change{"env none", typ, nil, nil},
			change{"env renamed", typ, nil, []string{"a", "bb"}},
			change{"env split", typ, nil, []string{"ab"}},
		)
	}
	// Within one type, the base and every change differ pairwise. (Across
	// types they need not: a type flip of one base is the other's base.)
	seen := map[string]map[string]string{}
	for _, c := range changes {
		if seen[c.typ] == nil {
			seen[c.typ] = map[string]string{string(CanonicalForm(sigBase(c.typ), envAB)): "the base"}
		}
		v := sigBase(c.typ)
		if c.set != nil {
			c.set(v)
		}
		got := string(CanonicalForm(v, c.env))
		if other, dup := seen[c.typ][got]; dup {
			t.Errorf("%s job: %s gives the same canonical form as %s:\n%q", c.typ, c.what, other, got)
			continue
		}
		seen[c.typ][got] = c.what
	}

	// The program a job does not run is not signed.
	script, chains := sigBase("script"), sigBase("chains")
	for _, tc := range []struct {
		v     map[string]string
		field string
	}{{script, "config/chains"}, {chains, "config/script"}} {
		v := sigClone(tc.v)
		v[tc.field] = "something else\n"
		if !bytes.Equal(CanonicalForm(v, envAB), CanonicalForm(tc.v, envAB)) {
			t.Errorf("a %s job: changing %s (which it does not run) changed the canonical form", tc.v["config/type"], tc.field)
		}
	}
}

// sigManager is a manager whose jobs can hold secrets, trusting keys.
func sigManager(t *testing.T, keys ...ed25519.PublicKey) testManager {
	t.Helper()
	master := make([]byte, crypt.MasterKeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	sealer, err := crypt.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	var ring *KeyRing // no keys: no --trusted-keys
	if len(keys) > 0 {
		ring = NewKeyRing(keys)
	}
	return newTestManager(t, Options{Sealer: sealer, TrustedKeys: ring})
}

func sigKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func sigPublic(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func sigCanonical(t *testing.T, m testManager, jobID string) []byte {
	t.Helper()
	c, err := m.snapshot(jobID)
	if err != nil {
		t.Fatal(err)
	}
	return c.canonical()
}

// sigSign signs the job's current config with each key, as jobfs sign does:
// one line per key in config/signatures.
func sigSign(t *testing.T, m testManager, jobID string, keys ...ed25519.PrivateKey) {
	t.Helper()
	msg := sigCanonical(t, m, jobID)
	var lines []string
	for _, k := range keys {
		lines = append(lines, crypt.Sign(k, msg).Line())
	}
	mustOK(t, m.WriteSetting(jobID, "config/signatures", strings.Join(lines, "\n")+"\n"))
}

// sigAppend adds a signature line by key over msg to config/signatures.
func sigAppend(t *testing.T, m testManager, jobID string, key ed25519.PrivateKey, msg []byte) {
	t.Helper()
	old, err := m.ReadSetting(jobID, "config/signatures")
	mustOK(t, err)
	mustOK(t, m.WriteSetting(jobID, "config/signatures", old+crypt.Sign(key, msg).Line()+"\n"))
}

// TestCanonicalOfJob: the daemon's canonical form of a job is what jobfs
// sign computes from the files of the mount, leaves out env values and
// the signatures, and does not depend on the order secrets were set in.
func TestCanonicalOfJob(t *testing.T) {
	m := sigManager(t)
	j := scriptJob(t, m, "canon", "#!/bin/sh\necho hi\n")
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "30s\n"))
	mustOK(t, m.setEnv(j.ID, "zeta", []byte("1\n")))
	mustOK(t, m.setEnv(j.ID, "alpha", []byte("2\n")))
	base := sigCanonical(t, m, j.ID)

	// What jobfs sign reads through the mount: each file, normalised.
	values := map[string]string{}
	for _, f := range SignedFields {
		raw, err := m.ReadSetting(j.ID, f)
		mustOK(t, err)
		s, _ := SettingFor(f)
		values[f] = s.Normalize(raw)
	}
	if want := CanonicalForm(values, []string{"alpha", "zeta"}); !bytes.Equal(base, want) {
		t.Errorf("canonical form of the job =\n%q\nwhat jobfs sign computes from the files =\n%q", base, want)
	}
	if !strings.HasSuffix(string(base), "env 10\nalpha,zeta\n") {
		t.Errorf("canonical form = %q, want the env names sorted at the end", base)
	}

	unchanged := func(what string) {
		t.Helper()
		if got := sigCanonical(t, m, j.ID); !bytes.Equal(got, base) {
			t.Errorf("after %s the canonical form changed:\n%q\nwas\n%q", what, got, base)
		}
	}
	mustOK(t, m.setEnv(j.ID, "alpha", []byte("another value\n")))
	unchanged("a new env value")
	sigSign(t, m, j.ID, sigKey(t))
	unchanged("signing")
	mustOK(t, m.WriteSetting(j.ID, "config/enabled", "false\n"))
	mustOK(t, m.WriteSetting(j.ID, "description", "not signed\n"))
	unchanged("changing settings that are not signed")

	mustOK(t, m.setEnv(j.ID, "beta", []byte("x")))
	if got := sigCanonical(t, m, j.ID); bytes.Equal(got, base) {
		t.Error("a new env name did not change the canonical form")
	}
	mustOK(t, m.DeleteEnv(j.ID, "beta"))
	unchanged("deleting the new env name again")
	mustOK(t, m.WriteSetting(j.ID, "config/limits/pids", "64\n"))
	if got := sigCanonical(t, m, j.ID); bytes.Equal(got, base) {
		t.Error("a new config/limits/pids did not change the canonical form")
	}
}

// TestSignatureVerify: crypt's ed25519 signatures over a canonical form.
func TestSignatureVerify(t *testing.T) {
	key, other := sigKey(t), sigKey(t)
	msg := CanonicalForm(sigBase("script"), []string{"token"})
	sig := crypt.Sign(key, msg)
	if err := sig.Verify(msg); err != nil {
		t.Fatalf("a fresh signature does not verify: %v", err)
	}
	for i := range msg {
		tampered := bytes.Clone(msg)
		tampered[i] ^= 0x01
		if err := sig.Verify(tampered); !errors.Is(err, crypt.ErrBadSignature) {
			t.Fatalf("a message with byte %d flipped: Verify = %v, want ErrBadSignature", i, err)
		}
	}
	if err := sig.Verify(append(bytes.Clone(msg), '\n')); !errors.Is(err, crypt.ErrBadSignature) {
		t.Errorf("a message with a byte added: Verify = %v, want ErrBadSignature", err)
	}
	badSig := crypt.Signature{Public: sig.Public, Sig: bytes.Clone(sig.Sig)}
	badSig.Sig[10] ^= 0x80
	if err := badSig.Verify(msg); !errors.Is(err, crypt.ErrBadSignature) {
		t.Errorf("a flipped signature bit: Verify = %v, want ErrBadSignature", err)
	}
	otherKey := crypt.Signature{Public: sigPublic(other), Sig: sig.Sig}
	if err := otherKey.Verify(msg); !errors.Is(err, crypt.ErrBadSignature) {
		t.Errorf("the signature under another public key: Verify = %v, want ErrBadSignature", err)
	}

	// Lines round-trip, several signers, comments and blank lines.
	sig2 := crypt.Sign(other, msg)
	text := "# signers\n" + sig.Line() + "\n\n" + sig2.Line() + "  # second\n"
	sigs, err := crypt.ParseSignatures(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 || !sigs[0].Public.Equal(sig.Public) || !sigs[1].Public.Equal(sig2.Public) {
		t.Fatalf("ParseSignatures(%q) = %d signatures, want the two lines in order", text, len(sigs))
	}
	for i, s := range sigs {
		if err := s.Verify(msg); err != nil {
			t.Errorf("parsed signature %d does not verify: %v", i, err)
		}
	}
	if !strings.HasPrefix(sig.Line(), crypt.PublicLine(sigPublic(key))+" ") {
		t.Errorf("Line() = %q, want it to start with the public key line", sig.Line())
	}
	for _, bad := range []string{
		crypt.PublicLine(sig.Public),                            // no signature
		sig.Line() + " extra",                                   // three fields
		strings.Replace(sig.Line(), "ed25519:", "rsa:", 1),      // another algorithm
		crypt.PublicLine(sig.Public) + " not-base64!",           // garbage
		crypt.PublicLine(sig.Public) + " " + "AAAA",             // too short
		"ed25519:AAAA " + strings.Fields(sig.Line())[1],         // short public key
		sig.Line() + "\n" + crypt.PublicLine(sig.Public) + " x", // a bad second line
	} {
		if _, err := crypt.ParseSignatures(bad); err == nil {
			t.Errorf("ParseSignatures(%q) accepted it", bad)
		}
	}

	// config/signatures refuses what does not parse, and keeps the old value.
	m := sigManager(t)
	j := scriptJob(t, m, "garbled", "#!/bin/sh\necho hi\n")
	sigSign(t, m, j.ID, key)
	before, _ := m.ReadSetting(j.ID, "config/signatures")
	if err := m.WriteSetting(j.ID, "config/signatures", "ed25519:nonsense x\n"); !errors.Is(err, ErrInvalid) {
		t.Errorf("writing a garbled signature: %v, want ErrInvalid", err)
	}
	if after, _ := m.ReadSetting(j.ID, "config/signatures"); after != before {
		t.Errorf("a refused write changed config/signatures to %q", after)
	}
}

// TestCheckSigned: whether a run may start, with and without trusted keys.
func TestCheckSigned(t *testing.T) {
	trusted, trusted2, untrusted := sigKey(t), sigKey(t), sigKey(t)
	type setup func(t *testing.T, m testManager, j Job)
	signed := func(keys ...ed25519.PrivateKey) setup {
		return func(t *testing.T, m testManager, j Job) { sigSign(t, m, j.ID, keys...) }
	}
	// stale signs with keys, then changes the timeout.
	stale := func(keys ...ed25519.PrivateKey) setup {
		return func(t *testing.T, m testManager, j Job) {
			sigSign(t, m, j.ID, keys...)
			mustOK(t, m.WriteSetting(j.ID, "config/timeout", "30s\n"))
		}
	}
	// staleThen signs with old, changes the config, then adds fresh's
	// signature over the new config.
	staleThen := func(old, fresh ed25519.PrivateKey) setup {
		return func(t *testing.T, m testManager, j Job) {
			stale(old)(t, m, j)
			sigAppend(t, m, j.ID, fresh, sigCanonical(t, m, j.ID))
		}
	}
	cases := []struct {
		name    string
		trust   []ed25519.PrivateKey
		setup   setup
		wantErr string // "" : the run may start
	}{
		{"no trusted keys, unsigned", nil, nil, ""},
		{"no trusted keys, valid signature", nil, signed(untrusted), ""},
		{"no trusted keys, stale signature", nil, stale(untrusted),
			"signature check failed: config changed since it was signed by " + crypt.PublicLine(sigPublic(untrusted))},
		{"no trusted keys, one stale among several", nil, staleThen(untrusted, trusted),
			"signature check failed: config changed since it was signed by " + crypt.PublicLine(sigPublic(untrusted))},
		{"unsigned", []ed25519.PrivateKey{trusted}, nil,
			"signature check failed: the job is not signed"},
		{"signed by the trusted key", []ed25519.PrivateKey{trusted}, signed(trusted), ""},
		{"signed by an untrusted key", []ed25519.PrivateKey{trusted}, signed(untrusted),
			"signature check failed: no signature by a trusted key"},
		{"config changed since signed", []ed25519.PrivateKey{trusted}, stale(trusted),
			"signature check failed: config changed since it was signed"},
		{"several signers, one trusted", []ed25519.PrivateKey{trusted}, signed(untrusted, trusted), ""},
		{"several signers, trusted one first", []ed25519.PrivateKey{trusted}, signed(trusted, untrusted), ""},
		{"stale untrusted, valid trusted", []ed25519.PrivateKey{trusted}, staleThen(untrusted, trusted), ""},
		{"valid untrusted, stale trusted", []ed25519.PrivateKey{trusted}, staleThen(trusted, untrusted),
			"signature check failed: config changed since it was signed"},
		{"two trusted keys, one stale", []ed25519.PrivateKey{trusted, trusted2}, staleThen(trusted, trusted2), ""},
		{"two trusted keys, the second signs", []ed25519.PrivateKey{trusted, trusted2}, signed(trusted2), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pubs []ed25519.PublicKey
			for _, k := range c.trust {
				pubs = append(pubs, sigPublic(k))
			}
			m := sigManager(t, pubs...)
			j := scriptJob(t, m, "check", "#!/bin/sh\necho hi\n")
			if c.setup != nil {
				c.setup(t, m, j)
			}
			cfg, err := m.snapshot(j.ID)
			mustOK(t, err)
			err = m.checkSigned(cfg)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("checkSigned = %v, want the run to start", err)
			case c.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), c.wantErr)):
				t.Errorf("checkSigned = %v, want an error starting %q", err, c.wantErr)
			}
		})
	}
}

// TestSignedRun: with trusted keys, an unsigned job's run fails with the
// reason and its step never runs; signed, it completes; changed, it fails.
func TestSignedRun(t *testing.T) {
	key := sigKey(t)
	m := sigManager(t, sigPublic(key))
	marker := fmt.Sprintf("step ran %d", mrand.Int())
	j := scriptJob(t, m, "signedrun", "#!/bin/sh\necho '"+marker+"'\n")

	check := func(wantStatus Status, wantErr string) {
		t.Helper()
		id := mustTrigger(t, m, j.ID, "{}")
		r := waitRun(t, m, j.ID, id)
		if r.Status != wantStatus || !strings.HasPrefix(r.Error, wantErr) {
			t.Errorf("run %d: %s %q, want %s with an error starting %q", id, r.Status, r.Error, wantStatus, wantErr)
		}
		log := readFile(t, m.RunLogPath(j.ID, id))
		if ran := strings.Contains(log, marker); ran != (wantStatus == Completed) {
			t.Errorf("run %d (%s): step ran = %v; log %q", id, r.Status, ran, log)
		}
		if wantErr != "" && !strings.Contains(log, wantErr) {
			t.Errorf("run %d: log %q, want the reason %q", id, log, wantErr)
		}
	}
	check(Failed, "signature check failed: the job is not signed")
	sigSign(t, m, j.ID, key)
	check(Completed, "")
	mustOK(t, m.WriteSetting(j.ID, "config/limits/memory", "256\n"))
	check(Failed, "signature check failed: config changed since it was signed")
}

// TestRunExecutesItsSnapshot: what a run executes comes from the snapshot
// its signature check saw, not from a later read of the settings: a
// script, timeout, limit or secret written after the snapshot is not run.
func TestRunExecutesItsSnapshot(t *testing.T) {
	key := sigKey(t)
	m := sigManager(t, sigPublic(key))
	j := scriptJob(t, m, "snapshot", "#!/bin/sh\necho signed\n")
	mustOK(t, m.setEnv(j.ID, "token", []byte("signed-secret")))
	sigSign(t, m, j.ID, key)
	c, err := m.snapshot(j.ID)
	mustOK(t, err)

	mustOK(t, m.WriteSetting(j.ID, "config/script", "#!/bin/sh\necho UNSIGNED\n"))
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "5s\n"))
	mustOK(t, m.WriteSetting(j.ID, "config/limits/memory", "64\n"))
	mustOK(t, m.setEnv(j.ID, "token", []byte("later-secret")))
	mustOK(t, m.setEnv(j.ID, "extra", []byte("later-extra")))

	mustOK(t, m.checkSigned(c))
	nodes, err := m.planRun(c, t.TempDir(), false)
	mustOK(t, err)
	if got := readFile(t, nodes[0].path); got != "#!/bin/sh\necho signed\n" {
		t.Errorf("planned script = %q, want the snapshot's", got)
	}
	if got := c.timeout(); got != time.Hour {
		t.Errorf("timeout = %s, want the snapshot's 1h", got)
	}
	if got := m.limits(c).MemoryMiB; got != 512 {
		t.Errorf("memory limit = %d, want the snapshot's 512", got)
	}
	env, _, err := m.openEnv(j.ID, c.values["config/type"], c.envs)
	mustOK(t, err)
	if want := []string{"token=signed-secret", "TOKEN=signed-secret"}; !slices.Equal(env, want) {
		t.Errorf("env = %q, want the snapshot's %q", env, want)
	}
	fresh, err := m.snapshot(j.ID)
	mustOK(t, err)
	if err := m.checkSigned(fresh); err == nil || !strings.HasPrefix(err.Error(), "signature check failed: config changed") {
		t.Errorf("checkSigned of the changed config = %v, want it refused", err)
	}
}
