//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Issue 14: --trusted-keys with no key refuses the start; SIGHUP re-reads
// the file (logged with the key count), and a file it cannot use keeps the
// keys in force, logging why.

// TestTrustedKeysEmptyRefused: an empty file, and one of comments only,
// stop the start with the reason; nothing is mounted.
func TestTrustedKeysEmptyRefused(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "comments": "# alice's key goes here\n\n   # and bob's\n"} {
		keys := filepath.Join(dir, name)
		if err := os.WriteFile(keys, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mnt := filepath.Join(dir, "mnt-"+name)
		cmd := exec.Command(jobfsBin, "mount", "--state", filepath.Join(dir, "state-"+name), "--trusted-keys", keys, mnt)
		out, err := cmd.CombinedOutput()
		if exitCode(err) != 1 || !strings.Contains(string(out), "--trusted-keys: "+keys+" holds no key (only blank lines and comments): add the public key line that `jobfs keygen -o FILE` prints") {
			t.Errorf("%s trusted-keys file: exit %d, want 1 and the reason:\n%s", name, exitCode(err), out)
		}
		if strings.Contains(string(out), "ready:") || len(mountsUnder(mnt)) > 0 {
			t.Errorf("%s trusted-keys file: the daemon mounted:\n%s", name, out)
		}
	}
}

// TestTrustedKeysReload: keys added to the file count after kill -HUP;
// a bad or empty file on SIGHUP keeps the keys in force; keys removed
// stop counting. Without --trusted-keys a SIGHUP changes nothing.
func TestTrustedKeysReload(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	keygen := func(name string) (key, pub string) {
		key = filepath.Join(dir, name)
		out, err := exec.Command(jobfsBin, "keygen", "-o", key).Output()
		if err != nil {
			t.Fatalf("jobfs keygen: %v", err)
		}
		return key, strings.TrimSpace(string(out))
	}
	_, pubA := keygen("a.key")
	keyB, pubB := keygen("b.key")
	trusted := filepath.Join(dir, "trusted")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(trusted, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# team\n" + pubA + "\n")
	d := startDaemon(t, daemonOpts{args: []string{"--trusted-keys", trusted}})
	if !strings.Contains(d.out.String(), "runs need a signature by one of 1 trusted keys") {
		t.Errorf("the start does not log the key count:\n%s", d.out)
	}
	hup := func(want string) {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the daemon logs "+want, func() bool { return strings.Contains(d.out.String(), want) })
	}
	d.scriptJob(t, "s", "#!/bin/sh\necho signed ran\n")
	d.ok(t, `"$BIN" sign -k "$K" mnt/s`, "BIN="+jobfsBin, "K="+keyB)
	id := 0
	run := func(want, errText string) {
		t.Helper()
		id++
		d.trigger(t, "s", "{}")
		got := d.waitRun(t, "s", id)
		errFile := d.cat(t, fmt.Sprintf("mnt/s/runs/%d/error", id))
		if got != want || !strings.Contains(errFile, errText) {
			t.Errorf("run %d: %s %q, want %s %q", id, got, errFile, want, errText)
		}
	}
	run("FAILED", "signature check failed: no signature by a trusted key")

	write("# team\n" + pubA + "\n" + pubB + "\n")
	hup("SIGHUP: re-read --trusted-keys " + trusted + ": runs need a signature by one of 2 trusted keys")
	run("COMPLETED", "")

	write("nonsense\n")
	hup("SIGHUP: --trusted-keys not re-read, the 2 keys in force stay: " + trusted + ": line 1:")
	run("COMPLETED", "")
	write("")
	hup("SIGHUP: --trusted-keys not re-read, the 2 keys in force stay: " + trusted + " holds no key")
	run("COMPLETED", "")
	if err := os.Remove(trusted); err != nil {
		t.Fatal(err)
	}
	hup("SIGHUP: --trusted-keys not re-read, the 2 keys in force stay: open " + trusted + ": no such file or directory")
	run("COMPLETED", "")

	write(pubA + "\n")
	hup("SIGHUP: re-read --trusted-keys " + trusted + ": runs need a signature by one of 1 trusted keys")
	run("FAILED", "signature check failed: no signature by a trusted key")

	// Without --trusted-keys a SIGHUP is logged and the daemon serves on.
	plain := startDaemon(t, daemonOpts{})
	if err := plain.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the plain daemon logs the SIGHUP", func() bool {
		return strings.Contains(plain.out.String(), "SIGHUP: nothing to re-read (started without --trusted-keys)")
	})
	plain.ok(t, `mkdir mnt/still && ls mnt/still/config >/dev/null`)
}
