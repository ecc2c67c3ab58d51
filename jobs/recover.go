package jobs

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// cleanCgroups removes the cgroups (and kills the processes) a crashed
// daemon of this state folder left: everything below jobfs/<instance>. A
// copy of the folder has another instance, so its daemon never reaches the
// steps of the daemon it was copied from.
func (m *Manager) cleanCgroups() error {
	if m.opts.Cgroups == nil || m.keepCgroups() { // runs failed at start lose theirs in killLeftovers
		return nil
	}
	if err := m.cleanLegacyCgroups(); err != nil {
		return err
	}
	return m.opts.Cgroups.Clean(m.cgroupParent())
}

// cleanLegacyCgroups removes jobfs/<job> groups, the names an older jobfs
// gave, the first time a jobfs that names them per state folder opens the
// store (an older daemon may have crashed). Only this store's jobs.
func (m *Manager) cleanLegacyCgroups() error {
	if !m.store.Instance().Legacy {
		return nil
	}
	all, err := m.store.AllJobs()
	if err != nil {
		return err
	}
	for _, j := range all {
		if err := m.opts.Cgroups.Clean(cgroupRoot + "/" + j.ID); err != nil {
			return err
		}
	}
	return nil
}

// killLeftovers kills the process groups a crashed daemon recorded for an
// active run, unless the state folder is a copy: then they are another
// daemon's (the one still running on the original) and are left alone.
func (m *Manager) killLeftovers(ref RunRef) {
	if m.store.Instance().Copied {
		m.slog.Info("the run was active in the state folder this one was copied from: its processes are left alone", m.runAttrs(ref.JobID, ref.Run.ID)...)
		return
	}
	if ref.Run.Pgid > 0 {
		exec.KillGroup(ref.Run.Pgid, ref.Run.PgidStart)
	}
	for _, s := range ref.Run.Steps {
		if s.Pgid > 0 && !s.Status.Terminal() {
			exec.KillGroup(s.Pgid, s.PgidStart)
		}
	}
	if m.opts.Cgroups != nil && m.keepCgroups() { // else cleanCgroups removed every run's
		if err := m.opts.Cgroups.Clean(path.Join(m.cgroupParent(), ref.JobID, strconv.FormatUint(ref.Run.ID, 10))); err != nil {
			m.slog.Warn("remove the run's cgroups: "+err.Error(), m.runAttrs(ref.JobID, ref.Run.ID)...)
		}
	}
}

// shimsHere reports whether this daemon's steps run under shims (the local
// backend with a binary for them, not --stop-runs-on-exit): then they
// outlive it, and a start resumes the runs an earlier daemon left.
func (m *Manager) shimsHere() bool {
	return m.opts.Backend == nil && m.cluster == nil && shimBinary(m.opts) != ""
}

// detachOnClose reports whether Close leaves the active runs to their
// shims rather than stopping them.
func (m *Manager) detachOnClose() bool { return m.shimsHere() }

// resumable reports whether an active run an earlier daemon left goes on
// here: one of its steps was started under a shim (running still, or its
// end recorded in the run folder), or it waited PENDING in the queue with
// its folder made (a folder half made, as a daemon killed mid-trigger left
// it, fails the run). Not in a copy of a state folder: its runs are another
// daemon's.
func (m *Manager) resumable(ref RunRef) bool {
	if !m.shimsHere() || m.store.Instance().Copied {
		return false
	}
	dir := m.RunDir(ref.JobID, ref.Run.ID)
	if ref.Run.Status == Pending { // laid out: its payload is put in last (prepareRun)
		_, err := os.Lstat(filepath.Join(dir, "input", "input.json"))
		return err == nil
	}
	return stepsStarted(dir)
}

// stepsStarted reports whether a step of the run in dir was started under
// a shim (running still, or its end recorded there) or submitted to Slurm.
// A run still PENDING in the store may have one: its daemon was killed
// between the step's start and the commit of that start.
func stepsStarted(dir string) bool {
	started, _ := filepath.Glob(filepath.Join(dir, shimFolder, "*", "lock")) // a bad pattern only
	return len(started) > 0 || slurmSubmitted(dir)
}

