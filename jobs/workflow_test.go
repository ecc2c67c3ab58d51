package jobs

import (
	"testing"
	"time"
)

// TestFollowupsAfterCrash: a run whose end was committed with its
// follow-ups still to make (the daemon died right after) gets them at the
// next start, once; one whose hook was recorded before the crash gets no
// second; and a later start makes nothing again.
func TestFollowupsAfterCrash(t *testing.T) {
	state := t.TempDir()
	m1 := newTestManager(t, Options{StateDir: state})
	up := scriptJob(t, m1, "up", "#!/bin/sh\nexit 1\n")
	down := scriptJob(t, m1, "down", "#!/bin/sh\ncat \"$1/input.json\"\n")
	mustOK(t, m1.WriteSetting(up.ID, "config/on_failure", jobName("down")))
	// What the end of two runs left: the first crashed before its hook was
	// recorded, the second after (its mark made, the Followup not cleared).
	now := time.Now().UTC()
	code := 1
	ended := Run{Status: Failed, Trigger: Manual, Queued: now, StartedAt: now, EndedAt: now, ExitCode: &code,
		Error: "step script exited with code 1", Followup: true}
	r1, err := m1.Store().CreateRun(up.ID, ended)
	mustOK(t, err)
	ended.FollowedUp = []string{"config/on_failure"}
	_, err = m1.Store().CreateRun(up.ID, ended)
	mustOK(t, err)
	mustOK(t, m1.Close())

	m2 := newTestManager(t, Options{StateDir: state})
	if r := waitRun(t, m2, down.ID, 1); r.Status != Completed || r.TriggeredBy != "on_failure of "+jobName("up")+" run 1" {
		t.Errorf("down run 1 = %s triggered by %q, want COMPLETED by on_failure of up run 1", r.Status, r.TriggeredBy)
	}
	if r, err := m2.Run(up.ID, r1.ID); err != nil || r.Followup || len(r.FollowedUp) != 1 {
		t.Errorf("up run 1 after its follow-up: followup %v, followed_up %v (%v)", r.Followup, r.FollowedUp, err)
	}
	mustOK(t, m2.Close())

	m3 := newTestManager(t, Options{StateDir: state})
	ids, err := m3.Runs(down.ID)
	mustOK(t, err)
	if len(ids) != 1 {
		t.Errorf("down has runs %v after two restarts, want exactly one", ids)
	}
}

// TestRetriesParse: the grammar of config/retries and the back-off.
func TestRetriesParse(t *testing.T) {
	p, err := parseRetries("3 backoff 10s x2 max 30s")
	mustOK(t, err)
	for attempt, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 30 * time.Second} {
		if got := p.delay(attempt); got != want {
			t.Errorf("delay(%d) = %v, want %v", attempt, got, want)
		}
	}
	p, err = parseRetries("2 on 75 timeout")
	mustOK(t, err)
	c75, c3 := 75, 3
	for _, tc := range []struct {
		r    Run
		want bool
	}{
		{Run{Status: Failed, ExitCode: &c75}, true},
		{Run{Status: Failed, ExitCode: &c3}, false},
		{Run{Status: Timeout}, true},
		{Run{Status: Cancelled}, false},
		{Run{Status: Failed, ExitCode: &c75, Attempt: 2}, false},
		{Run{Status: Failed, ExitCode: &c75, Error: errShutdown.Error()}, false},
	} {
		if got := p.refusal(tc.r) == ""; got != tc.want {
			t.Errorf("retried %+v = %v, want %v (%s)", tc.r, got, tc.want, p.refusal(tc.r))
		}
	}
	for _, bad := range []string{"", "-1", "101", "3 backoff 0s", "3 backoff 1s x11", "3 on 256", "3 max 1m", "3 x2"} {
		if _, err := parseRetries(bad); err == nil {
			t.Errorf("parseRetries(%q) accepted", bad)
		}
	}
}

// TestAfterAfterCrash: an upstream run whose end was committed but not
// yet counted for its downstream (the daemon died in between) starts the
// downstream at the next start, once.
func TestAfterAfterCrash(t *testing.T) {
	state := t.TempDir()
	m1 := newTestManager(t, Options{StateDir: state})
	up := scriptJob(t, m1, "aup", "#!/bin/sh\ntrue\n")
	down := scriptJob(t, m1, "adown", "#!/bin/sh\ntrue\n")
	mustOK(t, m1.WriteSetting(down.ID, "config/after", jobName("aup")))
	now := time.Now().UTC()
	zero := 0
	_, err := m1.Store().CreateRun(up.ID, Run{Status: Completed, Trigger: Manual, Queued: now, StartedAt: now,
		EndedAt: now, ExitCode: &zero, Followup: true})
	mustOK(t, err)
	mustOK(t, m1.Close())

	m2 := newTestManager(t, Options{StateDir: state})
	if r := waitRun(t, m2, down.ID, 1); r.Trigger != After || r.TriggeredBy != "after "+jobName("aup")+" run 1" {
		t.Errorf("adown run 1: trigger %s by %q", r.Trigger, r.TriggeredBy)
	}
	mustOK(t, m2.Close())
	m3 := newTestManager(t, Options{StateDir: state})
	if ids, err := m3.Runs(down.ID); err != nil || len(ids) != 1 {
		t.Errorf("adown runs %v (%v) after two restarts, want one", ids, err)
	}
}
