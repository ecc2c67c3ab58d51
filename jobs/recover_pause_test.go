package jobs

import (
	"testing"
	"time"
)

// TestPausedFor: the time a run spent paused, as a later daemon reads it
// from the run folder: ended pauses summed, the one going on counted to
// now, repeated pauses or resumes changing nothing.
func TestPausedFor(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := pausedFor(dir, t0); got != 0 {
		t.Fatalf("never paused: %v", got)
	}
	for _, step := range []struct {
		frozen bool
		at     time.Duration
	}{{true, 0}, {true, 5 * time.Second}, {false, 10 * time.Second}, {false, 11 * time.Second}, {true, 20 * time.Second}} {
		if err := recordPause(dir, step.frozen, t0.Add(step.at)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := pausedFor(dir, t0.Add(25*time.Second)), 15*time.Second; got != want {
		t.Errorf("pausedFor = %v, want %v (10 s ended, 5 s going on)", got, want)
	}
	if err := recordPause(dir, false, t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, want := pausedFor(dir, t0.Add(99*time.Second)), 20*time.Second; got != want {
		t.Errorf("after the resume: pausedFor = %v, want %v", got, want)
	}
}
