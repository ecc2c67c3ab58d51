package jobs

import (
	"errors"
	"fmt"
	"os"
)

// CreateJob makes a new job called name for owner.
func (m *Manager) CreateJob(owner Owner, name string) (Job, error) {
	if err := CheckJobName(name); err != nil {
		m.refusedJob(owner, name, err)
		return Job{}, err
	}
	j := Job{ID: newID(), Owner: owner, Name: name, Created: m.now().UTC()}
	// The job's folder is 0700: a Slurm step's owner may be let through
	// jobs/ (backend_slurm.go grant), and must find every other job closed.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{m.jobDir(j.ID), 0o700}, {m.StageDir(j.ID), 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return Job{}, fmt.Errorf("create job folder: %w", err)
		}
	}
	// File times are a clock tick coarse: input/ (shown from disk) may read
	// as made before now. The job is as old as its oldest file, so that
	// nothing of a new job shows a time before its creation.
	if st, err := os.Stat(m.StageDir(j.ID)); err == nil && st.ModTime().Before(j.Created) {
		j.Created = st.ModTime().UTC()
	}
	if err := m.store.CreateJob(j); err != nil {
		if rerr := os.RemoveAll(m.jobDir(j.ID)); rerr != nil {
			m.slog.Warn(fmt.Sprintf("not created, but its folder stays in %s: %v", m.jobDir(j.ID), rerr), jobAttrsOf(m, j)...)
		}
		return Job{}, err
	}
	m.event(j.ID, "created job %s", name)
	m.emitFor(j, Event{Type: EventCreated, Time: j.Created})
	return j, nil
}

// Job returns owner's job called name.
func (m *Manager) Job(owner Owner, name string) (Job, error) {
	return m.store.JobByName(owner, name)
}

// JobByID returns the job with the given id.
func (m *Manager) JobByID(id string) (Job, error) { return m.store.Job(id) }

// Jobs lists owner's jobs sorted by name.
func (m *Manager) Jobs(owner Owner) ([]Job, error) { return m.store.Jobs(owner) }

// RenameJob renames owner's job. Runs in flight are unaffected: folders are
// keyed by the job's id.
func (m *Manager) RenameJob(owner Owner, name, newName string) error {
	j, err := m.store.JobByName(owner, name)
	if err != nil {
		return err
	}
	if err := CheckJobName(newName); err != nil {
		return m.reject(j.ID, "rename", err)
	}
	if err := m.store.RenameJob(j.ID, newName); err != nil {
		if errors.Is(err, ErrExists) {
			return m.reject(j.ID, "rename", errorf(ErrExists, "rename: %s to %s: a job named %s exists; rm -rf it first", name, newName, newName))
		}
		return err
	}
	m.event(j.ID, "renamed %s to %s", name, newName)
	m.emitFor(j, Event{Type: EventRenamed, NewName: newName})
	return nil
}

// DeleteJob deletes owner's job with all its runs and files; ErrBusy while a
// run of it is active. Under m.mu the job is marked as being deleted (no
// run can start in between); the store forgets it in one transaction
// outside the lock, and its files and cgroups are removed after (no run of
// it is left to use them).
func (m *Manager) DeleteJob(owner Owner, name string) error {
	j, err := m.store.JobByName(owner, name)
	if err != nil {
		return err
	}
	var shares map[string][]byte // who saw it, for its job.deleted event
	if m.bus.n.Load() > 0 {
		shares = m.sharesOf(Event{id: j.ID})
	}
	if err := m.forgetJob(j); err != nil {
		return err
	}
	m.emitFor(j, Event{Type: EventDeleted, shares: shares})
	if m.opts.Cgroups != nil {
		if err := m.opts.Cgroups.Clean(m.cgroupParent() + "/" + j.ID); err != nil {
			m.slog.Warn(fmt.Sprintf("deleted, but its cgroups stay: %v", err), jobAttrsOf(m, j)...)
		}
	}
	if err := os.RemoveAll(m.jobDir(j.ID)); err != nil {
		m.slog.Warn(fmt.Sprintf("deleted, but its files stay in %s: %v", m.jobDir(j.ID), err), jobAttrsOf(m, j)...)
	}
	m.slog.Info("deleted", jobAttrsOf(m, j)...)
	return nil
}

// forgetJob removes job j from the store and the scheduler unless a run of
// it is active. The commit happens outside m.mu: beginDelete marks the job
// so that no run starts meanwhile, endDelete clears the mark.
func (m *Manager) forgetJob(j Job) error {
	if err := m.beginDelete(j); err != nil {
		return err
	}
	err := m.store.DeleteJob(j.ID)
	if err == nil {
		m.owners.Delete(j.ID) // fair.go
	}
	m.endDelete(j.ID, err == nil)
	return err
}

// beginDelete marks job j as being deleted unless a run of it is active
// or another deletion of it is under way.
func (m *Manager) beginDelete(j Job) error {
	m.mu.Lock()
	n, deleting := m.perJob[j.ID], m.deleting[j.ID]
	if n == 0 && !deleting {
		m.deleting[j.ID] = true
	}
	m.mu.Unlock()
	switch {
	case deleting:
		return errorf(ErrNotFound, "delete: job %s is being deleted", j.Name)
	case n > 0:
		return m.reject(j.ID, "delete", errorf(ErrBusy, "delete: job %s has %d active run(s): stop them or wait; nothing of it was changed", j.Name, n))
	}
	return nil
}

// endDelete clears the mark of beginDelete; a deleted job leaves the
// scheduler.
func (m *Manager) endDelete(id string, deleted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.deleting, id)
	if deleted && m.sched != nil {
		m.sched.Remove(id)
	}
}

// Busy reports whether job id has a PENDING or RUNNING run.
func (m *Manager) Busy(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.perJob[id] > 0
}
