package jobs

import (
	"strings"
	"testing"
	"time"
)

// A user's refused writes, however many, add at most mirrorBurst lines
// and then mirrorRate a second to the daemon's log, and say how many were
// left out; the job's log keeps every one.
func TestMirrorBoundsDaemonLog(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "loud", "#!/bin/sh\n")
	const tries = 3 * mirrorBurst
	began := time.Now()
	for i := 0; i < tries; i++ {
		if err := m.WriteSetting(j.ID, "config/timeout", "bogus"); err == nil {
			t.Fatal("config/timeout bogus was taken")
		}
	}
	rejected := strings.Count(m.daemonLog.String(), "config/timeout rejected")
	if bound := mirrorBurst + int(time.Since(began).Seconds()*mirrorRate) + 1; rejected > bound || rejected < mirrorBurst-10 { // the job's making took a few
		t.Errorf("the daemon's log has %d of %d refusals, want %d to %d", rejected, tries, mirrorBurst-10, bound)
	}
	if got := strings.Count(strings.Join(jobLogLines(t, m, j.ID), "\n"), "config/timeout rejected"); got != tries {
		t.Errorf("the job's log has %d refusals, want all %d", got, tries)
	}
	m.flushFolds() // as Close does
	if !strings.Contains(m.daemonLog.String(), "more job log lines of this owner since") {
		t.Errorf("the daemon's log does not say how many lines it left out:\n%s", tail(m.daemonLog.String(), 600))
	}
}

func tail(s string, n int) string { return s[max(len(s)-n, 0):] }
