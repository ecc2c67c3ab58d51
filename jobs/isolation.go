package jobs

import (
	"os/user"
	"strconv"

	"github.com/jobfs/jobfs/exec"
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
func (m *Manager) noteIsolation(k runKey, lim exec.Limits) {
	for _, line := range m.backend.Gaps(lim) {
		m.appendRunLog(k.job, k.id, line)
	}
}

// groupsOf returns the supplementary groups of uid.
func groupsOf(uid Owner) []uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil
	}
	ids, _ := u.GroupIds()
	var out []uint32
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			out = append(out, uint32(g))
		}
	}
	return out
}

// primaryGroup returns the primary gid of uid, or uid when unknown.
func primaryGroup(uid Owner) uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return uid
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return uid
	}
	return uint32(g)
}
