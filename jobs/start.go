package jobs

import (
	"sync"
	"time"
)

// The start of a single-step run's step is committed startCommitDelay
// after it began, or not at all when the step has ended by then: its end
// is recorded in the run's end commit, and the start with it. So a short
// run costs two commits (queued, ended) instead of three: on a VM's disk
// each is two fdatasyncs, 1-2 ms, and the start's commit lay between the
// step's start and the daemon's following of its end. Until it is
// committed the start is kept here and shown by Manager.Run, which every
// reader of a run's files goes through. A daemon that dies meanwhile
// leaves the run PENDING in the store with its step's shim started: the
// next one records the start from the shim (pipeline.runShimmed's attach)
// as it does for a daemon that died before the commit.
var startCommitDelay = 100 * time.Millisecond

// pendingStart is a step's start not yet committed.
type pendingStart struct {
	step  Step
	pgid  int
	start uint64
	at    time.Time
	timer *time.Timer

	mu   sync.Mutex // held while it is committed or taken
	done bool       // committed, or taken to be folded into the end
}

func (ps *pendingStart) apply(r *Run) bool { return applyStart(r, ps.step, ps.pgid, ps.start, ps.at) }

// startLater keeps the start of run k's only step and commits it
// startCommitDelay later unless the step's end takes it first (takeStart).
func (m *Manager) startLater(k runKey, step Step, pgid int, start uint64) {
	ps := &pendingStart{step: step, pgid: pgid, start: start, at: m.now().UTC()}
	m.startsMu.Lock()
	if m.starts == nil {
		m.starts = map[runKey]*pendingStart{}
	}
	m.starts[k] = ps
	ps.timer = time.AfterFunc(startCommitDelay, func() { m.commitStart(k, ps) })
	m.startsMu.Unlock()
}

// commitStart commits a start that is still pending.
func (m *Manager) commitStart(k runKey, ps *pendingStart) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done {
		return
	}
	ps.done = true
	m.startedAt(k, ps.step, ps.pgid, ps.start, ps.at)
	m.dropStart(k, ps)
}

// takeStart returns run k's start when it is still pending, to be applied
// in the commit of its step's end; nil when it was committed (or there is
// none). The run's start event is told now, before its end's.
func (m *Manager) takeStart(k runKey) *pendingStart {
	m.startsMu.Lock()
	ps := m.starts[k]
	m.startsMu.Unlock()
	if ps == nil {
		return nil
	}
	ps.mu.Lock() // waits for a commit under way: its record comes first
	defer ps.mu.Unlock()
	if ps.done {
		return nil
	}
	ps.done = true
	ps.timer.Stop()
	m.dropStart(k, ps)
	if r, err := m.store.Run(k.job, k.id); err == nil && ps.apply(&r) {
		m.event(k.job, "run %d started", k.id)
		m.onStarted(k.job, r)
	}
	return ps
}

func (m *Manager) dropStart(k runKey, ps *pendingStart) {
	m.startsMu.Lock()
	if m.starts[k] == ps {
		delete(m.starts, k)
	}
	m.startsMu.Unlock()
}

// pendingStartOf is run k's start not yet committed, or nil.
func (m *Manager) pendingStartOf(k runKey) *pendingStart {
	m.startsMu.Lock()
	defer m.startsMu.Unlock()
	return m.starts[k]
}

// flushStarts commits every pending start (the daemon stops).
func (m *Manager) flushStarts() {
	m.startsMu.Lock()
	var all []runKey
	pending := map[runKey]*pendingStart{}
	for k, ps := range m.starts {
		all = append(all, k)
		pending[k] = ps
	}
	m.startsMu.Unlock()
	for _, k := range all {
		pending[k].timer.Stop()
		m.commitStart(k, pending[k])
	}
}
