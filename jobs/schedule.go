package jobs

import (
	"errors"
	"fmt"
	"time"

	"github.com/jobfs/jobfs/scheduler"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Schedules (DESIGN.md 5). A tick of config/schedule starts a run with
// trigger "schedule" unless config/enabled is false (logged as skipped). A
// tick that finds a run of the job active follows config/overlap: skip (the
// default) logs and starts nothing, queue starts one run when the active
// ones have ended (at most one waiting), allow starts it at once. Manual
// triggers always start a run.
//
// A tick's run is prepared ahead: the scheduler fires tickLead before the
// tick, the run is queued then and its first steps are set up (cgroups,
// namespaces, the init) and wait to begin their programs at the tick
// itself (Run.Tick). So config/enabled and config/overlap are judged up to
// tickLead before the tick; a tick that finds a run active then is judged
// again at the tick, as without the lead, so a run ending in the last
// moments before a tick does not make it skip.
//
// Missed ticks: ticks that fell while the daemon was down are never
// replayed in a burst. At start the job log says how many were missed; a
// schedule whose comment is exactly `catchup` (`0 9 * * * # catchup`) gets
// one catch-up run then.

func checkSchedule(_ *Manager, _ Job, v string) error {
	if _, err := scheduler.Parse(v); err != nil && !errors.Is(err, scheduler.ErrEmpty) {
		return errorf(ErrInvalid, "config/schedule: %v", err)
	}
	return nil
}

func checkOverlap(_ *Manager, _ Job, v string) error {
	switch v {
	case "skip", "queue", "allow":
		return nil
	}
	return errorf(ErrInvalid, "config/overlap: %q: write skip, queue or allow", v)
}

// tickLead is how long before its tick a scheduled run is prepared: above
// the time a run takes from its trigger to its step's start here (tens of
// milliseconds; more on a loaded machine, when the step then starts late,
// as it would without the lead), and short enough that a run queued that
// early surprises no one.
const tickLead = 150 * time.Millisecond

// keyLastTick records when a job's schedule last fired, to count missed ticks.
const keyLastTick = domain.KeyLastTick

// startScheduler loads every job's schedule, reports missed ticks and runs
// the scheduler until the Manager closes.
func (m *Manager) startScheduler() error {
	m.sched = scheduler.New(m.tick)
	m.sched.SetLead(tickLead)
	all, err := m.store.ScheduledJobs() // index.go: not every job
	if err != nil {
		return err
	}
	now := m.now()
	for _, j := range all {
		spec, ok := m.schedule(j.ID)
		if !ok {
			continue
		}
		m.sched.Set(j.ID, spec)
		from := m.lastTick(j.ID)
		if from.IsZero() {
			continue
		}
		if n := spec.Missed(from, now, 1000); n > 0 {
			more := ""
			if n == 1000 {
				more = " or more"
			}
			m.event(j.ID, "schedule: missed %d%s scheduled run(s) while jobfs was down; not replayed", n, more)
			if spec.Catchup && m.value(j.ID, "config/enabled") != "false" {
				m.catchups = append(m.catchups, j.ID) // started by Start
			}
		}
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sched.Run(m.baseCtx)
	}()
	return nil
}

// Start starts the catch-up runs of schedules marked # catchup. The daemon
// calls it once the tree is mounted, so that no run starts (and none is
// stopped by a failed mount) before its files can be seen. Later calls do
// nothing.
func (m *Manager) Start() {
	m.mu.Lock()
	ids := m.catchups
	m.catchups = nil
	if m.stopping || len(ids) == 0 {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1) // Close waits for these triggers
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		for _, id := range ids {
			if m.cluster != nil && !m.clusterCatchup(id) { // cluster_sched.go
				continue
			}
			m.event(id, "schedule: one catch-up run (# catchup)")
			m.fire(id, "catch-up", time.Time{})
		}
	}()
}

// schedule parses a job's config/schedule; false when it has none.
func (m *Manager) schedule(jobID string) (scheduler.Spec, bool) {
	spec, err := scheduler.Parse(m.value(jobID, "config/schedule"))
	if err != nil {
		return scheduler.Spec{}, false
	}
	return m.clusterSpec(spec), true // cluster_sched.go: the same ticks on every node
}

// reschedule applies a changed config/schedule.
func (m *Manager) reschedule(jobID string) {
	if m.sched == nil {
		return
	}
	if spec, ok := m.schedule(jobID); ok {
		m.sched.Set(jobID, spec)
		m.setLastTick(jobID, m.now())
		return
	}
	m.sched.Remove(jobID)
}

func (m *Manager) lastTick(jobID string) time.Time {
	v, ok, _ := m.store.Setting(jobID, keyLastTick)
	if !ok {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, v)
	return t
}

// setLastTick records the schedule's last tick; if that fails, a restart
// catches up from the tick recorded before, so the failure is logged.
func (m *Manager) setLastTick(jobID string, t time.Time) {
	if err := m.store.SetSetting(jobID, keyLastTick, t.UTC().Format(time.RFC3339Nano), t); err != nil {
		m.slog.Warn(fmt.Sprintf("record the schedule's last tick %s: %v", t.UTC().Format(time.RFC3339), err), m.jobAttrs(jobID)...)
	}
}

