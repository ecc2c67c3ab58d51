package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// dispatchLocked starts queued runs while slots are free. m.mu is held.
func (m *Manager) dispatchLocked() {
	for !m.stopping && m.running < m.opts.MaxActive && len(m.queue) > 0 {
		i, owner := m.fairestLocked() // fair.go: the owner with the fewest runs executing first
		k := m.queue[i]
		m.queue = slices.Delete(m.queue, i, i+1)
		a := m.active[k]
		if a == nil || a.cancel != nil {
			continue // cluster: queued twice, and ended or executing already
		}
		ctx, cancel := newRunContext(m.baseCtx)
		a.cancel = cancel
		m.running++
		m.runsOf[owner]++
		m.wg.Add(1)
		go m.execute(ctx, k, owner)
	}
}

// execute runs one run to its end and frees its slot.
func (m *Manager) execute(ctx context.Context, k runKey, owner Owner) {
	defer m.wg.Done()
	if m.cluster == nil || m.claimToExecute(k) { // cluster: another node may have it
		// No status: the daemon stopped and left the run to its steps'
		// shims; the next daemon resumes it (recover.go).
		if out, stepEnd := m.runPipeline(ctx, k); out.Status != "" {
			m.finishWith(k, out, stepEnd)
		}
	}
	m.mu.Lock()
	m.running--
	if m.runsOf[owner]--; m.runsOf[owner] <= 0 {
		delete(m.runsOf, owner)
	}
	m.dispatchLocked()
	m.mu.Unlock()
}

// planRun turns a run's config snapshot into its steps. A resumed run
// keeps the script its step was started with: that step may be reading
// it still, and a rewrite (O_TRUNC) would show a shell a short script.
func (m *Manager) planRun(c runConfig, runDir string, resume bool) ([]node, error) {
	switch typ := c.values["config/type"]; typ {
	case "script":
		script := c.values["config/script"]
		if script == "" {
			return nil, errors.New("config/script is empty: write a script starting with a #! line")
		}
		app := filepath.Join(runDir, "app")
		path := filepath.Join(app, "script")
		if resume {
			if _, err := os.Lstat(path); err == nil {
				return []node{{label: "script", path: path, dir: app}}, nil
			}
		}
		if err := os.MkdirAll(app, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			return nil, fmt.Errorf("write script: %w", err)
		}
		return []node{{label: "script", path: path, dir: app}}, nil
	case "chains":
		v := c.values["config/chains"]
		if v == "" {
			return nil, errors.New("config/chains is empty: write an image name to it, or set config/type to script")
		}
		chain, err := m.resolveChains(c.job, v)
		if err != nil {
			return nil, err
		}
		var nodes []node
		for _, s := range chain.Steps {
			img, err := m.resolveImage(c.job, s.Ref, true)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, node{label: s.Label, path: img.Entrypoint, dir: img.Dir, after: s.After, fanOut: s.FanOut})
		}
		return nodes, nil
	default:
		return nil, fmt.Errorf("config/type %q is not a runtime", typ)
	}
}

// startedAt records that a step's process runs since at (zero: now), with
// its group for recovery; the first step turns the run RUNNING in the same
// commit. A daemon that died first did not record it: its shim says when.
func (m *Manager) startedAt(k runKey, step Step, pgid int, start uint64, at time.Time) {
	now := m.now().UTC()
	if !at.IsZero() {
		now = at.UTC()
	}
	first := false
	began := time.Now() // the commit's real latency, for the metrics: not the injected clock
	r, err := m.store.UpdateRun(k.job, k.id, func(r *Run) {
		s, ok := r.Step(step.Label)
		if !ok { // a single-step run records its step when it starts
			r.Steps = append(r.Steps, step)
			s = &r.Steps[len(r.Steps)-1]
		}
		first = recordStart(r, s, now, StepStarted{Pgid: pgid, PgidStart: start})
		s.Status = Running
	})
	m.metrics.observeCommit("start", began)
	if err != nil {
		m.slog.Warn(fmt.Sprintf("record start of step %s: %v", step.Label, err), m.runAttrs(k.job, k.id)...)
	}
	if first {
		m.tellStart(k, now)
		if err == nil {
			m.onStarted(k.job, r)
		}
	}
}

// clockAt is the Manager's clock at the moment at of the machine's (when a
// step began, as exec tells it: later than its start by the time it took
// to tell), zero for zero.
func (m *Manager) clockAt(at time.Time) time.Time {
	if at.IsZero() {
		return time.Time{}
	}
	return m.now().Add(-time.Since(at)).UTC()
}

// recordStart records in r that its step s began at at: the run's start
// too when it is the first (it reports so). A run paused in the instant
// before its start was recorded stays PAUSED: it started, frozen.
func recordStart(r *Run, s *Step, at time.Time, st StepStarted) (first bool) {
	if r.StartedAt.IsZero() && !r.Status.Terminal() {
		if r.Status == Pending {
			r.Status = Running
		}
		r.StartedAt, first = at, true
	}
	s.StartedAt, s.Pgid, s.PgidStart = at, st.Pgid, st.PgidStart
	return first
}

// toldStarted tells the start of run r, recorded in the commit of its
// first step's end (StepResult.Start), before that end is told.
func (m *Manager) toldStarted(k runKey, r Run) {
	if r.Status.Terminal() {
		r.Status = Running // as it was told, had it been recorded apart
	}
	m.tellStart(k, r.StartedAt)
	m.onStarted(k.job, r)
}

