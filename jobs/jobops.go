package jobs

import (
	"errors"
	"fmt"
	"os"
)

// CreateJob makes a new job called name for owner.
func (m *Manager) CreateJob(owner Owner, name string) (Job, error) {
	if err := CheckJobName(name); err != nil {
		return Job{}, err
	}
	j := Job{ID: newID(), Owner: owner, Name: name, Created: m.now().UTC()}
	for _, d := range []string{m.jobDir(j.ID), m.StageDir(j.ID)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
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
			m.logger.Printf("%s: not created, but its folder stays in %s: %v", name, m.jobDir(j.ID), rerr)
		}
		return Job{}, err
	}
	m.event(j.ID, "created job %s", name)
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
	return nil
}

// DeleteJob deletes owner's job with all its runs and files; ErrBusy while a
// run of it is active. The store forgets the job in one transaction, under
// m.mu so no run can start in between; its files and cgroups are removed
// after, outside the lock (no run of it is left to use them).
func (m *Manager) DeleteJob(owner Owner, name string) error {
	j, err := m.store.JobByName(owner, name)
	if err != nil {
		return err
	}
	if err := m.forgetJob(j); err != nil {
		return err
	}
	if m.opts.Cgroups != nil {
		if err := m.opts.Cgroups.Clean(m.cgroupParent() + "/" + j.ID); err != nil {
			m.logger.Printf("%s: deleted, but its cgroups stay: %v", name, err)
		}
	}
	if err := os.RemoveAll(m.jobDir(j.ID)); err != nil {
		m.logger.Printf("%s: deleted, but its files stay in %s: %v", name, m.jobDir(j.ID), err)
	}
	m.logger.Printf("%s: deleted", name)
	return nil
}

// forgetJob removes job j from the store and the scheduler unless a run of
// it is active.
func (m *Manager) forgetJob(j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.perJob[j.ID]; n > 0 {
		return m.reject(j.ID, "delete", errorf(ErrBusy, "delete: job %s has %d active run(s): stop them or wait; nothing of it was changed", j.Name, n))
	}
	if err := m.store.DeleteJob(j.ID); err != nil {
		return err
	}
	if m.sched != nil {
		m.sched.Remove(j.ID)
	}
	return nil
}

// Busy reports whether job id has a PENDING or RUNNING run.
func (m *Manager) Busy(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.perJob[id] > 0
}
