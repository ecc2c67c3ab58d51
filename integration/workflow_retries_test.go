//go:build linux

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// wfLogHas waits until the job's event log holds want.
func wfLogHas(t *testing.T, d *daemon, job, want string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("mnt/%s/log holding %q", job, want), func() bool {
		return strings.Contains(d.sh(t, `cat "mnt/$J/log"`, "J="+job).out, want)
	})
}

// wfRuns lists the job's runs/ folder, its run ids only (not latest).
func wfRuns(t *testing.T, d *daemon, job string) string {
	t.Helper()
	return strings.Join(strings.Fields(d.ok(t, `ls "mnt/$J/runs" | { grep -v '^latest$' || true; }`, "J="+job)), " ")
}

// wfTime parses a run's RFC 3339 time file.
func wfTime(t *testing.T, d *daemon, path string) time.Time {
	t.Helper()
	s := strings.TrimSpace(d.cat(t, path))
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("%s: %q: %v", path, s, err)
	}
	return at
}

// TestWorkflowRetries: config/retries makes a FAILED or TIMEOUT run start
// again as a new run, after its back-off, filtered by exit code.
func TestWorkflowRetries(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	t.Run("setting", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "set", "#!/bin/sh\ntrue\n")
		d.wantFile(t, "mnt/set/config/retries", "0\n")
		for _, v := range []string{"3 backoff 10s x2 max 5m", "3 on 75 111", "2 on timeout 75", "1 backoff 1m", "0"} {
			d.ok(t, `echo "$V" > mnt/set/config/retries`, "V="+v)
			d.wantFile(t, "mnt/set/config/retries", v+"\n")
			d.ok(t, `V=$(cat mnt/set/config/retries); echo "$V" > mnt/set/config/retries`) // reads back what a write takes
		}
		for _, bad := range []struct{ v, why string }{
			{"three", "the count of retries must be a whole number"},
			{"101", "from 0 to 100"},
			{"3 backoff", "backoff needs a duration"},
			{"3 backoff 10s x0", "back-off factor"},
			{"3 on 0", "exit codes from 1 to 255"},
			{"3 on", "on needs exit codes"},
			{"3 max 5m", "max caps a backoff"},
			{"3 often", `"often" is not understood`},
		} {
			d.fails(t, `echo "$V" > mnt/set/config/retries`, "Invalid argument", "V="+bad.v)
			wfLogHas(t, d, "set", bad.why)
		}
		d.ok(t, `echo '2 backoff 1s' > mnt/set/config/retries && rm mnt/set/config/retries`)
		d.wantFile(t, "mnt/set/config/retries", "0\n")
		wfLogHas(t, d, "set", "config/retries set to 2 backoff 1s")
		wfLogHas(t, d, "set", "config/retries reset to its default")
	})

	t.Run("fails twice then succeeds", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "flaky", "#!/bin/sh\ncat \"$1/hello.txt\"\n[ \"$JOBFS_RUN\" -ge 3 ] || exit 1\ncp \"$1/hello.txt\" \"$2/\"\n")
		d.ok(t, `echo '3 backoff 2s x2' > mnt/flaky/config/retries && echo hi > mnt/flaky/input/hello.txt`)
		d.trigger(t, "flaky", `{"n": 1}`)
		for id, want := range map[int]string{1: "FAILED", 2: "FAILED", 3: "COMPLETED"} {
			if got := d.waitRun(t, "flaky", id); got != want {
				t.Fatalf("run %d ended %s, want %s", id, got, want)
			}
		}
		wfLogHas(t, d, "flaky", "run 3 COMPLETED")
		if got := wfRuns(t, d, "flaky"); got != "1 2 3" {
			t.Errorf("runs/ = %q, want 1 2 3: a completed retry is not retried", got)
		}
		d.wantFile(t, "mnt/flaky/runs/1/triggered_by", "root\n")
		d.wantFile(t, "mnt/flaky/runs/1/retry_of", "")
		for _, id := range []int{2, 3} {
			dir := fmt.Sprintf("mnt/flaky/runs/%d/", id)
			d.wantFile(t, dir+"triggered_by", fmt.Sprintf("retry of %d\n", id-1))
			d.wantFile(t, dir+"retry_of", fmt.Sprintf("%d\n", id-1))
			d.wantFile(t, dir+"trigger", "retry\n")
			d.wantFile(t, dir+"input/hello.txt", "hi\n")
			d.wantFile(t, dir+"input/input.json", "{\"n\": 1}\n")
			doc := ruStatus(t, d, "flaky", id)
			if got := ruText(doc["retry_of"]); got != fmt.Sprintf("%d\n", id-1) {
				t.Errorf("%sstatus.json retry_of = %q", dir, got)
			}
		}
		d.wantFile(t, "mnt/flaky/runs/3/output/hello.txt", "hi\n")
		// Back-off: 2 s, then 4 s, from the end of the run retried to the
		// start of its retry; the files have whole seconds, hence the
		// loose lower bounds; the upper one only catches a wrong unit.
		for id, least := range map[int]time.Duration{2: time.Second, 3: 3 * time.Second} {
			gap := wfTime(t, d, fmt.Sprintf("mnt/flaky/runs/%d/started_at", id)).Sub(
				wfTime(t, d, fmt.Sprintf("mnt/flaky/runs/%d/ended_at", id-1)))
			if gap < least || gap > time.Minute {
				t.Errorf("run %d started %v after run %d ended, want the back-off (at least %v)", id, gap, id-1, least)
			}
		}
	})

	t.Run("exit code filter", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "codes", "#!/bin/sh\n[ \"$JOBFS_RUN\" = 1 ] && exit 75\nexit 3\n")
		d.ok(t, `echo '3 on 75 111' > mnt/codes/config/retries`)
		d.trigger(t, "codes", "{}")
		d.waitRun(t, "codes", 1)
		if got := d.waitRun(t, "codes", 2); got != "FAILED" {
			t.Fatalf("run 2 ended %s, want FAILED", got)
		}
		d.wantFile(t, "mnt/codes/runs/2/exit_code", "3\n")
		wfLogHas(t, d, "codes", "run 2 FAILED: not retried: its exit code is not in the on list")
		if got := wfRuns(t, d, "codes"); got != "1 2" {
			t.Errorf("runs/ = %q, want 1 2", got)
		}
	})

	t.Run("pending retry shows and stops", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "later", "#!/bin/sh\nexit 1\n")
		d.ok(t, `echo '2 backoff 1h' > mnt/later/config/retries`)
		d.trigger(t, "later", "{}")
		d.waitRun(t, "later", 1)
		d.waitStatus(t, "later", 2, "PENDING")
		at := wfTime(t, d, "mnt/later/runs/2/retry_at")
		if wait := time.Until(at); wait < 50*time.Minute {
			t.Errorf("retry_at %v is %v from now, want about 1h", at, wait)
		}
		if doc := ruStatus(t, d, "later", 2); ruText(doc["retry_at"]) != d.cat(t, "mnt/later/runs/2/retry_at") {
			t.Errorf("status.json retry_at = %v", doc["retry_at"])
		}
		d.ok(t, `echo stop > mnt/later/runs/2/ctl`)
		if got := d.waitRun(t, "later", 2); got != "CANCELLED" {
			t.Fatalf("stopped pending retry ended %s", got)
		}
		wfLogHas(t, d, "later", "run 2 CANCELLED: not retried: it was stopped")
		if got := wfRuns(t, d, "later"); got != "1 2" {
			t.Errorf("runs/ = %q, want 1 2", got)
		}
	})

	t.Run("no retry after stop", func(t *testing.T) {
		t.Parallel()
		args := sleepArgs()
		d.scriptJob(t, "stopped", "#!/bin/sh\nsleep "+args+"\n")
		d.ok(t, `echo 3 > mnt/stopped/config/retries`)
		d.trigger(t, "stopped", "{}")
		d.waitStatus(t, "stopped", 1, "RUNNING")
		d.ok(t, `echo kill > mnt/stopped/runs/1/ctl`)
		d.waitRun(t, "stopped", 1)
		wfLogHas(t, d, "stopped", "run 1 CANCELLED: not retried: it was stopped")
		if got := wfRuns(t, d, "stopped"); got != "1" {
			t.Errorf("runs/ = %q, want 1", got)
		}
	})

	t.Run("no retry when disabled", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "off", "#!/bin/sh\nsleep 3\nexit 1\n")
		d.ok(t, `echo 3 > mnt/off/config/retries`)
		d.trigger(t, "off", "{}")
		d.waitStatus(t, "off", 1, "RUNNING")
		d.ok(t, `echo false > mnt/off/config/enabled`)
		d.waitRun(t, "off", 1)
		wfLogHas(t, d, "off", "run 1 FAILED: not retried: config/enabled is false")
	})
}

// TestWorkflowRetryRestart: a pending retry is stored, so a daemon killed
// while it waits runs it after its restart.
func TestWorkflowRetryRestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "again", "#!/bin/sh\n[ \"$JOBFS_RUN\" -ge 2 ] || exit 1\n")
	d.ok(t, `echo '1 backoff 3s' > mnt/again/config/retries`)
	d.trigger(t, "again", "{}")
	d.waitRun(t, "again", 1)
	d.waitStatus(t, "again", 2, "PENDING")
	d.kill9(t)
	d.restart(t)
	if got := d.waitRun(t, "again", 2); got != "COMPLETED" {
		t.Fatalf("the retry ended %s after the restart, want COMPLETED", got)
	}
	d.wantFile(t, "mnt/again/runs/2/triggered_by", "retry of 1\n")
	if got := wfRuns(t, d, "again"); got != "1 2" {
		t.Errorf("runs/ = %q, want 1 2", got)
	}
}
