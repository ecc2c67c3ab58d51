package jobs

import (
	"context"
	"testing"
	"time"
)

// TestPauseBeforeClock: a run paused after its dispatch but before its
// goroutine armed config/timeout's clock gets a stopped clock, so the
// pause stops its timeout as the README says.
func TestPauseBeforeClock(t *testing.T) {
	m := newTestManager(t, Options{})
	k := runKey{"job", 1}
	m.mu.Lock()
	m.active[k] = &activeRun{done: make(chan struct{}), paused: true, cancel: func(error) {}}
	m.mu.Unlock()
	_, cancel := m.runDeadline(context.Background(), k, time.Hour)
	defer cancel()
	_, clock, why := m.pausable(k, false)
	if why != "" || clock == nil {
		t.Fatalf("pausable: clock %v, %q; want the run's clock", clock, why)
	}
	clock.mu.Lock()
	paused := clock.paused
	clock.mu.Unlock()
	if !paused {
		t.Error("the clock of a paused run runs")
	}
	m.mu.Lock()
	delete(m.active, k)
	m.mu.Unlock()
}
