package jobs

import (
	"strings"
	"testing"
	"time"
)

// A schedule's catch-up run waits for Start (the daemon calls it once the
// tree is mounted): New only notes it, so a mount that fails starts and
// kills no run.
func TestCatchupWaitsForStart(t *testing.T) {
	state := t.TempDir()
	m1 := newTestManager(t, Options{StateDir: state})
	j := scriptJob(t, m1, "catchup", "#!/bin/sh\ntrue\n")
	mustOK(t, m1.WriteSetting(j.ID, "config/schedule", "0 0 * * * # catchup\n"))
	twoDaysAgo := time.Now().Add(-48 * time.Hour).UTC()
	mustOK(t, m1.store.SetSetting(j.ID, keyLastTick, twoDaysAgo.Format(time.RFC3339Nano), twoDaysAgo))
	mustOK(t, m1.Close())

	m2 := newTestManager(t, Options{StateDir: state})
	if id, err := m2.LatestRun(j.ID); err != nil || id != 0 {
		t.Fatalf("before Start: latest run %d, %v; want none", id, err)
	}
	m2.Start()
	eventually(t, "the catch-up run exists", func() bool {
		id, err := m2.LatestRun(j.ID)
		return err == nil && id == 1
	})
	if r := waitRun(t, m2, j.ID, 1); r.Trigger != Schedule || r.Status != Completed {
		t.Errorf("catch-up run: trigger %s, status %s; want schedule, COMPLETED", r.Trigger, r.Status)
	}
	log := strings.Join(jobLogLines(t, m2, j.ID), "\n")
	if !strings.Contains(log, "one catch-up run (# catchup)") {
		t.Errorf("job log does not tell of the catch-up run:\n%s", log)
	}
	m2.Start() // a second call starts nothing more
	if id, err := m2.LatestRun(j.ID); err != nil || id != 1 {
		t.Errorf("after a second Start: latest run %d, %v; want 1", id, err)
	}
}
