package jobs

import (
	"time"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Change times the tree shows as mtimes (see domain.TimeRuns).
const (
	TimeRuns   = domain.TimeRuns
	TimeShares = domain.TimeShares
	TimeEnv    = domain.TimeEnv
)

// Times returns when each recorded key of a job last changed (see
// TimeRuns), read in one transaction: a folder's mtime is the newest of
// its entries' keys.
func (m *Manager) Times(jobID string) map[string]time.Time {
	// A job deleted meanwhile has no times: the zero times read as its
	// creation, which the caller falls back to.
	out, err := m.store.Times(jobID)
	if err != nil {
		return map[string]time.Time{}
	}
	return out
}

// storeTime is when key last changed, or the zero time if never (or the
// job cannot be read).
func (m *Manager) storeTime(jobID, key string) time.Time {
	return m.Times(jobID)[key]
}

// RunsChanged is when a run was last added to or removed from the job
// (its creation when never).
func (m *Manager) RunsChanged(jobID string) time.Time {
	j, err := m.store.Job(jobID)
	if err != nil {
		return time.Time{}
	}
	t := Latest(j.Created, m.storeTime(jobID, TimeRuns))
	if id, err := m.store.LatestRun(jobID); err == nil && id > 0 {
		if r, err := m.store.Run(jobID, id); err == nil {
			t = Latest(t, r.Queued)
		}
	}
	return t
}

// NextRunChanged is when the job's next_run last changed: its schedule or
// enabled was set, or a tick fired (then the next one is shown).
func (m *Manager) NextRunChanged(jobID string) time.Time {
	t := Latest(m.SettingTime(jobID, "config/schedule"), m.SettingTime(jobID, "config/enabled"))
	return Latest(t, m.storeTime(jobID, keyLastTick))
}

// Latest returns the newest of ts (zero when all are).
func Latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
