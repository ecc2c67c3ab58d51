//go:build linux

package integration

import (
	"encoding/json"
	"fmt"
	"testing"
)

// wfPayload decodes a run's input.json.
func wfPayload(t *testing.T, text string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("input.json is not JSON: %v\n%s", err, text)
	}
	return doc
}

// copyInput is a script that keeps its payload as output.
const copyInput = "#!/bin/sh\ncp \"$1/input.json\" \"$2/payload.json\"\n"

// TestWorkflowHooks: config/on_failure and config/on_success trigger
// another job with the ended run's status.json as payload.
func TestWorkflowHooks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	t.Run("setting", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "hset", "#!/bin/sh\ntrue\n")
		d.scriptJob(t, "hset-target", copyInput)
		d.wantFile(t, "mnt/hset/config/on_failure", "\n")
		d.ok(t, `echo hset-target > mnt/hset/config/on_failure && echo hset-target > mnt/hset/config/on_success`)
		d.wantFile(t, "mnt/hset/config/on_failure", "hset-target\n")
		d.ok(t, `V=$(cat mnt/hset/config/on_success); echo "$V" > mnt/hset/config/on_success`)
		for _, bad := range []struct{ v, why string }{
			{"nosuchjob", "no such job of yours, nor one shared with you as runner"},
			{"hset", "a job cannot be its own hook"},
			{"@nosuchuser/x", "no user nosuchuser"},
			{"bad/name", "config/on_failure"},
		} {
			d.fails(t, `echo "$V" > mnt/hset/config/on_failure`, "Invalid argument", "V="+bad.v)
			wfLogHas(t, d, "hset", bad.why)
		}
		d.wantFile(t, "mnt/hset/config/on_failure", "hset-target\n")
		d.ok(t, `rm mnt/hset/config/on_failure`)
		d.wantFile(t, "mnt/hset/config/on_failure", "\n")
		wfLogHas(t, d, "hset", "config/on_failure reset to its default")
	})

	t.Run("on_failure payload", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "etl", "#!/bin/sh\necho broken\nexit 2\n")
		d.scriptJob(t, "alert", copyInput)
		d.ok(t, `echo alert > mnt/etl/config/on_failure && echo alert > mnt/etl/config/on_success`)
		d.trigger(t, "etl", "{}")
		d.waitRun(t, "etl", 1)
		if got := d.waitRun(t, "alert", 1); got != "COMPLETED" {
			t.Fatalf("alert run 1 ended %s", got)
		}
		d.wantFile(t, "mnt/alert/runs/1/trigger", "hook\n")
		d.wantFile(t, "mnt/alert/runs/1/triggered_by", "on_failure of etl run 1\n")
		doc := wfPayload(t, d.cat(t, "mnt/alert/runs/1/input/input.json"))
		if doc["job"] != "etl" || doc["status"] != "FAILED" || fmt.Sprint(doc["exit_code"]) != "2" || fmt.Sprint(doc["id"]) != "1" {
			t.Errorf("payload = %v, want etl's run 1, FAILED, exit 2", doc)
		}
		d.wantFile(t, "mnt/alert/runs/1/output/payload.json", d.cat(t, "mnt/alert/runs/1/input/input.json"))
		wfLogHas(t, d, "etl", "run 1 FAILED: on_failure triggered run 1 of alert")
	})

	t.Run("on_success", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "build", "#!/bin/sh\ntrue\n")
		d.scriptJob(t, "publish", copyInput)
		d.ok(t, `echo publish > mnt/build/config/on_success`)
		d.trigger(t, "build", "{}")
		if got := d.waitRun(t, "publish", 1); got != "COMPLETED" {
			t.Fatalf("publish run 1 ended %s", got)
		}
		if doc := wfPayload(t, d.cat(t, "mnt/publish/runs/1/input/input.json")); doc["status"] != "COMPLETED" || doc["job"] != "build" {
			t.Errorf("payload = %v, want build's COMPLETED run", doc)
		}
	})

	t.Run("after the last retry", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "flop", "#!/bin/sh\nexit 1\n")
		d.scriptJob(t, "flop-alert", copyInput)
		d.ok(t, `echo 1 > mnt/flop/config/retries && echo flop-alert > mnt/flop/config/on_failure`)
		d.trigger(t, "flop", "{}")
		d.waitRun(t, "flop", 2)
		d.waitRun(t, "flop-alert", 1)
		wfLogHas(t, d, "flop", "run 2 FAILED: on_failure triggered run 1 of flop-alert")
		d.wantFile(t, "mnt/flop-alert/runs/1/triggered_by", "on_failure of flop run 2\n")
		if got := wfRuns(t, d, "flop-alert"); got != "1" {
			t.Errorf("flop-alert runs/ = %q, want 1: the retried run 1 triggers no hook", got)
		}
	})

	t.Run("depth limit", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "ping", "#!/bin/sh\nexit 1\n")
		d.scriptJob(t, "pong", "#!/bin/sh\nexit 1\n")
		d.ok(t, `echo pong > mnt/ping/config/on_failure && echo ping > mnt/pong/config/on_failure`)
		d.trigger(t, "ping", "{}")
		// ping 1, pong 1, ping 2, pong 2, ping 3, pong 3: pong 3 is the
		// fifth hook in a row and triggers nothing.
		wfLogHas(t, d, "pong", "on_failure ping not triggered: run 3 ends a chain of 5 hooks, the limit")
		if got := wfRuns(t, d, "ping"); got != "1 2 3" {
			t.Errorf("ping runs/ = %q, want 1 2 3", got)
		}
		if got := wfRuns(t, d, "pong"); got != "1 2 3" {
			t.Errorf("pong runs/ = %q, want 1 2 3", got)
		}
	})
}