// tellStart logs a run's start in the job's log. A start that happened
// while no jobfs ran (a re-attached run's, whose daemon died before it
// recorded it) says when, since the line itself is written later.
func (m *Manager) tellStart(k runKey, at time.Time) {
	if !at.IsZero() && at.Before(m.opened) {
		m.event(k.job, "run %d had started at %s, while jobfs was stopped", k.id, at.UTC().Format(time.RFC3339))
		return
	}
	m.event(k.job, "run %d started", k.id)
}

// stepEnv is the whole environment of a step: nothing of the daemon's.
// home is the step's HOME; empty means the owner's home folder.
func (m *Manager) stepEnv(j Job, run uint64, label, home string) []string {
	if home == "" {
		home = "/tmp"
		if u, err := user.LookupId(strconv.FormatUint(uint64(j.Owner), 10)); err == nil && u.HomeDir != "" {
			home = u.HomeDir
		}
	}
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"JOBFS_JOB=" + j.Name,
		"JOBFS_RUN=" + strconv.FormatUint(run, 10),
		"JOBFS_STEP=" + label,
	}
}

func (m *Manager) bellOf(k runKey) *bell {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[k].bell
}

// idleJobsKept bounds the jobs whose backend folders are kept while no run
// of theirs is active.
const idleJobsKept = 32

// idleJob is called, under m.mu, when a run of job has ended. Once no run
// of the job is active, what the backend keeps for it (on the local
// backend, its cgroup folder in every controller) stays for its next run,
// which then makes one level fewer: on cgroup v1 that is six mkdirs on the
// way to a step's start and six rmdirs after its end (with the v1 spare
// run folder, up to 1 ms of a trigger of /bin/true on a 2-core VM, within
// its noise, and CPU). Beyond idleJobsKept jobs the one
// idle longest is freed; the rest go when the daemon closes or the job is
// deleted.
func (m *Manager) idleJob(job string) {
	if m.perJob[job] != 0 {
		return
	}
	m.idle = append(slices.DeleteFunc(m.idle, func(j string) bool { return j == job }), job)
	for len(m.idle) > idleJobsKept {
		oldest := m.idle[0]
		m.idle = slices.Delete(m.idle, 0, 1)
		if m.perJob[oldest] == 0 { // else its runs' end makes it idle again
			m.backend.EndJob(oldest)
		}
	}
}

// finish records a run's end, frees it and wakes its waiters.
func (m *Manager) finish(k runKey, out Run) { m.finishWith(k, out, nil) }

// finishWith is finish; stepEnd, when set, is the end of the run's last
// step, recorded in the same commit.
func (m *Manager) finishWith(k runKey, out Run, stepEnd func(*Run)) {
	end := m.now().UTC()
	if !out.EndedAt.IsZero() { // a resumed run whose steps ended while no daemon ran
		end = out.EndedAt.UTC()
	}
	// The commit's real latency, for the metrics: not the injected clock.
	began := time.Now()
	followup := m.hasWorkflow(k.job) // workflow.go
	r, err := Run{}, errFencedOut
	// started: the run's start was recorded with its last step's end
	// (StepResult.Start), and is told first.
	started := false
	if !m.clusterLost() { // a node that lost its lease writes nothing more
		r, err = m.store.UpdateRun(k.job, k.id, func(r *Run) {
			unstarted := r.StartedAt.IsZero()
			if stepEnd != nil {
				stepEnd(r)
			}
			started = unstarted && !r.StartedAt.IsZero()
			r.Status, r.ExitCode, r.Error, r.Result = out.Status, out.ExitCode, out.Error, out.Result
			r.EndedAt = end
			r.Followup = followup
			for i := range r.Steps {
				if !r.Steps[i].Status.Terminal() {
					r.Steps[i].Status, r.Steps[i].EndedAt = Skipped, end
				}
			}
			if u := SumUsage(r.Steps); u != (Usage{}) {
				r.Usage = &u
			}
		})
	}
	m.metrics.observeCommit("end", began)
	if err != nil {
		m.slog.Warn(fmt.Sprintf("record the end of the run: %v", err), m.runAttrs(k.job, k.id)...)
	} else {
		if started {
			m.toldStarted(k, r)
		}
		m.event(k.job, "run %d %s%s", r.ID, r.Status, endDetail(r))
		m.onEnded(k.job, r)
	}
	// Each step removed what it held; what the Backend kept for the run
	// goes once the run is over for its readers (this defer runs after the
	// unlock); the job's is kept for its next run (idleJob). Under m.mu no
	// new run of a job can be starting: it would be counted in perJob.
	defer func() {
		if err := m.backend.EndRun(k.job, k.id); err != nil {
			m.slog.Warn(fmt.Sprintf("remove the run's cgroups: %v", err), m.runAttrs(k.job, k.id)...)
		}
		m.mu.Lock()
		m.idleJob(k.job)
		m.mu.Unlock()
	}()
	if !m.clusterLost() {
		defer m.prune(k.job) // after the unlock: it commits and removes files
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.active[k]; a != nil {
		close(a.done)
		if a.cancel != nil {
			a.cancel(nil)
		}
	}
	delete(m.active, k)
	if m.perJob[k.job]--; m.perJob[k.job] <= 0 {
		delete(m.perJob, k.job)
	}
	m.startWaitingLocked(k.job)
}

func endDetail(r Run) string {
	s := ""
	if r.ExitCode != nil {
		s = fmt.Sprintf(" exit %d", *r.ExitCode)
	}
	if !r.StartedAt.IsZero() {
		s += fmt.Sprintf(" in %s", r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond))
	}
	if r.Error != "" {
		s += ": " + r.Error
	}
	return s
}
