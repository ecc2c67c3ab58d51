package jobs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillAfterStop: `kill` written after `stop` ends a step that ignores
// SIGTERM at once instead of after the grace (two minutes here: past the
// wait's deadline, so only the kill can end the run in time).
func TestKillAfterStop(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{Grace: 2 * time.Minute})
	j := scriptJob(t, m, "stubborn", "#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 0.1; done\n")
	id := mustTrigger(t, m, j.ID, "{}")
	log := filepath.Join(m.RunDir(j.ID, id), "log")
	eventually(t, "the step ignores SIGTERM", func() bool {
		b, _ := os.ReadFile(log)
		if r, err := m.Run(j.ID, id); err == nil && r.Status.Terminal() {
			// Said at once, with why: a run that ended never prints.
			t.Fatalf("the run ended %s %q before its step was ready; log:\n%s", r.Status, r.Error, b)
		}
		return strings.Contains(string(b), "ready")
	})
	mustOK(t, m.Stop(j.ID, id, false))
	mustOK(t, m.Stop(j.ID, id, true))
	if r := waitRun(t, m, j.ID, id); r.Status != Cancelled {
		t.Errorf("run after stop and kill = %s %q, want CANCELLED", r.Status, r.Error)
	}
}
