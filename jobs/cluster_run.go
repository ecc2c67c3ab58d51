package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/jobfs/jobfs/exec"
)

// A Manager of a cluster (Options.Cluster) keeps in m.active every run of
// the cluster that has not ended, as far as the store's change feed told
// it: a run executing elsewhere (or waiting for a node) is "remote", its
// done closed when the feed shows it ended and its bell rung by the
// executing node's progress signal. A node that executes queues every
// PENDING run it learns of; execute claims it first (claimToExecute), and
// a run another node won goes back to remote. Nothing here holds m.mu
// across a store call.

// lostCheck is how often a node looks for runs whose node lost its lease.
const lostCheck = time.Second

// progressRate bounds the progress signals a node sends through etcd per
// second (all its runs together; a signal names every run that grew).
const progressRate = 20

type clusterState struct {
	c    Cluster
	lost atomic.Bool // the lease is gone: write nothing more

	mu    sync.Mutex
	dirty map[runKey]bool // runs whose log grew since the last signal
	grew  chan struct{}   // wakes the progress sender
}

// errNodeLost is the cancel cause of the steps of a node that lost its
// lease: they are killed without grace, as another node may act on the
// run once etcd expired the lease.
type errNodeLost struct{ node string }

func (e errNodeLost) Error() string      { return "node " + e.node + " lost its etcd lease" }
func (errNodeLost) Is(target error) bool { return target == exec.ErrKill }

// startCluster tracks the cluster's active runs and starts the goroutines
// of a cluster node: the change feed, the progress feed and sender, the
// watch on this node's lease and the search for lost nodes' runs.
func (m *Manager) startCluster() {
	if m.cluster == nil {
		return
	}
	m.resyncCluster()
	for _, f := range []func(){m.watchRuns, m.watchProgress, m.sendProgress, m.watchLease, m.sweepCluster, m.watchCtl} {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			f()
		}()
	}
}

// resyncCluster reads every active run of the cluster again (at start and
// when the change feed lagged).
func (m *Manager) resyncCluster() {
	refs, err := m.store.ActiveRuns()
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: read the active runs: %v", err))
		return
	}
	for _, ref := range refs {
		m.observeRun(runKey{ref.JobID, ref.Run.ID}, ref.Run, true)
	}
}

// watchRuns follows the store's change feed until the Manager closes.
// Each feed is opened before the active runs are read again: a change
// committed between that read and the feed's start is in the feed, never
// in a gap between the two (the read follows a lag, a compaction or a
// member's loss).
func (m *Manager) watchRuns() {
	for m.baseCtx.Err() == nil {
		feed := m.store.Watch(m.baseCtx)
		m.resyncCluster()
		for c := range feed {
			m.observeChange(c)
		}
		if m.baseCtx.Err() != nil {
			return
		}
		m.pause(100 * time.Millisecond) // the feed lagged or etcd is away: read again
	}
}

// pause waits d unless the Manager closes.
func (m *Manager) pause(d time.Duration) { sleepCtx(m.baseCtx, d) }

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m *Manager) observeChange(c Change) {
	switch {
	case c.Run > 0:
		k := runKey{c.Job, c.Run}
		if c.Deleted {
			m.releaseRemote(k)
			return
		}
		r, err := m.store.Run(c.Job, c.Run)
		m.observeRun(k, r, err == nil)
	case c.Key == "config/schedule":
		m.applySchedule(c.Job)
	case c.Key == "config/after": // the index of downstream jobs (after.go)
		m.afters.changed(m, c.Job)
	case c.Key == "" && c.Deleted:
		m.applySchedule(c.Job)
		m.mu.Lock()
		var gone []runKey
		for k, a := range m.active {
			if k.job == c.Job && a.remote {
				gone = append(gone, k)
			}
		}
		m.mu.Unlock()
		for _, k := range gone {
			m.releaseRemote(k)
		}
	}
}

// applySchedule follows a schedule another node changed (or this one):
// every node keeps every schedule, ClaimTick fires each tick once.
func (m *Manager) applySchedule(jobID string) {
	if m.sched == nil {
		return
	}
	if spec, ok := m.schedule(jobID); ok {
		m.sched.Set(jobID, spec)
		return
	}
	m.sched.Remove(jobID)
}

