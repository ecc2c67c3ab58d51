//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The tests of this file check the engine against careless and unlucky
// local users (issue 13): a state folder copied beside the original, kill
// after stop, a damaged store, a full state disk.

// cgroupOf is the cgroup folder (below a hierarchy's root) of job short's
// steps: jobfs/<device>-<inode of the state folder>/<short>.
func (d *daemon) cgroupOf(short string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(d.state, &st); err != nil {
		d.t.Fatalf("stat the state folder: %v", err)
	}
	return fmt.Sprintf("jobfs/%d-%d/%s", st.Dev, st.Ino, short)
}

// TestCopiedStateLeavesTheOriginalsRuns: a second daemon started on a
// `cp -a` copy of a state folder, taken while a run is active, ends that
// run in its copy but leaves the first daemon's step alone: the run
// completes normally in the first.
func TestCopiedStateLeavesTheOriginalsRuns(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	alice := shareAs(users[0])
	d1 := shareDaemon(t)
	job := "@" + users[0].name + "/etl" // as root sees it
	alice.job(t, d1, "etl", "#!/bin/sh\necho started\nwhile [ ! -e \"$2/release\" ]; do sleep 0.1; done\necho released\n")
	alice.ok(t, d1, `echo '{}' > mnt/etl/data`)
	d1.waitStatus(t, job, 1, "RUNNING")
	waitFor(t, "the step's first line", func() bool { return strings.Contains(alice.ok(t, d1, `cat mnt/etl/runs/1/log`), "started") })
	short := strings.TrimSpace(alice.ok(t, d1, `cat mnt/etl/shortname`))

	d2 := shareDaemon(t)
	d2.stop(t)
	if err := os.RemoveAll(d2.state); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", d1.state, d2.state).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	d2.restart(t)
	if a, b := d1.cgroupOf(short), d2.cgroupOf(short); a == b {
		t.Errorf("both daemons name the job's cgroups %s", a)
	}
	alice.want(t, d2, `cat mnt/etl/runs/1/status`, "FAILED\n")
	alice.want(t, d1, `cat mnt/etl/runs/1/status`, "RUNNING\n")

	release := filepath.Join(d1.state, "jobs", short, "runs", "1", "output", "release")
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := d1.waitRun(t, job, 1); got != "COMPLETED" {
		t.Errorf("the first daemon's run ended %s, want COMPLETED:\n%s", got, alice.ok(t, d1, `cat mnt/etl/runs/1/log mnt/etl/runs/1/error`))
	}
	alice.want(t, d1, `cat mnt/etl/runs/1/log`, "started\nreleased\n")
}

// TestKillAfterStop: `kill` written to ctl after `stop` SIGKILLs a step
// that ignores SIGTERM at once, instead of waiting out --grace (set past
// the wait's deadline here, so only the kill can end the run in time).
func TestKillAfterStop(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	alice := shareAs(users[0])
	d := shareDaemon(t, "--grace", "10m")
	alice.job(t, d, "stubborn", "#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 0.1; done\n")
	alice.ok(t, d, `echo '{}' > mnt/stubborn/data`)
	waitFor(t, "the step ignores SIGTERM", func() bool {
		return strings.Contains(alice.ok(t, d, `cat mnt/stubborn/runs/1/log`), "ready")
	})
	alice.ok(t, d, `echo stop > mnt/stubborn/runs/1/ctl && echo kill > mnt/stubborn/runs/1/ctl`)
	if got := d.waitRun(t, "@"+users[0].name+"/stubborn", 1); got != "CANCELLED" {
		t.Errorf("run 1 after stop and kill = %s, want CANCELLED", got)
	}
}

// TestTruncatedStore: `jobfs mount` on a truncated jobfs.db exits non-zero
// with an error naming the file and the way out, not a Go stack trace.
func TestTruncatedStore(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	alice := shareAs(users[0])
	d := shareDaemon(t)
	for _, job := range []string{"one", "two", "three"} {
		alice.job(t, d, job, "#!/bin/sh\necho hi\n")
		alice.ok(t, d, `echo '{}' > "mnt/$J/data"`, "J="+job)
		d.waitRun(t, "@"+users[0].name+"/"+job, 1)
	}
	d.stop(t)
	db := filepath.Join(d.state, "jobfs.db")
	if err := os.Truncate(db, 10000); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.bin, d.args()...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("jobfs mount on a truncated store did not exit:\n%s", out)
	}
	if err == nil {
		t.Errorf("jobfs mount on a truncated store exited 0")
	}
	for _, want := range []string{db, "restore it from a copy", "mv " + db} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output does not say %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"goroutine", "panic"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("the output shows %q:\n%s", bad, out)
		}
	}
	t.Logf("jobfs mount says:\n%s", out)
	if d.mounted() {
		t.Errorf("%s is mounted after jobfs mount failed", d.mnt)
	}
}
