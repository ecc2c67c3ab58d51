package jobs

import (
	"crypto/ed25519"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestSealedEnvRoundTrip: the sealed form of a secret holds no byte of the
// value, writes back to the same job and name unchanged (the same
// ciphertext), and is refused in another job, under another name, when
// altered, and under another master key.
func TestSealedEnvRoundTrip(t *testing.T) {
	m := sigManager(t)
	j := scriptJob(t, m, "a", "#!/bin/sh\ntrue\n")
	other := scriptJob(t, m, "b", "#!/bin/sh\ntrue\n")
	mustOK(t, m.WriteEnv(j.ID, "token", []byte("s3cret-value\n")))
	form, err := m.SealedEnv(j.ID, "token")
	mustOK(t, err)
	if !strings.HasPrefix(form, "jobfs-sealed:v1:"+j.ID+":script:") || !strings.HasSuffix(form, "\n") || strings.Contains(form, "s3cret") {
		t.Fatalf("SealedEnv = %q", form)
	}
	if got := m.SealedEnvSize(j.ID, "token"); got != len(form) {
		t.Errorf("SealedEnvSize = %d, want %d", got, len(form))
	}
	mustOK(t, m.DeleteEnv(j.ID, "token"))
	mustOK(t, m.CheckSealedForm(j.ID, "token", []byte(form)))
	mustOK(t, m.WriteEnv(j.ID, "token", []byte(form)))
	if again, _ := m.SealedEnv(j.ID, "token"); again != form {
		t.Errorf("after the restore SealedEnv = %q, want %q", again, form)
	}
	envs, err := m.envs(j.ID)
	mustOK(t, err)
	env, _, err := m.openEnv(j.ID, "script", envs)
	mustOK(t, err)
	if strings.Join(env, " ") != "token=s3cret-value TOKEN=s3cret-value" {
		t.Errorf("the restored secret opens as %q", env)
	}

	altered := []byte(form)
	mid := strings.LastIndex(form, ":") + 8 // a base64 digit of the ciphertext, changed to another digit
	if altered[mid] == 'A' {
		altered[mid] = 'B'
	} else {
		altered[mid] = 'A'
	}
	for _, c := range []struct {
		job, name string
		text      []byte
		reason    string
	}{
		{other.ID, "token", []byte(form), "sealed for job " + j.ID + ", not this one (" + other.ID + ")"},
		{j.ID, "renamed", []byte(form), "the sealed form does not open here"},
		{j.ID, "token", altered, "the sealed form does not open here"},
		{j.ID, "token", []byte(strings.Replace(form, ":v1:", ":v9:", 1)), "not a sealed form this jobfs reads"},
		{other.ID, "token", []byte(strings.Replace(form, j.ID, other.ID, 1)), "the sealed form does not open here"},
	} {
		err := m.CheckSealedForm(c.job, c.name, c.text)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("CheckSealedForm(%s, %s) = %v, want ErrInvalid with %q", c.job, c.name, err, c.reason)
		}
		if err := m.WriteEnv(c.job, c.name, c.text); err == nil {
			t.Errorf("WriteEnv(%s, %s) of a foreign sealed form succeeded", c.job, c.name)
		}
	}
	if m.HasEnv(other.ID, "token") || m.HasEnv(j.ID, "renamed") {
		t.Error("a refused sealed form was stored")
	}
	if log, err := os.ReadFile(m.JobLogPath(other.ID)); err != nil || !strings.Contains(string(log), "config/env/token rejected: sealed for job "+j.ID) {
		t.Errorf("the other job's log = %q (%v), want the refusal", log, err)
	}

	// Another master key: the same job id, nothing opens.
	m2 := sigManager(t)
	j2 := scriptJob(t, m2, "a", "#!/bin/sh\ntrue\n")
	text := strings.Replace(form, j.ID, j2.ID, 1)
	if err := m2.WriteEnv(j2.ID, "token", []byte(text)); err == nil || !strings.Contains(err.Error(), "does not open here") {
		t.Errorf("a sealed form under another master key: %v", err)
	}
}

// TestSealedFormPrefix: a value is taken as a sealed form only when it
// starts with the whole prefix; the size cap follows what it may become.
func TestSealedFormPrefix(t *testing.T) {
	m := sigManager(t)
	j := scriptJob(t, m, "p", "#!/bin/sh\ntrue\n")
	mustOK(t, m.WriteEnv(j.ID, "short", []byte("jobfs")))
	if !m.HasEnv(j.ID, "short") {
		t.Error("a value that is a prefix of the armour was not stored as a value")
	}
	mustOK(t, m.CheckEnvWrite(j.ID, "big", []byte(SealedPrefix), MaxEnvValue+100))
	if err := m.CheckEnvWrite(j.ID, "big", []byte("plain"), MaxEnvValue+100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a plain value past the cap: %v, want ErrTooLarge", err)
	}
	if err := m.CheckEnvWrite(j.ID, "big", []byte(SealedPrefix), MaxSealedText+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a sealed form past its cap: %v, want ErrTooLarge", err)
	}
}

// TestKeyRingReplaced: a run checked after Set sees the new keys; a nil
// ring enforces nothing, an emptied one refuses every run.
func TestKeyRingReplaced(t *testing.T) {
	a, b := sigKey(t), sigKey(t)
	m := sigManager(t, sigPublic(a))
	j := scriptJob(t, m, "ring", "#!/bin/sh\ntrue\n")
	sigSign(t, m, j.ID, b)
	check := func() error {
		cfg, err := m.snapshot(j.ID)
		mustOK(t, err)
		return m.checkSigned(cfg)
	}
	if err := check(); err == nil || !strings.Contains(err.Error(), "no signature by a trusted key") {
		t.Errorf("signed by b, a trusted: %v", err)
	}
	m.opts.TrustedKeys.Set([]ed25519.PublicKey{sigPublic(a), sigPublic(b)})
	mustOK(t, check())
	m.opts.TrustedKeys.Set(nil)
	if err := check(); err == nil {
		t.Error("an emptied ring let the run start")
	}
	var none *KeyRing
	if none.Keys() != nil {
		t.Error("a nil ring has keys")
	}
}