// observeRun brings m.active in line with run k as the store has it.
func (m *Manager) observeRun(k runKey, r Run, found bool) {
	if !found || r.Status.Terminal() {
		m.releaseRemote(k)
		return
	}
	me := m.cluster.c.Node()
	m.learnOwner(k.job) // fair.go: it may be offered to this node's queue
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.trackLocked(k)
	if a == nil {
		return
	}
	// A retry waits for its back-off on the node that made it.
	a.claimable = r.Status == Pending && r.Node == "" && !r.RetryAt.After(m.now())
	switch {
	case r.Node != "" && r.Node != me && !a.remote && a.cancel == nil:
		a.remote = true // another node won it: not ours to run
		m.queue = slices.DeleteFunc(m.queue, func(q runKey) bool { return q == k })
	case a.claimable:
		m.offerLocked(k, a)
	}
}

// trackLocked returns run k's entry, made remote when it has none. m.mu
// is held.
func (m *Manager) trackLocked(k runKey) *activeRun {
	if a := m.active[k]; a != nil || m.stopping {
		return a
	}
	done := make(chan struct{})
	a := &activeRun{done: done, bell: newBell(), readers: newReaderBudget(done, m.closing), remote: true}
	m.active[k] = a
	m.perJob[k.job]++
	return a
}

// installLocked makes fresh run k's entry for a run this node made (a
// trigger, a retry, a hook) and returns the entry to use: in a cluster the
// change feed may have tracked k first, as a remote run counted in perJob
// and maybe offered; that entry is kept (its waiters stay), counted once
// (the caller counts it) and taken off the queue, so that this node never
// queues one run twice. m.mu is held.
func (m *Manager) installLocked(k runKey, fresh *activeRun) *activeRun {
	a := m.active[k]
	if a == nil || m.cluster == nil {
		m.active[k] = fresh
		return fresh
	}
	if m.perJob[k.job]--; m.perJob[k.job] <= 0 {
		delete(m.perJob, k.job)
	}
	a.remote = false
	m.queue = slices.DeleteFunc(m.queue, func(q runKey) bool { return q == k })
	return a
}

// offerLocked queues a remote PENDING run for this node to claim, when it
// executes. m.mu is held.
func (m *Manager) offerLocked(k runKey, a *activeRun) {
	if m.opts.NoExecute || !a.remote || !a.claimable || a.stopped || a.claimed || a.cancel != nil || m.stopping || m.cluster.lost.Load() ||
		slices.Contains(m.queue, k) {
		return
	}
	a.remote = false
	m.queue = append(m.queue, k)
	m.dispatchLocked()
}

// releaseRemote forgets a remote run that ended (or was deleted): its
// waiters wake.
func (m *Manager) releaseRemote(k runKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.active[k]
	if a == nil || !a.remote {
		return
	}
	close(a.done)
	delete(m.active, k)
	if m.perJob[k.job]--; m.perJob[k.job] <= 0 {
		delete(m.perJob, k.job)
	}
	m.startWaitingLocked(k.job)
}

// trackRun is Wait's: run k's entry, read from the store when the feed has
// not shown it yet; nil when it has ended.
func (m *Manager) trackRun(k runKey) *activeRun {
	r, err := m.store.Run(k.job, k.id)
	if err != nil || r.Status.Terminal() {
		return nil
	}
	m.mu.Lock()
	a := m.trackLocked(k)
	m.mu.Unlock()
	// Read again: an end the feed showed before the entry existed.
	if r, err := m.store.Run(k.job, k.id); err != nil || r.Status.Terminal() {
		m.releaseRemote(k)
	}
	return a
}

