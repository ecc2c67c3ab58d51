package jobs

import (
	"context"
	"fmt"
	"os"

	"github.com/jobfs/jobfs/exec"
)

// newRunContext is the context a run executes under, and the cancel that
// Stop and Close call: a kill (errKilled) SIGKILLs the steps at once, even
// while an earlier stop waits out its grace.
func newRunContext(parent context.Context) (context.Context, context.CancelCauseFunc) {
	return exec.WithStop(parent)
}

// Runs lists the ids of a job's runs, oldest first.
func (m *Manager) Runs(jobID string) ([]uint64, error) { return m.store.RunIDs(jobID) }

// Run returns one run's record.
func (m *Manager) Run(jobID string, id uint64) (Run, error) { return m.store.Run(jobID, id) }

// LatestRun returns the id of the job's newest run, or 0.
func (m *Manager) LatestRun(jobID string) (uint64, error) { return m.store.LatestRun(jobID) }

// DeleteRun deletes a finished run with its files; ErrBusy while it is
// active, or while any run of the job is, so `rm -rf` of a busy job removes
// nothing.
func (m *Manager) DeleteRun(jobID string, id uint64) error {
	r, err := m.store.Run(jobID, id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	busy := m.perJob[jobID] > 0
	m.mu.Unlock() // a finished run stays finished: the commit needs no lock
	if busy {
		what := "run " + itoa(id)
		if !r.Status.Terminal() {
			return m.reject(jobID, what, errorf(ErrBusy, "%s: cannot delete an active run: stop it first", what))
		}
		return m.reject(jobID, what, errorf(ErrBusy, "%s: cannot delete runs while a run of the job is active", what))
	}
	if err := m.store.DeleteRun(jobID, id); err != nil {
		return err
	}
	m.removeRunDir(jobID, id)
	m.event(jobID, "run %d deleted", id)
	return nil
}

// removeRunDir removes a deleted run's files. The store has forgotten the
// run already, so a failure is logged with where the files stay.
func (m *Manager) removeRunDir(jobID string, id uint64) {
	if err := os.RemoveAll(m.RunDir(jobID, id)); err != nil {
		m.slog.Warn(fmt.Sprintf("run deleted, but its files stay in %s: %v", m.RunDir(jobID, id), err), m.runAttrs(jobID, id)...)
	}
}
