//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const stoppedError = "jobfs stopped while the run was active\n"

// TestRestart: after SIGTERM and a new mount on the same state, every job,
// setting and finished run is still there, and run ids continue.
func TestRestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "keep", "#!/bin/sh\necho kept\ncat \"$1/input.json\" > \"$2/out.json\"\n")
	d.ok(t, `echo 90s > mnt/keep/config/timeout && printf 'two\nlines\n' > mnt/keep/description && echo 7 > mnt/keep/config/keep`)
	d.trigger(t, "keep", `{"a": 1}`)
	if got := d.waitRun(t, "keep", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	d.ok(t, `mkdir mnt/other`)
	if got := d.ok(t, `df -T mnt`); !strings.Contains(got, "fuse.jobfs") {
		t.Errorf("df -T mnt = %q, want type fuse.jobfs", got)
	}
	files := []string{
		"shortname", "name", "description", "config/type", "config/script", "config/timeout", "config/keep",
		"runs/1/status", "runs/1/exit_code", "runs/1/started_at", "runs/1/ended_at", "runs/1/trigger",
		"runs/1/error", "runs/1/log", "runs/1/result", "runs/1/input/input.json", "log",
	}
	before := map[string]string{}
	for _, f := range files {
		before[f] = d.cat(t, "mnt/keep/"+f)
	}
	otherBefore := d.cat(t, "mnt/other/shortname")

	if code := d.stop(t); code != 0 {
		t.Errorf("jobfs exited %d on SIGTERM, want 0", code)
	}
	if d.mounted() {
		t.Fatalf("%s still mounted after SIGTERM", d.mnt)
	}
	if got := d.ok(t, `ls -A mnt`); got != "" {
		t.Errorf("unmounted, ls -A mnt = %q, want an empty folder", got)
	}

	d.restart(t)
	if got := d.ok(t, `ls mnt`); got != "keep\nother\n" {
		t.Errorf("after restart, ls mnt = %q, want keep and other", got)
	}
	for _, f := range files {
		got := d.cat(t, "mnt/keep/"+f)
		if f == "log" { // the event log only grows
			if !strings.HasPrefix(got, before[f]) {
				t.Errorf("after restart, log = %q, want it to start with %q", got, before[f])
			}
			continue
		}
		if got != before[f] {
			t.Errorf("after restart, %s = %q, was %q", f, got, before[f])
		}
	}
	d.wantFile(t, "mnt/other/shortname", otherBefore)
	d.wantFile(t, "mnt/keep/config/timeout", "90s\n")
	d.wantFile(t, "mnt/keep/runs/1/result", "{\"a\": 1}\n")
	if got := d.ok(t, `df -T mnt`); !strings.Contains(got, "fuse.jobfs") {
		t.Errorf("after restart, df -T mnt = %q, want type fuse.jobfs", got)
	}

	d.trigger(t, "keep", `{"a": 2}`)
	if got := d.waitRun(t, "keep", 2); got != "COMPLETED" {
		t.Fatalf("run 2 ended %s, want COMPLETED", got)
	}
	if got := d.ok(t, `ls mnt/keep/runs`); got != "1\n2\nlatest\n" {
		t.Errorf("ls runs = %q, want 1 2 latest", got)
	}
}

// startSleeper makes job mnt/<job> whose run 1 sleeps, and returns once the
// sleep is running; it returns the sleep's unique arguments.
func startSleeper(t *testing.T, d *daemon, job string) string {
	t.Helper()
	args := sleepArgs()
	d.scriptJob(t, job, fmt.Sprintf("#!/bin/sh\necho started\nsleep %s\n", args))
	d.trigger(t, job, "{}")
	d.waitStatus(t, job, 1, "RUNNING")
	waitFor(t, "sleep "+args+" running", func() bool { return d.pgrep(t, args) != "" })
	return args
}

// wantRecovered checks that run 1 of job ended FAILED because the daemon
// stopped, and that its sleep is gone.
func wantRecovered(t *testing.T, d *daemon, job, sleep string) {
	t.Helper()
	d.wantFile(t, "mnt/"+job+"/runs/1/status", "FAILED\n")
	d.wantFile(t, "mnt/"+job+"/runs/1/error", stoppedError)
	if log := d.cat(t, "mnt/"+job+"/runs/1/log"); !strings.Contains(log, "started\n") {
		t.Errorf("runs/1/log = %q, want the step's line started", log)
	}
	if p := d.pgrep(t, sleep); p != "" {
		t.Errorf("the run's process is still there:\n%s", p)
	}
}