// claimToExecute claims run k before execute runs it: false when another
// node has it, its folder is not laid out yet (the trigger's node signals
// when it is) or this node lost its lease; the run is remote then.
func (m *Manager) claimToExecute(k runKey) bool {
	m.mu.Lock()
	a := m.active[k]
	claimed := a != nil && a.claimed
	m.mu.Unlock()
	if claimed {
		return true
	}
	won := false
	if !m.opts.NoExecute && !m.cluster.lost.Load() && m.runReady(k) { // --no-execute never claims to run
		var err error
		if won, err = m.cluster.c.Claim(k.job, k.id); err != nil {
			m.slog.Warn(fmt.Sprintf("cluster: claim the run: %v", err), m.runAttrs(k.job, k.id)...)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a = m.active[k]; a == nil {
		return false
	}
	if won {
		a.claimed, a.remote = true, false
		a.bell.onRing(func() { m.progressed(k) })
		return true
	}
	if a.cancel != nil {
		a.cancel(nil) // the context dispatch made for it
	}
	a.remote, a.cancel = true, nil
	return false
}

// runReady reports whether the trigger's node has laid out run k's folder:
// input.json is written last.
func (m *Manager) runReady(k runKey) bool {
	_, err := os.Stat(filepath.Join(m.RunDir(k.job, k.id), "input", "input.json"))
	return err == nil
}

// clusterReady tells the other nodes that a run this node triggered is
// laid out (they may claim it now): a progress signal names it.
func (m *Manager) clusterReady(k runKey) {
	if m.cluster != nil {
		m.progressed(k)
	}
}

// progressed marks run k's log as grown; the sender signals it soon.
func (m *Manager) progressed(k runKey) {
	cl := m.cluster
	cl.mu.Lock()
	cl.dirty[k] = true
	cl.mu.Unlock()
	select {
	case cl.grew <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// sendProgress signals grown logs through etcd, at most progressRate
// times a second; each signal names every run that grew since the last.
func (m *Manager) sendProgress() {
	lim := rate.NewLimiter(progressRate, 1)
	cl := m.cluster
	for {
		select {
		case <-cl.grew:
		case <-m.baseCtx.Done():
			return
		}
		if lim.Wait(m.baseCtx) != nil {
			return
		}
		cl.mu.Lock()
		dirty := cl.dirty
		cl.dirty = map[runKey]bool{}
		cl.mu.Unlock()
		for k := range dirty {
			if cl.lost.Load() {
				return
			}
			if err := cl.c.Progress(k.job, k.id); err != nil {
				m.slog.Warn(fmt.Sprintf("cluster: signal the log's progress: %v", err), m.runAttrs(k.job, k.id)...)
			}
		}
	}
}

// watchProgress wakes the live readers of remote runs whose log grew, and
// offers a run its trigger's node just laid out.
func (m *Manager) watchProgress() {
	for m.baseCtx.Err() == nil {
		for id := range m.cluster.c.WatchProgress(m.baseCtx) {
			k := runKey{id.JobID, id.ID}
			m.learnOwner(k.job) // fair.go
			m.mu.Lock()
			if a := m.active[k]; a != nil && a.remote {
				a.bell.ring()
				m.offerLocked(k, a)
			}
			m.mu.Unlock()
		}
		m.pause(100 * time.Millisecond)
	}
}

// watchLease stops every step of this node at once when its lease is gone
// and keeps it from writing anything more: another node ends its runs.
func (m *Manager) watchLease() {
	select {
	case <-m.cluster.c.Lost():
	case <-m.baseCtx.Done():
		return
	}
	if m.baseCtx.Err() != nil {
		return // Close revoked the lease
	}
	m.cluster.lost.Store(true)
	cause := errNodeLost{m.cluster.c.Node()}
	m.slog.Error(fmt.Sprintf("cluster: %v: stopping every step; the other nodes end its runs", cause))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.queue {
		if a := m.active[k]; a != nil {
			a.remote = true
		}
	}
	m.queue = nil
	for _, a := range m.active {
		if !a.remote && a.cancel != nil {
			a.cancel(cause)
		}
	}
}

// sweepCluster looks, every lostCheck, for what no change signals: the
// runs of nodes that lost their lease (ended once across the cluster,
// then retried where the job says so) and PENDING runs nobody claimed (a
// retry whose back-off passed on a node that went away, a run whose
// ready signal was missed, one whose maker died before laying it out).
func (m *Manager) sweepCluster() {
	t := time.NewTicker(lostCheck)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.baseCtx.Done():
			return
		}
		if m.cluster.lost.Load() {
			return
		}
		refs, err := m.cluster.c.LostRuns()
		if err != nil {
			m.slog.Warn(fmt.Sprintf("cluster: look for lost runs: %v", err))
			continue
		}
		for _, ref := range refs {
			m.endLost(ref)
		}
		m.sweepPending()
	}
}

// endLost ends a lost node's run FAILED "node <name> lost", once across
// the cluster; the node that ended it makes its follow-ups (a retry as
// config/retries says, hooks), exactly once through the store.
func (m *Manager) endLost(ref RunRef) {
	reason := "node " + ref.Run.Node + " lost"
	now := m.now().UTC()
	followup := m.hasWorkflow(ref.JobID)
	ended, err := m.cluster.c.EndLost(ref.JobID, ref.Run.ID, func(r *Run) {
		r.Status, r.Error, r.EndedAt, r.Followup = Failed, reason, now, followup
		for i := range r.Steps {
			switch r.Steps[i].Status {
			case Running:
				r.Steps[i].Status, r.Steps[i].Error, r.Steps[i].EndedAt = Failed, reason, now
			case Pending:
				r.Steps[i].Status, r.Steps[i].EndedAt = Skipped, now
			}
		}
	})
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: end a lost run: %v", err), m.runAttrs(ref.JobID, ref.Run.ID)...)
		return
	}
	if !ended {
		return
	}
	m.appendRunLog(ref.JobID, ref.Run.ID, "jobfs: "+reason)
	m.event(ref.JobID, "run %d FAILED: %s", ref.Run.ID, reason)
	r, err := m.store.Run(ref.JobID, ref.Run.ID)
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: read a lost run's end: %v", err), m.runAttrs(ref.JobID, ref.Run.ID)...)
		return
	}
	m.onEnded(ref.JobID, r) // its retry, hooks and downstream jobs
}

