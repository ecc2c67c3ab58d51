package jobs

import (
	"github.com/jobfs/jobfs/exec"
)

// cleanCgroups removes the cgroups (and kills the processes) a crashed
// daemon of this state folder left: everything below jobfs/<instance>. A
// copy of the folder has another instance, so its daemon never reaches the
// steps of the daemon it was copied from.
func (m *Manager) cleanCgroups() error {
	if m.opts.Cgroups == nil {
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
}