// TestWorkflowHookShared: bob's job may name alice's job as its hook once
// alice shares it with him as runner; it then runs as alice.
func TestWorkflowHookShared(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	A, B := shareAs(alice), shareAs(bob)
	d := shareDaemon(t)
	script := "#!/bin/sh\nid -un > \"$2/who\"\ncp \"$1/input.json\" \"$2/payload.json\"\n"
	A.ok(t, d, `mkdir mnt/pager && echo script > mnt/pager/config/type && printf '%s' "$S" > mnt/pager/config/script`, "S="+script)
	B.ok(t, d, `mkdir mnt/etl && echo script > mnt/etl/config/type && printf '#!/bin/sh\nexit 3\n' > mnt/etl/config/script`)
	hook := "@" + alice.name + "/pager"
	B.fails(t, d, `echo "$H" > mnt/etl/config/on_failure`, "Invalid argument", "H="+hook)
	A.ok(t, d, `echo viewer > "mnt/pager/shared/@$U"`, "U="+bob.name)
	B.fails(t, d, `echo "$H" > mnt/etl/config/on_failure`, "Invalid argument", "H="+hook)
	A.ok(t, d, `echo runner > "mnt/pager/shared/@$U"`, "U="+bob.name)
	B.ok(t, d, `echo "$H" > mnt/etl/config/on_failure && echo '{}' > mnt/etl/data`, "H="+hook)
	waitFor(t, "alice's pager run 1 ended", func() bool { return A.run(t, d, `cat mnt/pager/runs/1/wait`).code == 0 })
	A.want(t, d, `cat mnt/pager/runs/1/triggered_by`, fmt.Sprintf("on_failure of @%s/etl run 1\n", bob.name))
	A.want(t, d, `cat mnt/pager/runs/1/output/who`, alice.name+"\n")
	doc := wfPayload(t, A.ok(t, d, `cat mnt/pager/runs/1/input/input.json`))
	if doc["owner"] != bob.name || fmt.Sprint(doc["exit_code"]) != "3" {
		t.Errorf("payload = %v, want bob's run, exit 3", doc)
	}
}