// sweepPending offers the due PENDING runs nobody claimed, and ends one
// whose maker died before laying it out.
func (m *Manager) sweepPending() {
	refs, err := m.store.ActiveRuns()
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: read the active runs: %v", err))
		return
	}
	for _, ref := range refs {
		r, k := ref.Run, runKey{ref.JobID, ref.Run.ID}
		if r.Status != Pending || r.Node != "" || r.RetryAt.After(m.now()) {
			continue
		}
		if !m.runReady(k) && m.makerGone(k) {
			m.endUnmade(k)
			continue
		}
		m.observeRun(k, r, true)
	}
}

// makerGone reports whether run k, not laid out, never will be: its
// maker's lease is gone. Its readiness is read again after the maker: the
// maker ends the run's wait for it only once its folder is laid out.
func (m *Manager) makerGone(k runKey) bool {
	alive, err := m.cluster.c.MakerAlive(k.job, k.id)
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: %v", err), m.runAttrs(k.job, k.id)...)
		return false
	}
	return !alive && !m.runReady(k)
}

// errUnmade is the end of a run whose maker was lost before it laid out
// the run's folder: its payload was on that node only.
const errUnmade = "the node that stored this run was lost before it wrote the run's input: trigger it again"

// endUnmade claims run k (so that it ends once) and ends it FAILED.
func (m *Manager) endUnmade(k runKey) {
	won, err := m.cluster.c.Claim(k.job, k.id)
	if err != nil || !won {
		return // another node ends it, or the next sweep
	}
	m.mu.Lock()
	a := m.trackLocked(k)
	if a != nil {
		a.remote, a.claimed, a.stopped = false, true, true
		m.queue = slices.DeleteFunc(m.queue, func(q runKey) bool { return q == k })
	}
	m.mu.Unlock()
	if a == nil {
		return // stopping: the run stays claimed by this node, ended as lost after
	}
	m.appendRunLog(k.job, k.id, "jobfs: "+errUnmade)
	m.finish(k, Run{Status: Failed, Error: errUnmade})
}

// clusterLost reports whether this node lost its lease: it writes nothing
// more to the store.
func (m *Manager) clusterLost() bool { return m.cluster != nil && m.cluster.lost.Load() }

// errFencedOut is what finish logs for a run of a node that lost its lease.
var errFencedOut = errors.New("this node lost its etcd lease: the run's end is another node's to record")

// claimedOnlyLocked keeps, of the runs Close found queued, those this node
// claimed: the others stay PENDING for another node. m.mu is held.
func (m *Manager) claimedOnlyLocked(queued []runKey) []runKey {
	if m.cluster == nil {
		return queued
	}
	var out []runKey
	for _, k := range queued {
		if a := m.active[k]; a != nil && a.claimed {
			out = append(out, k)
		}
	}
	return out
}

