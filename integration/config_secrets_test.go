//go:build linux

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Issue 14: a secret reads back as its sealed form, so backups of a job
// with secrets work and restore the secret unchanged; the sealed form is
// refused in another job, under another name and under another master key.

// sealedRE is what a read of config/env/NAME gives.
var sealedRE = regexp.MustCompile(`^jobfs-sealed:v1:([a-z2-9]{8}):(chains|script):[A-Za-z0-9+/]+=*\n$`)

// tokenCheck is a step that prints api_token (the log masks it) and exits
// 3 unless it is token; the script holds only the value's hash.
func tokenCheck(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "#!/bin/sh\necho \"token=$api_token\"\n" +
		"[ \"$(printf %s \"$api_token\" | sha256sum | cut -c1-64)\" = " + hex.EncodeToString(sum[:]) + " ] || exit 3\n"
}

// TestSecretSealedRoundTrip: tar, rsync -a and grep -r exit 0 (grep 1: no
// match) on a job with a secret; no byte of the value leaves the daemon;
// the dump restored with rsync -a, cp and tar -x sets the same sealed value
// and a step sees the original; the sealed text is refused in another job
// and under another name, each with its reason.
func TestSecretSealedRoundTrip(t *testing.T) {
	t.Parallel()
	codeNeed(t, "rsync", "tar")
	d := startDaemon(t, daemonOpts{})
	token := secRandom(t, 20)
	d.scriptJob(t, "r", tokenCheck(token))
	d.ok(t, `printf '%s' "$TOKEN" > mnt/r/config/env/api_token`, "TOKEN="+token)
	short := strings.TrimSpace(d.cat(t, "mnt/r/shortname"))

	sealed := d.cat(t, "mnt/r/config/env/api_token")
	m := sealedRE.FindStringSubmatch(sealed)
	if m == nil || m[1] != short || m[2] != "script" {
		t.Fatalf("cat config/env/api_token = %q, want jobfs-sealed:v1:%s:script:<base64>", sealed, short)
	}
	if size := d.ok(t, `stat -c %s mnt/r/config/env/api_token`); strings.TrimSpace(size) != strconv.Itoa(len(sealed)) {
		t.Errorf("stat size %s, a read gives %d bytes", size, len(sealed))
	}
	d.trigger(t, "r", "{}")
	if got := d.waitRun(t, "r", 1); got != "COMPLETED" {
		t.Fatalf("run 1: %s, log:\n%s", got, d.cat(t, "mnt/r/runs/1/log"))
	}
	d.wantFile(t, "mnt/r/runs/1/log", "token=***\n") // masking still works

	// The tools people point at folders, on the whole job.
	for _, c := range []struct {
		cmd  string
		want int
	}{
		{`tar -cf r.tar -C mnt r`, 0},
		{`rsync -a mnt/r/ dump/`, 0},
		{`grep -r -e "$TOKEN" mnt/r`, 1},
		{`grep -r -l jobfs-sealed mnt/r`, 0},
		{`grep -r -e "$TOKEN" dump r.tar`, 1}, // no plaintext in any copy
	} {
		if r := d.sh(t, c.cmd, "TOKEN="+token); r.code != c.want {
			t.Errorf("want exit %d:\n%s", c.want, r)
		}
	}
	d.wantFile(t, "dump/config/env/api_token", sealed)

	// Restore: rsync -a of the dumped config into the job after the secret
	// was removed, then cp and tar -x: each sets the very same sealed value.
	d.ok(t, `rm mnt/r/config/env/api_token`)
	d.ok(t, `rsync -a dump/config/ mnt/r/config/`)
	d.wantFile(t, "mnt/r/config/env/api_token", sealed)
	if got := secLastLog(t, d, "r"); !strings.Contains(got, "config/env/api_token restored from its sealed form") {
		t.Errorf("after the rsync restore, tail -n 1 log = %q", got)
	}
	d.ok(t, `rm mnt/r/config/env/api_token && cp dump/config/env/api_token mnt/r/config/env/`)
	d.wantFile(t, "mnt/r/config/env/api_token", sealed)
	d.ok(t, `tar -cf config.tar -C mnt/r config && rm mnt/r/config/env/api_token && tar -xf config.tar -C mnt/r`)
	d.wantFile(t, "mnt/r/config/env/api_token", sealed)
	d.trigger(t, "r", "{}")
	if got := d.waitRun(t, "r", 2); got != "COMPLETED" {
		t.Errorf("run 2 after the restores: %s (exit 3: the step saw another value), log:\n%s", got, d.cat(t, "mnt/r/runs/2/log"))
	}

	// Elsewhere the sealed text is refused, with the reason.
	d.scriptJob(t, "other", "#!/bin/sh\ntrue\n")
	d.fails(t, `cp dump/config/env/api_token mnt/other/config/env/api_token`, "Invalid argument")
	if got := secLastLog(t, d, "other"); !strings.Contains(got, "config/env/api_token rejected: sealed for job "+short+", not this one") {
		t.Errorf("sealed text of another job: tail -n 1 log = %q", got)
	}
	if got := d.ok(t, `ls -A mnt/other/config/env`); got != "" {
		t.Errorf("after the refusal, ls -A config/env = %q, want nothing", got)
	}
	d.fails(t, `cp dump/config/env/api_token mnt/r/config/env/renamed`, "Invalid argument")
	if got := secLastLog(t, d, "r"); !strings.Contains(got, "config/env/renamed rejected: the sealed form does not open here") {
		t.Errorf("sealed text under another name: tail -n 1 log = %q", got)
	}
	// A forged job id (the other job's, same key) does not open either.
	forged := strings.Replace(sealed, ":"+short+":", ":"+strings.TrimSpace(d.cat(t, "mnt/other/shortname"))+":", 1)
	d.fails(t, `printf '%s' "$F" > mnt/other/config/env/api_token`, "Invalid argument", "F="+forged)
	if got := secLastLog(t, d, "other"); !strings.Contains(got, "the sealed form does not open here") {
		t.Errorf("forged job id: tail -n 1 log = %q", got)
	}
}

