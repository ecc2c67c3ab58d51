//go:build linux

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// engineTmpfsState moves the daemon's state folder onto a tmpfs of size
// (unmounted when t ends, after the daemon has stopped): the daemon is
// stopped, its state copied onto the tmpfs mounted in its place, and
// started again.
func engineTmpfsState(t *testing.T, d *daemon, size string, mounted *bool) {
	t.Helper()
	saved := t.TempDir()
	if out, err := exec.Command("cp", "-a", d.state+"/.", saved).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	d.stop(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0711", "jobfs-test-state", d.state).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	*mounted = true
	if out, err := exec.Command("cp", "-a", saved+"/.", d.state).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	d.restart(t)
}

// TestFullStateDisk: with the state disk full, runs and jobs can still be
// deleted through the mount, and a log whose lines could not be written
// says how much was dropped.
func TestFullStateDisk(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	t.TempDir() // its removal is registered first: it runs after the unmount
	users, _ := shareUsers(t, 1, false)
	alice := shareAs(users[0])
	var state string
	mounted := false
	t.Cleanup(func() { // registered before the daemon's: runs once it has stopped
		if !mounted {
			return
		}
		if out, err := exec.Command("umount", state).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", state, err, out)
			exec.Command("umount", "-l", state).Run()
		}
	})
	d := shareDaemon(t)
	state = d.state
	engineTmpfsState(t, d, "16m", &mounted)
	owner := "@" + users[0].name + "/"
	if st, err := os.Stat(filepath.Join(d.state, "jobfs.reserve")); err != nil || st.Size() == 0 {
		t.Errorf("no space reserved for deletes in the state folder: %v", err)
	}

	// A step fills the disk, then writes more than a pipe holds (the daemon
	// must have tried to log most of it while the disk was full), frees
	// the disk and writes one more line. What the daemon had not read from
	// the pipe when the disk was freed (up to a pipe's 64 KiB on a loaded
	// machine) is written after the marker: the log must be the step's
	// output with each run of dropped bytes replaced, where it was, by a
	// marker counting exactly those bytes, and end with the last line.
	// It fills the disk only once its run is recorded RUNNING (the test
	// opens the gate): a commit that meets a full disk frees the store's
	// reserve, and a late RUNNING commit made room for the log that way.
	alice.job(t, d, "note", "#!/bin/sh\necho start\nwhile [ ! -e \"$2/go\" ]; do sleep 0.05; done\nrm -f \"$2/go\"\n"+
		"dd if=/dev/zero of=\"$2/fill\" bs=64k 2>/dev/null\n"+
		"i=0; while [ $i -lt 4000 ]; do echo \"line $i, written while the state disk is full\"; i=$((i+1)); done\n"+
		"rm -f \"$2/fill\"\necho room again\n")
	alice.ok(t, d, `echo '{}' > mnt/note/data`)
	d.waitStatus(t, owner+"note", 1, "RUNNING")
	short := strings.TrimSpace(alice.ok(t, d, `cat mnt/note/shortname`))
	if err := os.WriteFile(filepath.Join(runFolder(d, short, 1), "output", "go"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if got := d.waitRun(t, owner+"note", 1); got != "COMPLETED" {
		t.Errorf("run 1 of note = %s, want COMPLETED", got)
	}
	log := alice.ok(t, d, `cat mnt/note/runs/1/log`)
	var out strings.Builder
	out.WriteString("start\n")
	for i := 0; i < 4000; i++ {
		fmt.Fprintf(&out, "line %d, written while the state disk is full\n", i)
	}
	out.WriteString("room again\n")
	if markers, ok := engineDropsMarked(log, out.String()); !ok || markers == 0 || !strings.HasSuffix(log, "\nroom again\n") {
		t.Errorf("runs/1/log is not the step's output with its dropped bytes marked (%d markers), ending with the line after them:\n%s\n...\n%s",
			markers, strings.Join(engineMarker.FindAllString(log, -1), ""), engineTail(log))
	}

	// A job of many runs, whose delete rewrites much of the store.
	alice.job(t, d, "many", "#!/bin/sh\necho hi\n")
	for i := 1; i <= 40; i++ {
		alice.ok(t, d, `echo '{}' > mnt/many/data`)
		d.waitRun(t, owner+"many", i)
	}

	// A step fills the disk and leaves it full, writes far more than its
	// log had allocated ahead, and fails: it ends (it is never left blocked
	// on its pipe, which would last until config/timeout), FAILED with its
	// code, and its log says that output was dropped and why.
	alice.job(t, d, "hog", "#!/bin/sh\necho start\ndd if=/dev/zero of=\"$2/fill\" bs=64k 2>/dev/null || "+
		"{ yes 'writing on a full disk' | head -n 20000; exit 3; }\n")
	alice.ok(t, d, `echo '{}' > mnt/hog/data`)
	if got := d.waitRun(t, owner+"hog", 1); got != "FAILED" {
		t.Errorf("run 1 of hog = %s, want FAILED", got)
	}
	if code := alice.ok(t, d, `cat mnt/hog/runs/1/exit_code`); code != "3\n" {
		t.Errorf("run 1 of hog: exit_code %q, want 3", code)
	}
	if hogLog := alice.ok(t, d, `cat mnt/hog/runs/1/log`); !regexp.MustCompile(`(?m)^jobfs: [0-9]+ bytes of output dropped: no space left on device$`).MatchString(hogLog) {
		t.Errorf("runs/1/log of hog does not say output was dropped:\n%s", engineTail(hogLog))
	}
	// Settings until the store itself has no page left to write to.
	r := alice.run(t, d, `for i in $(seq 1 400); do head -c $((i * 997)) /dev/zero | tr '\0' x > mnt/hog/description || exit 0; done; exit 1`)
	if r.code != 0 || !strings.Contains(r.err, "No space left on device") {
		t.Errorf("settings could still be written on the full disk:\n%s", r)
	}
	// Every delete works on a disk kept full to the last block: what one
	// frees, root's ballast takes before the next.
	ballast := 0
	full := func() {
		ballast++
		d.ok(t, `dd if=/dev/zero of=state/ballast.$N bs=4k 2>/dev/null; test "$(df --output=avail state | tail -n 1)" -eq 0`, fmt.Sprint("N=", ballast))
	}
	full()
	alice.ok(t, d, `rm -r mnt/note/runs/1 && ! test -e mnt/note/runs/1`)
	full()
	alice.ok(t, d, `rmdir mnt/note && ! test -e mnt/note`)
	full()
	alice.ok(t, d, `rmdir mnt/many && ! test -e mnt/many`)
	full()
	alice.ok(t, d, `rm -r mnt/hog/runs/1 && ! test -e mnt/hog/runs/1`)
	full()
	alice.ok(t, d, `rm -rf mnt/hog && ! test -e mnt/hog`)
}

// engineMarker is the line a step's log gets for output the daemon could
// not write to it (exec/logsink.go).
var engineMarker = regexp.MustCompile(`jobfs: ([0-9]+) bytes of output dropped: no space left on device\n`)

// engineDropsMarked reports whether log is out, a step's whole output,
// with runs of its bytes dropped, each replaced where it was by a marker
// line counting exactly its bytes (after a newline of its own when the
// bytes written before it end mid-line), and how many markers it has.
func engineDropsMarked(log, out string) (markers int, ok bool) {
	m := engineMarker.FindStringSubmatchIndex(log)
	if m == nil {
		return 0, log == out
	}
	n, err := strconv.Atoi(log[m[2]:m[3]])
	if err != nil {
		return 0, false
	}
	before, after := log[:m[0]], log[m[1]:]
	if before != "" && !strings.HasSuffix(before, "\n") {
		return 0, false // a marker starts a line
	}
	rest := func(written string) (int, bool) {
		if !strings.HasPrefix(out, written) || len(written)+n > len(out) {
			return 0, false
		}
		k, ok := engineDropsMarked(after, out[len(written)+n:])
		return k + 1, ok
	}
	if k, ok := rest(before); ok {
		return k, true
	}
	// The newline before the marker is its own: what was written ended
	// mid-line.
	if w := strings.TrimSuffix(before, "\n"); w != "" && !strings.HasSuffix(w, "\n") {
		return rest(w)
	}
	return 0, false
}

// engineTail is the last lines of a log, for a failure message.
func engineTail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(len(lines)-6, 0):], "\n")
}
