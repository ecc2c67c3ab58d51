package jobs

import (
	"time"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/jobs/domain"
)

// usageOf keeps what exec measured; nil when it measured nothing, so a
// record without cgroups carries no empty object.
func usageOf(u exec.Usage) *Usage {
	if u.CPUNanos == nil && u.MemoryPeak == nil && u.IORead == nil && u.IOWrite == nil && u.PidsPeak == nil {
		return nil
	}
	return &Usage{CPUNanos: u.CPUNanos, MemoryPeak: u.MemoryPeak, IORead: u.IORead, IOWrite: u.IOWrite, PidsPeak: u.PidsPeak}
}

// SumUsage is what steps used together (domain.SumUsage).
func SumUsage(steps []Step) Usage { return domain.SumUsage(steps) }

// Now is the Manager's clock (injected in tests), for what is computed at
// read time such as an active run's duration.
func (m *Manager) Now() time.Time { return m.now().UTC() }

// Trigger starts a run of job id with payload p (see trigger); a manual
// trigger through it names no user.
func (m *Manager) Trigger(jobID string, p []byte, t Trigger) (uint64, error) {
	by := ""
	if t == Schedule {
		by = string(Schedule)
	}
	return m.trigger(jobID, p, t, by, time.Time{})
}

// TriggerAs is Trigger for a write by the user uid, whom the run records
// as triggered_by (the user name, or the uid where it has none).
func (m *Manager) TriggerAs(jobID string, p []byte, t Trigger, uid uint32) (uint64, error) {
	return m.trigger(jobID, p, t, UserName(uid), time.Time{})
}
