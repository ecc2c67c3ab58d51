package jobs

import (
	"context"
	"sync"
	"time"
)

// Paused is the status of a run frozen by `echo pause > runs/<id>/ctl`.
const Paused Status = "PAUSED"

// runClock is a run's config/timeout that stops while the run is paused.
// It measures real time (time.Now, not Manager.now): it runs a real timer,
// and what is left of it must be measured on the timer's clock.
type runClock struct {
	mu      sync.Mutex
	timer   *time.Timer
	left    time.Duration // what remains when paused
	since   time.Time     // when timer was armed for left
	fire    func()
	paused  bool
	stopped bool
}

func newRunClock(d time.Duration, fire func()) *runClock {
	c := &runClock{left: d, since: time.Now(), fire: fire}
	c.timer = time.AfterFunc(d, fire)
	return c
}

// pause stops the clock, unless it has run out already.
func (c *runClock) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused || c.stopped || !c.timer.Stop() {
		return
	}
	c.left -= time.Since(c.since)
	c.paused = true
}

// resume starts the clock again with what was left.
func (c *runClock) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused || c.stopped {
		return
	}
	c.paused, c.since = false, time.Now()
	c.timer = time.AfterFunc(max(c.left, 0), c.fire)
}

func (c *runClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.timer.Stop()
}

// runDeadline is the run's context, cancelled with errRunTimeout once it
// has been RUNNING (not PAUSED) for timeout.
func (m *Manager) runDeadline(ctx context.Context, k runKey, timeout time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	clock := newRunClock(timeout, func() { cancel(errRunTimeout) })
	m.mu.Lock()
	if a := m.active[k]; a != nil {
		a.clock = clock
		if a.paused {
			clock.pause() // paused between dispatch and here
		}
	}
	m.mu.Unlock()
	return ctx, func() {
		clock.stop()
		cancel(nil)
	}
}

// Pause freezes a running run's steps (runs/<id>/ctl pause): status
// PAUSED, its timeout clock stopped. It needs a Backend that can freeze
// (the local one: the cgroup freezer).
func (m *Manager) Pause(jobID string, id uint64) error {
	if m.remoteRun(runKey{jobID, id}) { // cluster_run.go: its node pauses it
		return m.relayCtl(runKey{jobID, id}, "pause")
	}
	what := "run " + itoa(id) + "/ctl"
	if err := m.backend.CanFreeze(); err != nil {
		return m.Refuse(jobID, what, "pause needs the cgroup freezer: "+err.Error())
	}
	a, clock, why := m.pausable(runKey{jobID, id}, true)
	if why != "" {
		return m.Refuse(jobID, what, why)
	}
	if a == nil {
		return nil // paused already
	}
	if clock != nil {
		clock.pause()
	}
	if err := m.backend.Freeze(jobID, id, true); err != nil {
		_ = m.backend.Freeze(jobID, id, false) // undo what froze; the freeze error is the one to report
		m.setPaused(runKey{jobID, id}, false)
		if clock != nil {
			clock.resume() // the run goes on: so does its timeout
		}
		return m.Refuse(jobID, what, "pause: "+err.Error())
	}
	m.markPaused(jobID, id, true)
	return nil
}

// Resume thaws a paused run and starts its timeout clock again.
func (m *Manager) Resume(jobID string, id uint64) error {
	if m.remoteRun(runKey{jobID, id}) { // cluster_run.go: its node resumes it
		return m.relayCtl(runKey{jobID, id}, "resume")
	}
	what := "run " + itoa(id) + "/ctl"
	if err := m.backend.CanFreeze(); err != nil {
		return m.Refuse(jobID, what, "resume: "+err.Error())
	}
	a, clock, why := m.pausable(runKey{jobID, id}, false)
	if why != "" {
		return m.Refuse(jobID, what, why)
	}
	if a == nil {
		return nil // not paused
	}
	if err := m.backend.Freeze(jobID, id, false); err != nil {
		return m.Refuse(jobID, what, "resume: "+err.Error())
	}
	if clock != nil {
		clock.resume()
	}
	m.markPaused(jobID, id, false)
	return nil
}

// pausable flips the run's paused flag to pause and returns it with its
// timeout clock (read under m.mu: the run's goroutine sets it after
// dispatch, nil until then), or why it cannot; nil and "" when the flag
// already is so.
func (m *Manager) pausable(k runKey, pause bool) (*activeRun, *runClock, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.active[k]
	switch {
	case a == nil:
		return nil, nil, "run " + itoa(k.id) + " is not active: nothing to pause or resume"
	case a.cancel == nil:
		return nil, nil, "run " + itoa(k.id) + " has not started: stop it instead"
	case a.paused == pause:
		return nil, nil, ""
	}
	a.paused = pause
	return a, a.clock, ""
}

func (m *Manager) setPaused(k runKey, paused bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.active[k]; a != nil {
		a.paused = paused
	}
}

// markPaused records PAUSED or RUNNING again, and logs it.
func (m *Manager) markPaused(jobID string, id uint64, paused bool) {
	from, to, verb := Running, Paused, "paused (frozen; its timeout clock stopped)"
	if !paused {
		from, to, verb = Paused, Running, "resumed"
	}
	if _, err := m.store.UpdateRun(jobID, id, func(r *Run) {
		// A pause can come before the start is recorded (PENDING still):
		// the run is frozen all the same, and a restart must see PAUSED.
		if r.Status == from || paused && r.Status == Pending {
			r.Status = to
		}
	}); err != nil {
		m.logger.Printf("job %s: run %d: record %s: %v", jobID, id, to, err)
	}
	m.event(jobID, "run %d %s", id, verb)
}

// StopRun is Stop for runs/<id>/ctl and MOUNT/JOB/ctl: a paused run is
// thawed first, so that its steps see the SIGTERM and the grace.
func (m *Manager) StopRun(jobID string, id uint64, kill bool) error {
	m.mu.Lock()
	a := m.active[runKey{jobID, id}]
	paused := a != nil && a.paused
	m.mu.Unlock()
	if paused {
		_ = m.Resume(jobID, id) // a failure is logged; the stop goes on (a step's kill thaws it)
	}
	return m.Stop(jobID, id, kill)
}
