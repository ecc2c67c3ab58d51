//go:build linux

package integration

import (
	"fmt"
	"testing"
)

// TestWorkflowAfter: config/after runs a job once every job it names has
// completed, with their status.json as payload.
func TestWorkflowAfter(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	t.Run("two upstreams", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "fetch", "#!/bin/sh\ntrue\n")
		d.scriptJob(t, "clean", "#!/bin/sh\ntrue\n")
		d.scriptJob(t, "report", copyInput)
		d.ok(t, `echo 'fetch clean' > mnt/report/config/after`)
		d.wantFile(t, "mnt/report/config/after", "fetch clean\n")
		d.trigger(t, "fetch", "{}")
		d.waitRun(t, "fetch", 1)
		wfLogHas(t, d, "report", "after: fetch run 1 completed (1 of 2)")
		d.trigger(t, "fetch", "{}") // a second fetch counts once: the set still lacks clean
		d.waitRun(t, "fetch", 2)
		wfLogHas(t, d, "report", "after: fetch run 2 completed (1 of 2)")
		if got := wfRuns(t, d, "report"); got != "" {
			t.Fatalf("report runs/ = %q before clean completed", got)
		}
		d.trigger(t, "clean", "{}")
		if got := d.waitRun(t, "report", 1); got != "COMPLETED" {
			t.Fatalf("report run 1 ended %s", got)
		}
		d.wantFile(t, "mnt/report/runs/1/trigger", "after\n")
		d.wantFile(t, "mnt/report/runs/1/triggered_by", "after clean run 1, fetch run 2\n")
		doc := wfPayload(t, d.cat(t, "mnt/report/runs/1/input/input.json"))
		after, _ := doc["after"].(map[string]any)
		for job, id := range map[string]string{"fetch": "2", "clean": "1"} {
			st, _ := after[job].(map[string]any)
			if st["job"] != job || st["status"] != "COMPLETED" || fmt.Sprint(st["id"]) != id {
				t.Errorf("payload after.%s = %v, want its run %s COMPLETED", job, st, id)
			}
		}
		// The set starts again: one more clean alone starts nothing.
		d.trigger(t, "clean", "{}")
		d.waitRun(t, "clean", 2)
		wfLogHas(t, d, "report", "after: clean run 2 completed (1 of 2)")
		if got := wfRuns(t, d, "report"); got != "1" {
			t.Errorf("report runs/ = %q, want 1", got)
		}
	})

	t.Run("failed upstream", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "broken", "#!/bin/sh\nexit 1\n")
		d.scriptJob(t, "never", "#!/bin/sh\ntrue\n")
		d.ok(t, `echo broken > mnt/never/config/after`)
		d.trigger(t, "broken", "{}")
		d.waitRun(t, "broken", 1)
		d.trigger(t, "broken", "{}") // the run ends after the first's follow-ups
		d.waitRun(t, "broken", 2)
		if got := wfRuns(t, d, "never"); got != "" {
			t.Errorf("never runs/ = %q after FAILED upstream runs", got)
		}
	})

	t.Run("setting", func(t *testing.T) {
		t.Parallel()
		for _, j := range []string{"ca", "cb", "cc"} {
			d.scriptJob(t, j, "#!/bin/sh\ntrue\n")
		}
		d.ok(t, `echo cb > mnt/ca/config/after && echo cc > mnt/cb/config/after`)
		d.fails(t, `echo ca > mnt/cc/config/after`, "Invalid argument")
		wfLogHas(t, d, "cc", "a cycle: cc after ca after cb after cc")
		for _, bad := range []struct{ v, why string }{
			{"cc", "a job cannot run after itself"},
			{"nosuch", `"nosuch": no such job of yours, nor one shared with you`},
			{"ca ca", "ca is named twice"},
		} {
			d.fails(t, `echo "$V" > mnt/cc/config/after`, "Invalid argument", "V="+bad.v)
			wfLogHas(t, d, "cc", bad.why)
		}
		d.wantFile(t, "mnt/cc/config/after", "\n")
		d.ok(t, `rm mnt/ca/config/after`)
		d.wantFile(t, "mnt/ca/config/after", "\n")
		d.ok(t, `echo ca > mnt/cc/config/after`) // no cycle any more
		wfLogHas(t, d, "cc", "config/after set to ca")
	})
}

// TestWorkflowAfterRestart: the daemon killed right after an upstream run
// ends, then started again: the downstream runs exactly once.
func TestWorkflowAfterRestart(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "up", "#!/bin/sh\ntrue\n")
	d.scriptJob(t, "down", "#!/bin/sh\ntrue\n")
	d.ok(t, `echo up > mnt/down/config/after`)
	d.ok(t, `printf '{}\n' > mnt/up/data && cat mnt/up/runs/1/wait`)
	d.kill9(t)
	d.restart(t)
	// Whether down's run was recorded before the kill (then it may have
	// ended FAILED by the crash) or is made at the restart, there is one.
	d.waitRun(t, "down", 1)
	d.stop(t)
	d.restart(t)
	if got := wfRuns(t, d, "down"); got != "1" {
		t.Errorf("down runs/ = %q after two restarts, want exactly 1", got)
	}
}

// TestWorkflowAfterShared: bob's job may run after alice's once she shares
// it with him (viewer is enough).
func TestWorkflowAfterShared(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	A, B := shareAs(alice), shareAs(bob)
	d := shareDaemon(t)
	A.ok(t, d, `mkdir mnt/fetch && echo script > mnt/fetch/config/type && printf '#!/bin/sh\ntrue\n' > mnt/fetch/config/script`)
	B.ok(t, d, `mkdir mnt/report && echo script > mnt/report/config/type && printf '%s' "$S" > mnt/report/config/script`, "S="+copyInput)
	up := "@" + alice.name + "/fetch"
	B.fails(t, d, `echo "$U" > mnt/report/config/after`, "Invalid argument", "U="+up)
	A.ok(t, d, `touch "mnt/fetch/shared/@$N"`, "N="+bob.name)
	B.ok(t, d, `echo "$U" > mnt/report/config/after`, "U="+up)
	A.ok(t, d, `echo '{}' > mnt/fetch/data && cat mnt/fetch/runs/1/wait`)
	waitFor(t, "bob's report run 1 ended", func() bool { return B.run(t, d, `cat mnt/report/runs/1/wait`).code == 0 })
	B.want(t, d, `cat mnt/report/runs/1/status`, "COMPLETED\n")
	B.want(t, d, `cat mnt/report/runs/1/triggered_by`, "after "+up+" run 1\n")
	doc := wfPayload(t, B.ok(t, d, `cat mnt/report/runs/1/input/input.json`))
	if st, _ := doc["after"].(map[string]any)[up].(map[string]any); st["owner"] != alice.name {
		t.Errorf("payload = %v, want alice's fetch run under %s", doc, up)
	}
}
