//go:build linux

package integration

import (
	"strings"
	"testing"
	"time"
)

// wfLines counts the lines of a file below the daemon's folder.
func wfLines(t *testing.T, d *daemon, path string) int {
	t.Helper()
	return strings.Count(d.cat(t, path), "\n")
}

// counter prints a line every 0.2 s, for about 3 s of its own time.
const counter = "#!/bin/sh\ni=0\nwhile [ $i -lt 15 ]; do echo \"tick $i\"; i=$((i + 1)); sleep 0.2; done\n"

// TestWorkflowPause: ctl pause freezes a run's steps (PAUSED, no output,
// its timeout clock stopped) and resume thaws them; a paused run stops.
func TestWorkflowPause(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	t.Run("pause and resume", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "count", counter)
		// 3 s of ticks and 3 s paused under a 5 s timeout: the run
		// completes only if the paused seconds do not count.
		d.ok(t, `echo 5s > mnt/count/config/timeout`)
		d.trigger(t, "count", "{}")
		d.waitStatus(t, "count", 1, "RUNNING")
		waitFor(t, "a first tick", func() bool { return wfLines(t, d, "mnt/count/runs/1/log") > 0 })
		d.ok(t, `echo pause > mnt/count/runs/1/ctl`)
		d.wantFile(t, "mnt/count/runs/1/status", "PAUSED\n")
		// The freeze is done when the write returns; a line being written
		// then may still land, so count from a moment after.
		time.Sleep(300 * time.Millisecond)
		before := wfLines(t, d, "mnt/count/runs/1/log")
		time.Sleep(3 * time.Second)
		if after := wfLines(t, d, "mnt/count/runs/1/log"); after != before {
			t.Errorf("the log grew from %d to %d lines while paused", before, after)
		}
		d.wantFile(t, "mnt/count/runs/1/status", "PAUSED\n")
		d.ok(t, `echo pause > mnt/count/runs/1/ctl`) // paused already: accepted
		d.ok(t, `echo resume > mnt/count/runs/1/ctl`)
		d.wantFile(t, "mnt/count/runs/1/status", "RUNNING\n")
		if got := d.waitRun(t, "count", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED: the paused time counted against config/timeout?\n%s", got, d.cat(t, "mnt/count/runs/1/error"))
		}
		if n := wfLines(t, d, "mnt/count/runs/1/log"); n != 15 {
			t.Errorf("log has %d lines, want 15", n)
		}
		wfLogHas(t, d, "count", "run 1 paused (frozen; its timeout clock stopped)")
		wfLogHas(t, d, "count", "run 1 resumed")
	})

	t.Run("timeout after resume", func(t *testing.T) {
		t.Parallel()
		args := sleepArgs()
		d.scriptJob(t, "slow", "#!/bin/sh\nsleep "+args+"\n")
		d.ok(t, `echo 2s > mnt/slow/config/timeout`)
		d.trigger(t, "slow", "{}")
		d.waitStatus(t, "slow", 1, "RUNNING")
		d.ok(t, `echo pause > mnt/slow/runs/1/ctl`)
		time.Sleep(3 * time.Second) // past the timeout, paused: the clock stands
		d.wantFile(t, "mnt/slow/runs/1/status", "PAUSED\n")
		d.ok(t, `echo resume > mnt/slow/runs/1/ctl`)
		if got := d.waitRun(t, "slow", 1); got != "TIMEOUT" {
			t.Fatalf("run ended %s, want TIMEOUT once resumed", got)
		}
	})

	t.Run("stop a paused run", func(t *testing.T) {
		t.Parallel()
		args := sleepArgs()
		d.scriptJob(t, "frozen", "#!/bin/sh\nsleep "+args+"\n")
		d.trigger(t, "frozen", "{}")
		d.waitStatus(t, "frozen", 1, "RUNNING")
		d.ok(t, `echo pause > mnt/frozen/runs/1/ctl`)
		d.ok(t, `echo stop > mnt/frozen/runs/1/ctl`)
		if got := d.waitRun(t, "frozen", 1); got != "CANCELLED" {
			t.Fatalf("stopped paused run ended %s", got)
		}
		if p := d.pgrep(t, args); p != "" {
			t.Errorf("the stopped paused run left its process:\n%s", p)
		}
	})

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "done", "#!/bin/sh\ntrue\n")
		d.trigger(t, "done", "{}")
		d.waitRun(t, "done", 1)
		d.fails(t, `echo pause > mnt/done/runs/1/ctl`, "Invalid argument")
		wfLogHas(t, d, "done", "run 1 is not active: nothing to pause or resume")
		d.fails(t, `echo freeze > mnt/done/runs/1/ctl`, "Invalid argument")
		wfLogHas(t, d, "done", `pause or resume, not "freeze"`)
	})
}

// TestWorkflowPauseNoCgroups: a daemon without cgroups refuses pause with
// the reason.
func TestWorkflowPauseNoCgroups(t *testing.T) {
	rootlessSkip(t)
	u := rootlessUser(t)
	d := startUserDaemon(t, u, "")
	args := sleepArgs()
	d.ok(t, `mkdir mnt/p && echo script > mnt/p/config/type && printf '%s' "$S" > mnt/p/config/script && echo '{}' > mnt/p/data`,
		"S=#!/bin/sh\nsleep "+args+"\n")
	waitFor(t, "run 1 RUNNING", func() bool { return d.ok(t, `cat mnt/p/runs/1/status`) == "RUNNING\n" })
	r := d.sh(t, `echo pause > mnt/p/runs/1/ctl`)
	if r.code == 0 || !strings.Contains(r.err, "Invalid argument") {
		t.Errorf("pause without cgroups: want EINVAL:\n%s", r)
	}
	if log := d.ok(t, `cat mnt/p/log`); !strings.Contains(log, "pause needs the cgroup freezer: no cgroups") {
		t.Errorf("the job's log does not say why pause was refused:\n%s", log)
	}
	d.ok(t, `echo kill > mnt/p/runs/1/ctl && cat mnt/p/runs/1/wait`)
}
