package jobs

import (
	"fmt"
	"os"
	"os/user"
	"path"
	"strconv"

	"github.com/jobfs/jobfs/exec"
)

// limits returns a run's effective limits from the config/limits/* of its
// config snapshot.
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
		Device:     m.device,
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
// this daemon cannot apply, and why: first the namespaces, then the limits.
func (m *Manager) noteIsolation(k runKey, c runConfig) {
	if m.opts.Init == "" {
		return
	}
	if gaps := m.isolationGaps(m.limits(c)); gaps != "" {
		m.appendRunLog(k.job, k.id, "isolation not applied: "+gaps)
	}
	if gaps := m.limitGaps(m.limits(c)); gaps != "" {
		m.appendRunLog(k.job, k.id, "limits not enforced: "+gaps)
	}
}

// isolationGaps says which namespaces a step with limits lim would lack,
// and why; "" when it gets all of them.
func (m *Manager) isolationGaps(lim exec.Limits) string {
	if m.opts.Namespaces {
		return ""
	}
	what := "user, mount, pid, ipc and uts namespaces, private root (the host's files read-only, private /tmp, /input read-only)"
	if lim.NoNetwork {
		what += ", network none"
	}
	return what + ": " + m.opts.NoIsolation
}

// limitGaps says which limits a step with limits lim would run without,
// and why; "" when every one is enforced.
func (m *Manager) limitGaps(lim exec.Limits) string {
	if m.opts.Cgroups == nil {
		return m.opts.NoLimits
	}
	return exec.Unenforced(m.opts.Cgroups, lim)
}

// isolation says how one step runs: nil for a plain process (no init
// configured), else its cgroup, limits, namespaces and user. An error means
// a requested limit cannot be applied: the step fails with that reason.
func (m *Manager) isolation(j Job, lim exec.Limits, k runKey, label, input, output, app string) (*exec.Isolation, error) {
	if m.opts.Init == "" {
		return nil, nil
	}
	iso := &exec.Isolation{
		Init:       m.opts.Init,
		Cgroups:    m.opts.Cgroups,
		Group:      path.Join(m.cgroupParent(), j.ID, strconv.FormatUint(k.id, 10), label),
		Limits:     lim,
		Namespaces: m.opts.Namespaces,
		UserNS:     m.opts.Namespaces && m.opts.UserNS,
		NoNetwork:  m.opts.Namespaces && lim.NoNetwork,
		Input:      input, Output: output, App: app,
		UID: j.Owner, GID: primaryGroup(j.Owner), Groups: groupsOf(j.Owner),
	}
	if euid := os.Geteuid(); euid != 0 && j.Owner != Owner(euid) {
		return nil, fmt.Errorf("this jobfs runs as uid %d, not root: it runs steps only as that user, and this job belongs to uid %d (start jobfs as root to run other users' jobs)", euid, j.Owner)
	}
	if iso.Limits.IOBps > 0 && m.deviceErr != nil {
		return nil, fmt.Errorf("config/limits/io cannot be applied: %v", m.deviceErr)
	}
	if gaps := m.limitGaps(lim); gaps != "" && m.opts.RequireLimits {
		return nil, fmt.Errorf("limits not enforced and --require-limits is set: %s", gaps)
	}
	if gaps := m.isolationGaps(lim); gaps != "" && m.opts.RequireIsolation {
		return nil, fmt.Errorf("isolation not applied and --require-isolation is set: %s", gaps)
	}
	return iso, nil
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

// giveToOwner makes a folder a step writes to belong to the job's owner, so
// a step that runs as that user can write it and its files keep the uid.
func (m *Manager) giveToOwner(j Job, dir string) error {
	if j.Owner == 0 || os.Geteuid() != 0 {
		return nil
	}
	return os.Chown(dir, int(j.Owner), int(primaryGroup(j.Owner)))
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
