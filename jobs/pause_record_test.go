package jobs

import (
	"testing"
	"time"
)

// TestPauseBeforeStartRecorded: a pause that lands before the run's start
// is recorded (its status PENDING still) records PAUSED, and the start
// recorded after keeps it PAUSED with its start time: a daemon restarted
// then finds it paused (and frozen), not PENDING. Resume makes it RUNNING.
func TestPauseBeforeStartRecorded(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "early-pause")
	r := mustCreateRun(t, m.store, j.ID, Run{Status: Pending, Trigger: Manual, Queued: t0})
	k := runKey{j.ID, r.ID}

	m.markPaused(j.ID, r.ID, true)
	m.startedAt(k, Step{Label: "script"}, 0, 0, time.Time{})
	got, err := m.store.Run(j.ID, r.ID)
	mustOK(t, err)
	if got.Status != Paused || got.StartedAt.IsZero() {
		t.Fatalf("after a pause, then the start: %s started %v; want PAUSED with a start time", got.Status, got.StartedAt)
	}
	m.markPaused(j.ID, r.ID, false)
	if got, err = m.store.Run(j.ID, r.ID); err != nil || got.Status != Running {
		t.Fatalf("after resume: %s, %v; want RUNNING", got.Status, err)
	}
}