// TestKill9WhileRunning: a killed daemon leaves a stale mount; the next
// mount recovers it, ends the active run FAILED and leaves no process.
func TestKill9WhileRunning(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	sleep := startSleeper(t, d, "sleeper")

	d.kill9(t)
	// The mount is stale once no process holds the connection's /dev/fuse
	// fd. Steps inherit it (TestStepFds) and may outlive the daemon until
	// the next start: until they are gone, a request waits for them, then
	// ends with ECONNABORTED instead of ENOTCONN.
	if eventually(10*time.Second, func() bool { return len(d.leftovers()) == 0 }) {
		d.fails(t, `ls mnt`, "Transport endpoint is not connected")
		d.fails(t, `stat mnt`, "Transport endpoint is not connected")
	} else {
		t.Logf("the run's processes outlived the daemon; the stale mount is not touched before recovery")
	}

	d.restart(t)
	if !strings.Contains(d.out.String(), "recovered the stale mount") {
		t.Errorf("the daemon did not say it recovered the stale mount")
	}
	// The daemon is ready: recovery is over, the sleep must be gone already.
	wantRecovered(t, d, "sleeper", sleep)
	d.wantFile(t, "mnt/sleeper/config/type", "script\n")

	d.ok(t, `printf '#!/bin/sh\necho again\n' > mnt/sleeper/config/script`)
	d.trigger(t, "sleeper", "{}")
	if got := d.waitRun(t, "sleeper", 2); got != "COMPLETED" {
		t.Errorf("run 2 after recovery ended %s, want COMPLETED", got)
	}
}

// TestSigtermWhileRunning: SIGTERM with a run active unmounts, ends the run
// FAILED and leaves no process, before the daemon exits.
func TestSigtermWhileRunning(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	sleep := startSleeper(t, d, "sleeper")

	if code := d.stop(t); code != 0 {
		t.Errorf("jobfs exited %d on SIGTERM, want 0", code)
	}
	if d.mounted() {
		t.Errorf("%s still mounted after SIGTERM", d.mnt)
	}
	if p := d.pgrep(t, sleep); p != "" {
		t.Errorf("jobfs exited, but the run's process is still there:\n%s", p)
	}

	d.restart(t)
	wantRecovered(t, d, "sleeper", sleep)
}

// TestMountpointInUse: a second daemon on a live mountpoint is refused and
// the first keeps serving.
func TestMountpointInUse(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/first`)

	r := d.sh(t, `timeout 30 ./jobfs mount --state state2 --repos repos --grace 1s mnt`)
	if r.code != 1 || !strings.Contains(r.err, "already mounted") {
		t.Errorf("second jobfs mount on the same mountpoint: want exit 1 and already mounted:\n%s", r)
	}
	if got := d.ok(t, `ls mnt`); got != "first\n" {
		t.Errorf("after the refused mount, ls mnt = %q, want first", got)
	}

	// A second daemon on the same state is refused too; the mountpoint it
	// made for itself goes with it.
	r = d.sh(t, `timeout 30 ./jobfs mount --state state --repos repos --grace 1s mnt2`)
	if r.code == 0 {
		t.Errorf("second jobfs mount of the same state: want a refusal:\n%s", r)
	}
	if got := d.sh(t, `ls -d mnt2`); got.code == 0 {
		t.Errorf("the refused mount left its mountpoint mnt2 behind:\n%s\n%s", got, r)
	}
}

// TestStderrClosed: a daemon whose stderr reader went away (`jobfs mount
// ... 2>&1 | head`, a closed terminal, a dead supervisor) keeps serving.
// Go kills a program that writes to a broken pipe on fd 2 with SIGPIPE
// unless it handles the signal; the daemon logs a line for every event, so
// it would die at the next one and leave a stale mount.
func TestStderrClosed(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.stop(t) // the folders are reused by a daemon writing to a pipe

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(d.bin, d.args()...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { // before d's cleanup: stop this daemon, remove its mount
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
		}
		if d.mounted() {
			exec.Command("umount", "-l", d.mnt).Run()
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready:") {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("jobfs mount ended before it was ready")
		}
	case <-time.After(readyTimeout):
		t.Fatalf("jobfs mount printed no ready: line within %v", readyTimeout)
	}
	r.Close() // the reader goes away

	d.sh(t, `mkdir mnt/after; echo script > mnt/after/config/type`) // events the daemon logs
	r2 := d.sh(t, `ls mnt && cat mnt/after/config/type`)
	if r2.code != 0 || r2.out != "after\nscript\n" {
		t.Errorf("after its stderr was closed, the mount no longer serves:\n%s", r2)
	}
	select {
	case <-exited:
		t.Errorf("jobfs exited when its stderr reader went away: %v", waitErr)
	default:
	}
}

// TestMountAtSymlink: a mountpoint given as a symlink to a folder mounts
// the folder (mountinfo names it resolved), serves through the link, and
// a stop unmounts it; a start again mounts it again.
func TestMountAtSymlink(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{linkedMnt: true})
	if !d.mounted() {
		t.Fatalf("nothing mounted at %s, the folder %s links to", d.mountPath(), d.mnt)
	}
	d.scriptJob(t, "linked", "#!/bin/sh\necho through the link\n")
	d.trigger(t, "linked", `{}`)
	if got := d.waitRun(t, "linked", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("jobfs exited %d on SIGTERM, want 0", code)
	}
	if d.mounted() {
		t.Fatalf("%s still mounted after SIGTERM", d.mountPath())
	}
	d.restart(t)
	if got := d.cat(t, "mnt/linked/runs/1/status"); got != "COMPLETED\n" {
		t.Errorf("after a start again, runs/1/status = %q, want COMPLETED", got)
	}
}
