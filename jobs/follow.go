package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// bell wakes every goroutine waiting for a run's log to grow: ring closes
// the current channel and arms a new one, so a waiter that fetched the
// channel before its read can never miss an append.
type bell struct {
	mu     sync.Mutex
	ch     chan struct{}
	notify func() // cluster: signals the other nodes' readers too
}

func newBell() *bell { return &bell{ch: make(chan struct{})} }

func (b *bell) ring() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	notify := b.notify
	b.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// onRing makes every ring call f too, after the bell's lock.
func (b *bell) onRing(f func()) {
	b.mu.Lock()
	b.notify = f
	b.mu.Unlock()
}

func (b *bell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// Follow is for a live reader of a run's log. While the run is active it
// returns a channel that closes at the next append, one that closes when
// the run is terminal, and the budget the run's readers share; fetch them
// before reading, then wait on them when the read found nothing new. active
// is false once every byte of the log is on disk for good.
func (m *Manager) Follow(jobID string, id uint64) (grew, ended <-chan struct{}, budget *ReaderBudget, active bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.active[runKey{jobID, id}]
	if a == nil {
		return nil, nil, nil, false
	}
	return a.bell.wait(), a.done, a.readers, true
}

// Closing is closed when the daemon begins to stop: blocking reads end then.
func (m *Manager) Closing() <-chan struct{} { return m.closing }

// BeginClose wakes every blocking reader so the mount can be unmounted;
// Close does the rest.
func (m *Manager) BeginClose() {
	m.closeOnce.Do(func() { close(m.closing) })
}

// Wait blocks until the run is terminal, ctx is done (ctx.Err()) or the
// daemon is stopping (the run as it is now), and returns the run.
func (m *Manager) Wait(ctx context.Context, jobID string, id uint64) (Run, error) {
	a := m.activeOrPublished(ctx, runKey{jobID, id})
	if a == nil && m.cluster != nil { // running elsewhere: the feed ends it
		a = m.trackRun(runKey{jobID, id})
	}
	if a != nil {
		var poll <-chan time.Time
		if m.cluster != nil {
			// Another node's end arrives through the store's feed; the
			// store itself is read now and then too, so that an end the
			// feed did not bring (a watch that lagged and was made anew
			// under load) still ends the wait.
			t := time.NewTicker(clusterWaitPoll)
			defer t.Stop()
			poll = t.C
		}
	wait:
		for {
			select {
			case <-a.done:
				break wait
			case <-m.closing:
				break wait
			case <-ctx.Done():
				return Run{}, ctx.Err()
			case <-poll:
				if r, err := m.store.Run(jobID, id); err == nil && r.Status.Terminal() {
					return r, nil
				}
			}
		}
	}
	return m.store.Run(jobID, id)
}

// clusterWaitPoll is how often Wait reads a run of a cluster store that it
// waits for.
const clusterWaitPoll = time.Second

// publishWait bounds how long Wait waits for a run the store holds as not
// ended to be published (made active) by the trigger that committed it.
const publishWait = 2 * time.Second

// activeOrPublished returns the active entry of run k. A trigger commits a
// run before it publishes it (so that no lock is held across the fsync):
// a reader that learned its id in between (runs/latest, another process)
// found no entry and took PENDING for the verdict. A run the store holds
// as not ended is given publishWait to appear.
func (m *Manager) activeOrPublished(ctx context.Context, k runKey) *activeRun {
	active := func() *activeRun {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.active[k]
	}
	if a := active(); a != nil || m.cluster != nil {
		return a
	}
	if r, err := m.store.Run(k.job, k.id); err != nil || r.Status.Terminal() {
		return nil // gone, or ended: the store's record is the answer
	}
	// Not ended and not active: its trigger is between commit and publish.
	// The active map is looked at every 5 ms, the store (a run published
	// and ended between two looks) every 100 ms.
	deadline := time.NewTimer(publishWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-tick.C:
			if a := active(); a != nil {
				return a
			}
			if n%20 == 0 {
				if r, err := m.store.Run(k.job, k.id); err != nil || r.Status.Terminal() {
					return nil
				}
			}
		case <-deadline.C:
			return nil
		case <-ctx.Done():
			return nil
		case <-m.closing:
			return nil
		}
	}
}

// Stop ends an active run: SIGTERM to all its processes, the grace period,
// then SIGKILL (kill skips the grace). It ends CANCELLED. A queued run is
// cancelled before it starts. Stopping a run that has ended is ErrInvalid.
func (m *Manager) Stop(jobID string, id uint64, kill bool) error {
	k := runKey{jobID, id}
	m.mu.Lock()
	a := m.active[k]
	if a == nil {
		m.mu.Unlock()
		r, err := m.store.Run(jobID, id)
		if err != nil {
			return err
		}
		if m.cluster != nil && !r.Status.Terminal() {
			return m.stopRemote(k, kill) // cluster_run.go: the feed has not shown it here yet
		}
		what := "run " + itoa(id) + "/ctl"
		return m.reject(jobID, what, errorf(ErrInvalid, "%s: run %d has already ended (%s): nothing to stop", what, id, r.Status))
	}
	if m.cluster != nil && a.cancel == nil && !a.claimed && !a.stopped {
		m.mu.Unlock()
		return m.stopRemote(k, kill) // cluster_run.go
	}
	if a.cancel == nil { // still queued
		if a.stopped {
			m.mu.Unlock()
			return nil // an earlier stop is ending it
		}
		a.stopTimerLocked()
		a.stopped = true // a trigger making its folder must not queue it now
		for i, q := range m.queue {
			if q == k {
				m.queue = append(m.queue[:i:i], m.queue[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
		m.finish(k, Run{Status: Cancelled, Error: "stopped before it started"})
		return nil
	}
	cause := errStop
	if kill {
		cause = errKilled
	}
	a.cancel(cause)
	m.mu.Unlock()
	m.event(jobID, "run %d: %s requested", id, map[bool]string{false: "stop", true: "kill"}[kill])
	return nil
}

var (
	errStop   = errors.New("stopped (ctl)")
	errKilled = errKillCause{}
)

// errKillCause is the cancel cause of a `kill`: it matches exec.ErrKill, so
// the step is SIGKILLed without grace.
type errKillCause struct{}

func (errKillCause) Error() string        { return "killed (ctl)" }
func (errKillCause) Is(target error) bool { return target == exec.ErrKill }
