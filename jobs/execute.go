package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// dispatchLocked starts queued runs while slots are free. m.mu is held.
func (m *Manager) dispatchLocked() {
	for !m.stopping && m.running < m.opts.MaxActive && len(m.queue) > 0 {
		k := m.queue[0]
		m.queue = m.queue[1:]
		ctx, cancel := context.WithCancelCause(m.baseCtx)
		m.active[k].cancel = cancel
		m.running++
		m.wg.Add(1)
		go m.execute(ctx, k)
	}
}

// execute runs one run to its end and frees its slot. The run turns
// RUNNING in the same transaction that records its process group, so a
// run needs three commits in all: queued, running, ended.
func (m *Manager) execute(ctx context.Context, k runKey) {
	defer m.wg.Done()
	m.finish(k, m.runSteps(ctx, k))
	m.mu.Lock()
	m.running--
	m.dispatchLocked()
	m.mu.Unlock()
}

// started records that a run's process runs, with its group for recovery.
func (m *Manager) started(k runKey, pgid int, start uint64) {
	now := m.now().UTC()
	_, err := m.store.UpdateRun(k.job, k.id, func(r *Run) {
		r.Status, r.StartedAt, r.Pgid, r.PgidStart = Running, now, pgid, start
	})
	if err != nil {
		m.logger.Printf("job %s: record start of run %d: %v", k.job, k.id, err)
	}
	m.event(k.job, "run %d started", k.id)
}

// step is one resolved process to run.
type step struct {
	label string
	path  string
}

// resolveStep finds what a run of job j executes, from its current config.
func (m *Manager) resolveStep(j Job, runDir string) (step, error) {
	switch typ := m.value(j.ID, "config/type"); typ {
	case "script":
		script := m.value(j.ID, "config/script")
		if script == "" {
			return step{}, errors.New("config/script is empty: write a script starting with #!")
		}
		path := filepath.Join(runDir, "script")
		if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
			return step{}, fmt.Errorf("write script: %w", err)
		}
		return step{label: "script", path: path}, nil
	case "chains":
		v := m.value(j.ID, "config/chains")
		if v == "" {
			return step{}, errors.New("config/chains is empty: write an image name to it, or set config/type to script")
		}
		c, err := m.resolveChains(j, v)
		if err != nil {
			return step{}, err
		}
		return step{label: c.Steps[0].Label, path: c.Steps[0].Image.Entrypoint}, nil
	default:
		return step{}, fmt.Errorf("config/type %q is not a runtime", typ)
	}
}

// runSteps executes the run's step and returns its terminal record fields.
func (m *Manager) runSteps(ctx context.Context, k runKey) Run {
	dir := m.RunDir(k.job, k.id)
	j, err := m.store.Job(k.job)
	if err != nil {
		return Run{Status: Failed, Error: err.Error()}
	}
	st, err := m.resolveStep(j, dir)
	if err != nil {
		m.appendRunLog(k.job, k.id, "jobfs: "+err.Error())
		return Run{Status: Failed, Error: err.Error()}
	}
	timeout, err := ParseTimeout(m.value(k.job, "config/timeout"))
	if err != nil {
		timeout = time.Hour
	}
	res := exec.Run(ctx, exec.Spec{
		Path:    st.path,
		Args:    []string{filepath.Join(dir, "input"), filepath.Join(dir, "output")},
		Env:     m.stepEnv(j, k.id, st.label, dir),
		Dir:     filepath.Join(dir, "work"),
		LogPath: filepath.Join(dir, "log"),
		MaxLog:  m.opts.MaxLog,
		Notify:  m.bellOf(k).ring,
		Timeout: timeout,
		Grace:   m.opts.Grace,
		Started: func(pgid int, start uint64) { m.started(k, pgid, start) },
	})
	out := m.outcome(ctx, st, res, timeout)
	if out.Status != Completed && out.Error != "" {
		m.appendRunLog(k.job, k.id, "jobfs: "+out.Error)
	}
	result, err := exec.Package(filepath.Join(dir, "output"), filepath.Join(dir, "result.zip"), m.opts.MaxResult)
	switch {
	case err != nil:
		m.appendRunLog(k.job, k.id, "jobfs: "+trimSentinel(err))
		if out.Status == Completed {
			out.Status, out.Error = Failed, trimSentinel(err)
		}
	case result != "":
		out.Result, _ = filepath.Rel(dir, result)
	}
	return out
}

// trimSentinel drops the "result too large: " prefix of a wrapped sentinel.
func trimSentinel(err error) string {
	s := err.Error()
	if inner := errors.Unwrap(err); inner != nil && len(s) > len(inner.Error())+2 {
		return s[len(inner.Error())+2:]
	}
	return s
}

// outcome maps how the process ended onto the run's status.
func (m *Manager) outcome(ctx context.Context, st step, res exec.Result, timeout time.Duration) Run {
	code := res.ExitCode
	switch res.Outcome {
	case exec.NotStarted:
		return Run{Status: Failed, Error: res.Err.Error()}
	case exec.TimedOut:
		return Run{Status: Timeout, ExitCode: &code, Error: fmt.Sprintf("timed out after %s (config/timeout)", timeout)}
	case exec.Cancelled:
		if errors.Is(context.Cause(ctx), errShutdown) {
			return Run{Status: Failed, ExitCode: &code, Error: errShutdown.Error()}
		}
		return Run{Status: Cancelled, ExitCode: &code, Error: context.Cause(ctx).Error()}
	}
	switch {
	case code == 0:
		return Run{Status: Completed, ExitCode: &code}
	case code > 128:
		return Run{Status: Failed, ExitCode: &code, Error: fmt.Sprintf("step %s was killed by signal %d (%v)", st.label, code-128, syscall.Signal(code-128))}
	default:
		return Run{Status: Failed, ExitCode: &code, Error: fmt.Sprintf("step %s exited with code %d", st.label, code)}
	}
}

// stepEnv is the whole environment of a step: nothing of the daemon's.
func (m *Manager) stepEnv(j Job, run uint64, label, dir string) []string {
	home := filepath.Join(dir, "work")
	if u, err := user.LookupId(strconv.FormatUint(uint64(j.Owner), 10)); err == nil && u.HomeDir != "" {
		home = u.HomeDir
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

// finish records a run's end, frees it and wakes its waiters.
func (m *Manager) finish(k runKey, out Run) {
	end := m.now().UTC()
	r, err := m.store.UpdateRun(k.job, k.id, func(r *Run) {
		r.Status, r.ExitCode, r.Error, r.Result = out.Status, out.ExitCode, out.Error, out.Result
		r.EndedAt = end
	})
	if err != nil {
		m.logger.Printf("job %s: record end of run %d: %v", k.job, k.id, err)
	} else {
		m.event(k.job, "run %d %s%s", r.ID, r.Status, endDetail(r))
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
	m.pruneLocked(k.job)
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
