package scheduler

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// maxSleep is the longest Run waits before it looks at the wall clock again.
// Timers run on the monotonic clock, which stops while the machine sleeps and
// ignores clock steps; waking once a minute bounds how late such a jump can
// make a tick.
const maxSleep = time.Minute

// Scheduler calls a function at each job's ticks. It has one goroutine (Run)
// and one timer, armed for the earliest tick of all jobs, so a job costs a
// map entry and a heap slot, not a goroutine.
//
// Lock order: mu is a leaf; fire is never called with it held, so fire may
// call Set, Remove and Next.
type Scheduler struct {
	fire func(jobID string, tick time.Time) // called only from Run's goroutine
	wake chan struct{}                      // capacity 1: the earliest tick changed

	mu   sync.Mutex
	lead time.Duration     // guarded by mu: how long before its tick a job fires (SetLead)
	jobs map[string]*entry // guarded by mu: every scheduled job
	due  ticks             // guarded by mu: jobs with a next tick, earliest first; not the one firing
}

// entry is one job's schedule. Set replaces the entry rather than changing
// it, so Run can tell that a job was set again while it fired.
type entry struct {
	id     string
	spec   Spec
	next   time.Time // guarded by Scheduler.mu; zero: no tick
	fired  time.Time // guarded by Scheduler.mu; the last tick fired (ahead of it, with a lead)
	index  int       // guarded by Scheduler.mu; position in due, -1 if not in it
	firing bool      // guarded by Scheduler.mu; Run is calling fire for it
}

// New returns a Scheduler that calls fire at each tick. fire runs on Run's
// goroutine and delays every later tick while it runs, so it must be fast or
// hand the work off; deciding whether a tick starts a run (enabled, overlap)
// is fire's business.
func New(fire func(jobID string, tick time.Time)) *Scheduler {
	return &Scheduler{
		fire: fire,
		wake: make(chan struct{}, 1),
		jobs: make(map[string]*entry),
	}
}

// SetLead makes every job fire lead before its tick, with the tick: the
// caller prepares the tick's work ahead and starts it on time. The tick
// after is counted from the tick fired, so one tick never fires twice.
func (s *Scheduler) SetLead(lead time.Duration) {
	s.mu.Lock()
	s.lead = max(lead, 0)
	s.mu.Unlock()
	s.poke()
}

// Set replaces jobID's schedule; its next tick is computed from now. A Spec
// without a Schedule removes the job.
func (s *Scheduler) Set(jobID string, spec Spec) {
	if spec.Schedule == nil {
		s.Remove(jobID)
		return
	}
	e := &entry{id: jobID, spec: spec, next: spec.Next(time.Now()), index: -1}
	s.mu.Lock()
	top := s.due.top()
	s.drop(jobID)
	s.jobs[jobID] = e
	if !e.next.IsZero() {
		heap.Push(&s.due, e)
	}
	changed := s.due.top() != top
	s.mu.Unlock()
	if changed {
		s.poke()
	}
}

// Remove forgets jobID's schedule. A tick already being fired completes.
func (s *Scheduler) Remove(jobID string) {
	s.mu.Lock()
	top := s.due.top()
	s.drop(jobID)
	changed := s.due.top() != top
	s.mu.Unlock()
	if changed {
		s.poke()
	}
}

// Next returns jobID's next tick, false if it has none. Called from fire for
// the job being fired, it returns the tick that would follow if fire returned
// now. A tick fired ahead (SetLead) is still the next until it has come.
func (s *Scheduler) Next(jobID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.jobs[jobID]
	switch {
	case e == nil:
		return time.Time{}, false
	case e.firing:
		n := e.spec.Next(later(time.Now(), e.next))
		return n, !n.IsZero()
	case e.fired.After(time.Now()):
		return e.fired, true
	}
	return e.next, !e.next.IsZero()
}

// Run fires ticks until ctx is done; call it once. Due jobs fire one at a
// time, earliest tick first (ties by job id). When fire returns, that job's
// next tick is computed from the current time, so ticks that passed while
// fire (or an earlier fire) ran are skipped, never replayed in a burst.
func (s *Scheduler) Run(ctx context.Context) {
	timer := time.NewTimer(maxSleep)
	defer timer.Stop()
	for {
		s.fireDue(ctx)
		timer.Reset(s.sleep())
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// fireDue fires every job whose tick has come.
func (s *Scheduler) fireDue(ctx context.Context) {
	for ctx.Err() == nil {
		e := s.popDue(time.Now())
		if e == nil {
			return
		}
		s.fire(e.id, e.next) // e.next is not written while e fires
		s.rearm(e)
	}
}

// popDue takes the earliest entry off the heap if its tick, less the
// lead, is at or before now, and marks it firing.
func (s *Scheduler) popDue(now time.Time) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.due.top()
	if e == nil || e.next.Add(-s.lead).After(now) {
		return nil
	}
	heap.Pop(&s.due)
	e.firing = true
	return e
}

// rearm computes a fired entry's next tick from now, or from the tick it
// fired when that is still ahead (the lead), unless the job was set again
// or removed meanwhile.
func (s *Scheduler) rearm(e *entry) {
	next := e.spec.Next(later(time.Now(), e.next))
	s.mu.Lock()
	defer s.mu.Unlock()
	e.firing, e.fired = false, e.next
	if s.jobs[e.id] != e {
		return
	}
	e.next = next
	if !next.IsZero() {
		heap.Push(&s.due, e)
	}
}

// sleep returns how long Run may wait for the earliest tick.
func (s *Scheduler) sleep() time.Duration {
	s.mu.Lock()
	e, lead := s.due.top(), s.lead
	var at time.Time
	if e != nil {
		at = e.next.Add(-lead)
	}
	s.mu.Unlock()
	if e == nil {
		return maxSleep
	}
	return min(max(time.Until(at), 0), maxSleep)
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// drop removes jobID from jobs and due; s.mu must be held.
func (s *Scheduler) drop(jobID string) {
	e := s.jobs[jobID]
	if e == nil {
		return
	}
	delete(s.jobs, jobID)
	if e.index >= 0 {
		heap.Remove(&s.due, e.index)
	}
}

// poke tells Run the earliest tick changed, without blocking.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
