package jobs

import (
	"strconv"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/jobs/domain"
)

// limits returns a run's limits from the config/limits/* and
// config/network of its config snapshot; the Backend applies them.
func (m *Manager) limits(c runConfig) exec.Limits {
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(c.values["config/limits/"+name], 10, 64)
		return n
	}
	return exec.Limits{
		CPUPercent: num("cpu"),
		MemoryMiB:  num("memory"),
		IOBps:      uint64(num("io")),
		Pids:       num("pids"),
		NoNetwork:  c.values["config/network"] == "none",
	}
}

// checkNetwork accepts config/network: host (the host's network) or none
// (a network namespace with only lo).
func checkNetwork(_ *Manager, _ Job, v string) error {
	if v != "host" && v != "none" {
		return errorf(ErrInvalid, "config/network: %q: write host (the host's network) or none (only lo)", v)
	}
	return nil
}

// noteIsolation starts a run's log with what of the isolation and limits
// its steps will run without here, and why (the Backend's Gaps).
func (m *Manager) noteIsolation(k runKey, be Backend, lim exec.Limits) {
	for _, line := range be.Gaps(lim) {
		m.appendRunLog(k.job, k.id, line)
	}
}

// groupsOf returns the supplementary groups of uid.
func groupsOf(uid Owner) []uint32 { return domain.Groups(uid) }

// primaryGroup returns the primary gid of uid, or uid when unknown.
func primaryGroup(uid Owner) uint32 { return domain.PrimaryGroup(uid) }
