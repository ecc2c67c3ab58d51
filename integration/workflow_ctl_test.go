//go:build linux

package integration

import (
	"strings"
	"testing"
)

// TestWorkflowJobCtl: MOUNT/JOB/ctl stops every active and queued run of
// the job, and nothing of another job.
func TestWorkflowJobCtl(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{maxActive: 2})
	args := sleepArgs()
	d.scriptJob(t, "busy", "#!/bin/sh\ntrap '' TERM\nsleep "+args+"\n")
	d.scriptJob(t, "other", "#!/bin/sh\nsleep "+args+"\n")
	d.trigger(t, "other", "{}")
	d.waitStatus(t, "other", 1, "RUNNING")
	for range 3 {
		d.trigger(t, "busy", "{}")
	}
	d.waitStatus(t, "busy", 1, "RUNNING")
	d.wantFile(t, "mnt/busy/runs/2/status", "PENDING\n") // two slots: other 1 and busy 1
	d.wantFile(t, "mnt/busy/ctl", "")
	if ls := d.ok(t, `ls mnt/busy`); strings.Contains(ls, "ctl") || strings.Contains(ls, "rerun") {
		t.Errorf("ls mnt/busy lists ctl or rerun (they are reached by name only):\n%s", ls)
	}
	d.fails(t, `echo pause > mnt/busy/ctl`, "Invalid argument")
	wfLogHas(t, d, "busy", "write stop (every active and queued run")
	d.ok(t, `echo kill > mnt/busy/ctl`) // the step ignores SIGTERM
	for id := 1; id <= 3; id++ {
		if got := d.waitRun(t, "busy", id); got != "CANCELLED" {
			t.Errorf("busy run %d ended %s, want CANCELLED", id, got)
		}
	}
	d.wantFile(t, "mnt/busy/runs/3/error", "stopped before it started\n")
	wfLogHas(t, d, "busy", "ctl: kill of every run: 2 queued, 1 running")
	d.wantFile(t, "mnt/other/runs/1/status", "RUNNING\n")
	d.ok(t, `echo stop > mnt/other/ctl`)
	if got := d.waitRun(t, "other", 1); got != "CANCELLED" {
		t.Errorf("other run 1 ended %s, want CANCELLED", got)
	}
	d.ok(t, `echo stop > mnt/other/ctl`) // nothing active: accepted, logged
	wfLogHas(t, d, "other", "ctl: stop of every run: 0 queued, 0 running")
}

// TestWorkflowRerun: MOUNT/JOB/rerun runs a past run again with its
// payload and input files.
func TestWorkflowRerun(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "again", "#!/bin/sh\ncp -r \"$1/.\" \"$2/\"\n")
	d.ok(t, `mkdir mnt/again/input/sub && echo one > mnt/again/input/a.txt && echo two > mnt/again/input/sub/b.txt`)
	d.trigger(t, "again", `{"day": "monday"}`)
	d.waitRun(t, "again", 1)
	d.ok(t, `echo 1 > mnt/again/rerun`)
	if got := d.waitRun(t, "again", 2); got != "COMPLETED" {
		t.Fatalf("rerun ended %s", got)
	}
	d.wantFile(t, "mnt/again/runs/2/trigger", "rerun\n")
	d.wantFile(t, "mnt/again/runs/2/triggered_by", "root\n")
	for _, f := range []string{"input.json", "a.txt", "sub/b.txt"} {
		d.wantFile(t, "mnt/again/runs/2/input/"+f, d.cat(t, "mnt/again/runs/1/input/"+f))
		d.wantFile(t, "mnt/again/runs/2/output/"+f, d.cat(t, "mnt/again/runs/1/output/"+f))
	}
	wfLogHas(t, d, "again", "run 2: rerun of run 1")
	d.fails(t, `echo 99 > mnt/again/rerun`, "Invalid argument")
	wfLogHas(t, d, "again", "no run 99 to run again")
	d.fails(t, `echo latest > mnt/again/rerun`, "Invalid argument")
	wfLogHas(t, d, "again", `write the id of a run to run again with its payload and input files, not "latest"`)
}