// resumeRun makes an active run an earlier daemon left active here again,
// when it is resumable: its pipeline runs again (resumed), re-attaching to
// the steps whose shims were started and starting the steps after them
// once. It reports whether it did.
func (m *Manager) resumeRun(ref RunRef) bool {
	if !m.resumable(ref) {
		return false
	}
	k := runKey{ref.JobID, ref.Run.ID}
	done := make(chan struct{})
	// A paused run stays so: its steps' cgroups stay frozen and their
	// shims' clocks stopped without a daemon; its own clock starts paused
	// (runDeadline), and ctl resume thaws it as before.
	paused := ref.Run.Status == Paused
	started := ref.Run.Status == Pending && stepsStarted(m.RunDir(k.job, k.id))
	m.learnOwner(k.job) // fair.go
	m.mu.Lock()
	m.active[k] = &activeRun{done: done, bell: newBell(), readers: newReaderBudget(done, m.closing), paused: paused, started: started}
	m.perJob[k.job]++
	m.queue = append(m.queue, k)
	m.dispatchLocked()
	m.mu.Unlock()
	switch {
	case ref.Run.Status == Pending && !started: // it never ran: queued again, not re-attached
		m.event(k.job, "run %d queued again after a restart of jobfs", k.id)
		return true
	case ref.Run.Status == Paused:
		m.appendRunLog(k.job, k.id, "jobfs: a new jobfs re-attached to this run: it stays paused (echo resume > ctl)")
	default:
		m.appendRunLog(k.job, k.id, "jobfs: a new jobfs re-attached to this run: its steps ran on while jobfs was stopped")
	}
	m.event(k.job, "run %d re-attached after a restart of jobfs", k.id)
	return true
}

// resumed reports whether the run's pipeline was started by an earlier
// daemon (it is RUNNING or PAUSED in the store, or was PENDING with a step
// started when resumeRun found it), with its record.
func (m *Manager) resumed(k runKey) (Run, bool) {
	r, err := m.store.Run(k.job, k.id)
	if err != nil {
		return Run{}, false
	}
	m.mu.Lock()
	started := m.active[k] != nil && m.active[k].started
	m.mu.Unlock()
	return r, r.Status == Running || r.Status == Paused || r.Status == Pending && started
}

// keepCgroups reports whether a start must leave the steps' cgroups alone:
// runs to resume have steps that may still run in them.
func (m *Manager) keepCgroups() bool {
	if !m.shimsHere() {
		return false
	}
	refs, err := m.store.ActiveRuns()
	if err != nil {
		return true // recover reports it; nothing is killed meanwhile
	}
	for _, ref := range refs {
		started := ref.Run.Status != Pending || stepsStarted(m.RunDir(ref.JobID, ref.Run.ID))
		if started && m.resumable(ref) {
			return true
		}
	}
	return false
}

// pausedRecord, in a run folder (.shim/.paused: no step label starts with
// a dot), is the time the run spent
// paused: a daemon that resumes the run after a restart gives its
// config/timeout clock what is left of its running time, not of its life.
type pausedRecord struct {
	Total time.Duration // of the pauses that ended
	Since time.Time     // the pause going on; zero when running
}

const pausedFile = ".paused"

// recordPause notes a pause (frozen) or its end at now.
func recordPause(runDir string, frozen bool, now time.Time) error {
	rec := readPaused(runDir)
	switch {
	case frozen && rec.Since.IsZero():
		rec.Since = now
	case !frozen && !rec.Since.IsZero():
		rec.Total += max(now.Sub(rec.Since), 0)
		rec.Since = time.Time{}
	default:
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	file := filepath.Join(runDir, shimFolder, pausedFile)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(file+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(file+".tmp", file)
}

// pausedFor is how long the run has spent paused up to now.
func pausedFor(runDir string, now time.Time) time.Duration {
	rec := readPaused(runDir)
	if !rec.Since.IsZero() {
		rec.Total += max(now.Sub(rec.Since), 0)
	}
	return rec.Total
}

// readPaused reads the record; none (never paused) is the zero one.
func readPaused(runDir string) pausedRecord {
	var rec pausedRecord
	b, err := os.ReadFile(filepath.Join(runDir, shimFolder, pausedFile))
	if err == nil {
		_ = json.Unmarshal(b, &rec) // a torn record (never: renamed in) counts no pause
	}
	return rec
}