// NextRun is when the job's schedule fires next; zero when it has none or
// is disabled.
func (m *Manager) NextRun(jobID string) time.Time {
	if m.sched == nil || m.value(jobID, "config/enabled") == "false" {
		return time.Time{}
	}
	t, ok := m.sched.Next(jobID)
	if !ok {
		return time.Time{}
	}
	return t
}

// tick is called by the scheduler tickLead before a job's tick at. It
// must be quick.
func (m *Manager) tick(jobID string, at time.Time) {
	if _, err := m.store.Job(jobID); err != nil {
		m.sched.Remove(jobID)
		return
	}
	if m.cluster != nil && !m.clusterFires(jobID, at) { // one node fires each tick (cluster_sched.go)
		return
	}
	m.setLastTick(jobID, at)
	stamp := at.UTC().Format(time.RFC3339)
	if m.value(jobID, "config/enabled") == "false" {
		m.skippedTick(jobID, stamp, "config/enabled is false")
		return
	}
	m.fire(jobID, stamp, at)
}

// fire starts the run of a tick at (or of the catch-up, stamp "catch-up",
// at zero), as config/overlap says while a run of the job is active: a run
// re-attached after a restart counts as active too. Before the tick, a
// busy job is judged again at the tick.
func (m *Manager) fire(jobID, stamp string, at time.Time) {
	policy := m.value(jobID, "config/overlap") // a store read: before the lock
	m.mu.Lock()
	busy := m.perJob[jobID] > 0
	if wait := time.Until(at); busy && policy != "allow" && wait > 0 {
		if !m.stopping {
			m.wg.Add(1) // Close waits for it
			go m.fireAtTick(jobID, stamp, at, wait)
		}
		m.mu.Unlock()
		return
	}
	if busy && policy == "queue" {
		if m.waiting[jobID] {
			m.mu.Unlock()
			m.skippedTick(jobID, stamp, "a run already waits for the active one (overlap queue)")
			return
		}
		m.waiting[jobID] = true
		m.mu.Unlock()
		m.event(jobID, "schedule: tick %s queued until the active run ends (overlap queue)", stamp)
		return
	}
	if busy && policy != "allow" {
		m.mu.Unlock()
		m.skippedTick(jobID, stamp, "a run is active (overlap skip)")
		return
	}
	// The run starts on its own goroutine: the scheduler fires one tick at a
	// time, and a trigger may wait long (a chain's git, run as the image's
	// owner, who can stall it for git's timeout): one job's slow start must
	// not hold every other job's ticks. A job's next tick while its run is
	// still starting is skipped.
	if m.stopping {
		m.mu.Unlock()
		return
	}
	if m.firing[jobID] {
		m.mu.Unlock()
		m.skippedTick(jobID, stamp, "the run of the tick before is still starting")
		return
	}
	m.firing[jobID] = true
	m.wg.Add(1) // Close waits for it
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		m.triggerScheduled(jobID, at)
		m.mu.Lock()
		delete(m.firing, jobID)
		m.mu.Unlock()
	}()
}

// fireAtTick is fire at the tick, for a tick fired ahead that found the
// job busy.
func (m *Manager) fireAtTick(jobID, stamp string, at time.Time, wait time.Duration) {
	defer m.wg.Done()
	if sleepCtx(m.baseCtx, wait) {
		m.fire(jobID, stamp, at)
	}
}

// skippedTick logs a tick that started nothing. Ticks skipped one after
// the other for the same reason are folded: the first is logged, then one
// line counts the rest ("skipped 3599 more ticks since ...").
func (m *Manager) skippedTick(jobID, stamp, reason string) {
	m.eventFolded(jobID, "tick skipped: "+reason,
		"schedule: skipped %d more ticks since %s (the last at %s): "+reason,
		"schedule: tick %s skipped: %s", stamp, reason)
}

// triggerScheduled starts a scheduled run; tick, when set, is its tick,
// which its steps wait for (Run.Tick).
func (m *Manager) triggerScheduled(jobID string, tick time.Time) {
	if _, err := m.trigger(jobID, []byte("{}\n"), Schedule, string(Schedule), tick); err != nil && !errors.Is(err, ErrStopped) {
		m.event(jobID, "schedule: run not started: %v", err)
	}
}

// startWaitingLocked starts the run a queued tick left for job, once its
// active runs have ended. m.mu is held; the trigger runs on its own, counted
// in m.wg (not stopping: Close has not begun to wait).
func (m *Manager) startWaitingLocked(jobID string) {
	if !m.waiting[jobID] || m.perJob[jobID] > 0 || m.stopping {
		return
	}
	delete(m.waiting, jobID)
	m.wg.Add(1)
	go m.startQueued(jobID)
}

// startQueued starts the run a queued tick left, unless the job was
// disabled or lost its schedule while it waited.
func (m *Manager) startQueued(jobID string) {
	defer m.wg.Done()
	switch {
	case m.value(jobID, "config/enabled") == "false":
		m.event(jobID, "schedule: queued tick dropped: config/enabled is false")
	case m.value(jobID, "config/schedule") == "":
		m.event(jobID, "schedule: queued tick dropped: config/schedule was removed")
	default:
		m.triggerScheduled(jobID, time.Time{}) // its tick has passed
	}
}