// stopRemote is Stop of a run that does not execute here: a PENDING run
// nobody claimed is claimed and cancelled; one another node executes is
// stopped by that node, the command relayed through the store.
func (m *Manager) stopRemote(k runKey, kill bool) error {
	won, err := m.cluster.c.Claim(k.job, k.id)
	if err != nil {
		return err
	}
	if won {
		m.mu.Lock()
		a := m.trackLocked(k) // counted, if the feed has not shown it yet: finish uncounts it
		if a != nil {
			a.remote, a.claimed, a.stopped = false, true, true
			m.queue = slices.DeleteFunc(m.queue, func(q runKey) bool { return q == k })
		}
		m.mu.Unlock()
		if a == nil { // stopping: the claim goes with this node's lease, the run ends as lost
			return errorf(ErrStopped, "jobfs is stopping: run %d ends when this node is gone", k.id)
		}
		m.finish(k, Run{Status: Cancelled, Error: "stopped before it started"})
		return nil
	}
	cmd := "stop"
	if kill {
		cmd = "kill"
	}
	return m.relayCtl(k, cmd)
}

// relayWait bounds how long a ctl write for a run on another node waits
// for that node's answer; past it the command stays recorded for it.
const relayWait = 5 * time.Second

// relayCtl has the node executing run k do cmd: the write succeeds once
// that node did it, fails with its refusal, or succeeds once recorded
// when the node does not answer within relayWait (the job's log says so).
func (m *Manager) relayCtl(k runKey, cmd string) error {
	what := "run " + itoa(k.id) + "/ctl"
	node, why, acked, err := m.cluster.c.RelayCtl(k.job, k.id, cmd, relayWait)
	switch {
	case errors.Is(err, ErrNotClaimed):
		r, rerr := m.store.Run(k.job, k.id)
		if rerr == nil && r.Status.Terminal() {
			return m.reject(k.job, what, errorf(ErrInvalid, "%s: run %d has already ended (%s): nothing to %s", what, k.id, r.Status, cmd))
		}
		return m.reject(k.job, what, errorf(ErrBusy, "%s: run %d is between nodes (its node was lost, or it is about to start): %s it again in a moment", what, k.id, cmd))
	case err != nil:
		return err
	case !acked:
		m.event(k.job, "%s: %s of run %d recorded for node %s, which has not answered within %s: it acts when it sees it", what, cmd, k.id, node, relayWait)
	case why != "": // the node's refusal is in the job's log already
		return errorf(ErrInvalid, "node %s: %s", node, why)
	}
	return nil
}

// remoteRun reports whether run k executes (or waits) on another node:
// its ctl commands are relayed.
func (m *Manager) remoteRun(k runKey) bool {
	if m.cluster == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.active[k]
	return a != nil && a.remote && !a.claimed && a.cancel == nil
}

// watchCtl does the ctl commands other nodes relay for the runs this
// node executes, and answers each.
func (m *Manager) watchCtl() {
	for m.baseCtx.Err() == nil {
		for r := range m.cluster.c.WatchCtl(m.baseCtx) {
			m.wg.Add(1)
			go func() { // a stop waits for its grace: the feed goes on
				defer m.wg.Done()
				m.doCtl(r)
			}()
		}
		m.pause(100 * time.Millisecond)
	}
}

func (m *Manager) doCtl(r CtlRequest) {
	k := runKey{r.JobID, r.ID}
	cmd, _, _ := strings.Cut(r.Cmd, " ")
	m.mu.Lock()
	a := m.active[k]
	local := a != nil && (a.claimed || a.cancel != nil)
	m.mu.Unlock()
	var err error
	switch {
	case !local:
		err = errors.New("the run does not execute here (any more)")
	case cmd == "stop" || cmd == "kill":
		err = m.StopRun(r.JobID, r.ID, cmd == "kill")
	case cmd == "pause":
		err = m.Pause(r.JobID, r.ID)
	case cmd == "resume":
		err = m.Resume(r.JobID, r.ID)
	default:
		err = fmt.Errorf("%q is not a ctl command", cmd)
	}
	why := ""
	if err != nil {
		why = err.Error()
	}
	if err := m.cluster.c.AnswerCtl(r, why); err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: %v", err), m.runAttrs(r.JobID, r.ID)...)
	}
}

// newClusterState is nil without a cluster.
func newClusterState(c Cluster) *clusterState {
	if c == nil {
		return nil
	}
	return &clusterState{c: c, dirty: map[runKey]bool{}, grew: make(chan struct{}, 1)}
}
