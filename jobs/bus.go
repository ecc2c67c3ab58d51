package jobs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Event types, as MOUNT/.jobfs/events shows them.
const (
	EventRunQueued  = "run.queued"
	EventRunStarted = "run.started"
	EventRunEnded   = "run.ended"
	EventSetting    = "setting.changed"
	EventCreated    = "job.created"
	EventRenamed    = "job.renamed"
	EventDeleted    = "job.deleted"
	// EventRefused is a job not created (mkdir of a bad name): there is no
	// job log to hold the reason, so the event carries it.
	EventRefused = "job.refused"
	// EventMissed stands for Missed events a reader was too slow to take.
	EventMissed = "missed"
)

// Event is one thing that happened to a job. Seq counts the events one
// reader was given (a missed line counts the events it stands for), so a
// reader sees 1, 2, 3 ... with no gap.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Owner    string    `json:"owner,omitempty"`
	Job      string    `json:"job,omitempty"`
	Run      uint64    `json:"run,omitempty"`
	Status   Status    `json:"status,omitempty"`
	Trigger  Trigger   `json:"trigger,omitempty"`
	By       string    `json:"triggered_by,omitempty"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Setting  string    `json:"setting,omitempty"`
	NewName  string    `json:"new_name,omitempty"`
	Missed   uint64    `json:"missed,omitempty"`
	Reason   string    `json:"reason,omitempty"`

	id       string            // the job's id
	ownerUID Owner             // whose job: who sees it
	shares   map[string][]byte // the job's shares when it happened
}

// subscriberQueue bounds the events waiting for one reader: past it, the
// reader is told how many it missed instead (about 300 KiB at most).
const subscriberQueue = 1024

// bus hands every event to every subscriber that may see it, without ever
// waiting for one.
type bus struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
	n    atomic.Int32 // len(subs), read without the lock on the hot path
}

// Subscription is one reader of the events.
type Subscription struct {
	b      *bus
	caller Caller
	all    bool          // sees every job (a single-user mount)
	ready  chan struct{} // a token when queue became non-empty
	queue  []Event       // guarded by b.mu; at most subscriberQueue events plus missed markers
	events int           // real events in queue
	seq    uint64        // the last Seq handed out

	matchMu sync.Mutex
	matches map[string]bool // share name -> names this caller (resolved once)
}

// Subscribe starts delivering the events caller c may see (every event
// when all) from now on. Close the subscription when done.
func (m *Manager) Subscribe(c Caller, all bool) *Subscription {
	s := &Subscription{b: &m.bus, caller: c, all: all, ready: make(chan struct{}, 1)}
	m.bus.mu.Lock()
	defer m.bus.mu.Unlock()
	if m.bus.subs == nil {
		m.bus.subs = map[*Subscription]struct{}{}
	}
	m.bus.subs[s] = struct{}{}
	m.bus.n.Store(int32(len(m.bus.subs)))
	m.metrics.readers(eventsReader, 1)
	return s
}

// Close ends the subscription; what it still held is dropped.
func (s *Subscription) Close(m *Manager) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if _, ok := s.b.subs[s]; !ok {
		return
	}
	delete(s.b.subs, s)
	s.b.n.Store(int32(len(s.b.subs)))
	s.queue = nil
	m.metrics.readers(eventsReader, -1)
}

// Next returns the events waiting, at most max of them, or waits for
// one. It returns ctx's error when ctx ends and nil events when the
// daemon stops.
func (s *Subscription) Next(ctx context.Context, closing <-chan struct{}, max int) ([]Event, error) {
	for {
		s.b.mu.Lock()
		n := min(len(s.queue), max)
		out := append([]Event(nil), s.queue[:n]...)
		s.queue = s.queue[n:]
		for _, e := range out {
			if e.Type != EventMissed {
				s.events--
			}
		}
		if len(s.queue) == 0 {
			s.queue = nil // let the old array go
		}
		s.b.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-s.ready:
		case <-closing:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// sees says whether the subscriber may see e: root, the owner, and whom
// the job's shares (when the event happened) name.
func (s *Subscription) sees(e *Event) bool {
	if s.all || s.caller.UID == 0 || s.caller.UID == e.ownerUID {
		return true
	}
	for name := range e.shares {
		if s.matchesShare(name) {
			return true
		}
	}
	return false
}

// matchesShare is shareMatches for this caller, remembered: it reads
// /etc/passwd or /etc/group, and publish may run under the Manager's lock.
// (Which shares a job has is read at every event; only what a share's name
// resolves to is kept, for the life of the reader.)
func (s *Subscription) matchesShare(name string) bool {
	s.matchMu.Lock()
	ok, known := s.matches[name]
	s.matchMu.Unlock()
	if known {
		return ok
	}
	ok = shareMatches(name, s.caller)
	s.matchMu.Lock()
	defer s.matchMu.Unlock()
	if s.matches == nil {
		s.matches = map[string]bool{}
	}
	if len(s.matches) < 1024 { // bounded: names of shares seen
		s.matches[name] = ok
	}
	return ok
}

// publish gives e to every subscriber that may see it. It never blocks on
// a reader: a full queue counts the event as missed. The visibility check
// (which may read /etc/passwd for a share) runs outside the lock.
func (m *Manager) publish(e Event) {
	b := &m.bus
	if b.n.Load() == 0 {
		return
	}
	if e.Time.IsZero() {
		e.Time = m.now().UTC()
	}
	if e.shares == nil {
		e.shares = m.sharesOf(e)
	}
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	var to []*Subscription
	for _, s := range subs {
		if s.sees(&e) {
			to = append(to, s)
		}
	}
	var sent, missed float64
	b.mu.Lock()
	for _, s := range to {
		if _, ok := b.subs[s]; !ok {
			continue
		}
		if s.deliver(e) {
			sent++
		} else {
			missed++
		}
	}
	b.mu.Unlock()
	m.metrics.eventsDelivered(sent, missed)
}

// deliver queues e for s, or counts it missed (false). b.mu is held.
func (s *Subscription) deliver(e Event) bool {
	s.seq++
	if s.events >= subscriberQueue {
		if last := len(s.queue) - 1; last >= 0 && s.queue[last].Type == EventMissed {
			s.queue[last].Missed++
			return false
		}
		s.queue = append(s.queue, Event{Seq: s.seq, Time: e.Time, Type: EventMissed, Missed: 1})
		s.signal()
		return false
	}
	e.Seq = s.seq
	e.shares = nil
	s.queue = append(s.queue, e)
	s.events++
	s.signal()
	return true
}

// signal wakes the reader; a token already there is enough.
func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default: // a token is there already
	}
}

// sharesOf reads the job's shares for the visibility check; none (only the
// owner and root see it) when they cannot be read.
func (m *Manager) sharesOf(e Event) map[string][]byte {
	id := e.id
	if id == "" {
		return map[string][]byte{}
	}
	kv, err := m.store.ListKV(id, bucketShares)
	if err != nil {
		return map[string][]byte{} // a job gone since: its owner and root still see it
	}
	return kv
}

// emit publishes e about job jobID, named as it is now; nothing when no
// one reads events or the job is gone.
func (m *Manager) emit(jobID string, e Event) {
	if m.bus.n.Load() == 0 {
		return
	}
	j, err := m.store.Job(jobID)
	if err != nil {
		return // deleted meanwhile: its job.deleted event says so
	}
	m.emitFor(j, e)
}

// emitFor publishes e about job j.
func (m *Manager) emitFor(j Job, e Event) {
	if m.bus.n.Load() == 0 {
		return
	}
	e.id, e.ownerUID, e.Owner, e.Job = j.ID, j.Owner, m.ownerName(j.Owner), j.Name
	m.publish(e)
}

// refusedJob tells the owner's event readers, and the daemon's log, why a
// job was not created.
func (m *Manager) refusedJob(owner Owner, name string, err error) {
	m.slog.Info(fmt.Sprintf("job %q not created: %v", name, err), "owner", m.ownerName(owner))
	if m.bus.n.Load() == 0 {
		return
	}
	m.publish(Event{Type: EventRefused, Time: m.now().UTC(), Job: name, Reason: err.Error(), ownerUID: owner, Owner: m.ownerName(owner)})
}

// onQueued tells readers and metrics that run r was recorded PENDING.
func (m *Manager) onQueued(jobID string, r Run) {
	j, err := m.store.Job(jobID)
	if err != nil {
		return // deleted meanwhile
	}
	m.metrics.runQueued(m.ownerName(j.Owner))
	m.emitFor(j, Event{Type: EventRunQueued, Time: r.Queued, Run: r.ID, Status: r.Status, Trigger: r.Trigger, By: r.TriggeredBy})
}

// onStarted tells them that run r's first step started.
func (m *Manager) onStarted(jobID string, r Run) {
	m.metrics.runStarted(r)
	m.emit(jobID, Event{Type: EventRunStarted, Time: r.StartedAt, Run: r.ID, Status: r.Status, Trigger: r.Trigger, By: r.TriggeredBy})
}

// onEnded tells them that run r ended.
func (m *Manager) onEnded(jobID string, r Run) {
	j, err := m.store.Job(jobID)
	if err != nil {
		return
	}
	m.metrics.runEnded(m.ownerName(j.Owner), r)
	m.emitFor(j, Event{Type: EventRunEnded, Time: r.EndedAt, Run: r.ID, Status: r.Status, Trigger: r.Trigger, By: r.TriggeredBy, ExitCode: r.ExitCode})
	m.retryEnded(jobID, r) // workflows (retry.go)
}

// jobAttrsOf names job j in the daemon's log (also once it is deleted).
func jobAttrsOf(m *Manager, j Job) []any {
	return []any{"owner", m.ownerName(j.Owner), "job", j.Name}
}