// TestSecretSealedOtherKey: two daemons with their own state folders (so
// their own master keys). The sealed form of the first is refused by the
// second, even for a job with the same shortname (a copy of the first's
// state folder whose master.key was replaced).
func TestSecretSealedOtherKey(t *testing.T) {
	t.Parallel()
	d1 := startDaemon(t, daemonOpts{})
	token := secRandom(t, 16)
	d1.scriptJob(t, "k", tokenCheck(token))
	d1.ok(t, `printf '%s' "$T" > mnt/k/config/env/api_token`, "T="+token)
	sealed := d1.cat(t, "mnt/k/config/env/api_token")
	short := strings.TrimSpace(d1.cat(t, "mnt/k/shortname"))

	// The same state under another master key: the job keeps its id.
	d2 := startDaemon(t, daemonOpts{})
	d2.stop(t)
	d1.stop(t)
	d2.ok(t, `rm -rf state && cp -a "$S" state && rm state/master.key`, "S="+d1.state)
	d2.restart(t)
	d1.restart(t)
	if got := strings.TrimSpace(d2.cat(t, "mnt/k/shortname")); got != short {
		t.Fatalf("the copied job's shortname is %q, want %q", got, short)
	}
	d2.fails(t, `printf '%s' "$S" > mnt/k/config/env/api_token`, "Invalid argument", "S="+sealed)
	if got := secLastLog(t, d2, "k"); !strings.Contains(got, "the sealed form does not open here: sealed under another master key") {
		t.Errorf("under another master key: tail -n 1 log = %q", got)
	}
	// The first daemon, same key, takes it back unchanged.
	d1.ok(t, `printf '%s' "$S" > mnt/k/config/env/api_token`, "S="+sealed)
	d1.wantFile(t, "mnt/k/config/env/api_token", sealed)
	d1.trigger(t, "k", "{}")
	if got := d1.waitRun(t, "k", 1); got != "COMPLETED" {
		t.Errorf("run after writing the sealed form back: %s", got)
	}
}
