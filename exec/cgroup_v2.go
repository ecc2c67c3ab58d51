package exec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// cgroupsV2 makes step cgroups below base, the subtree of the mount the
// daemon manages ("/" for root outside any unit, else its own cgroup, see
// delegateV2). miss are wanted controllers the subtree lacks, and why.
type cgroupsV2 struct {
	mount, base string
	miss        []string
	why         string
}

// newV2 sets up the cgroup v2 hierarchy at h.root for this daemon.
func newV2(h cgroupHost) (Cgroups, error) {
	base, miss, err := h.delegateV2()
	if err != nil {
		if errors.Is(err, ErrNoCgroups) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrNoCgroups, err)
	}
	c := cgroupsV2{mount: h.root, base: base, miss: miss}
	if len(miss) > 0 {
		c.why = fmt.Sprintf("cgroup %s does not offer the controllers %s (systemd delegates to user services what DelegateControllers or its defaults allow)", base, strings.Join(miss, ", "))
	}
	return c, nil
}

func (c cgroupsV2) missing() ([]string, string) { return c.miss, c.why }

// top is the folder treated as the mount by the cgroup library: controllers
// are enabled from it down, never above (those files are not ours).
func (c cgroupsV2) top() string { return filepath.Join(c.mount, c.base) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (cgroupsV2) Version() int { return 2 }

// v2Resources translates limits into the v2 files: cpu.max "<pct*1000>
// 100000", memory.max (memory.high at 90% so the step slows before it is
// killed), pids.max, io.max rbps/wbps on the step's disk.
func v2Resources(l Limits) (*cgroup2.Resources, error) {
	r := &cgroup2.Resources{}
	if l.CPUPercent > 0 {
		quota := l.CPUPercent * 1000
		period := uint64(100_000)
		r.CPU = &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)}
	}
	if l.MemoryMiB > 0 {
		max := l.MemoryMiB << 20
		high := max / 10 * 9
		r.Memory = &cgroup2.Memory{Max: &max, High: &high}
	}
	if l.Pids > 0 {
		r.Pids = &cgroup2.Pids{Max: l.Pids}
	}
	if l.IOBps > 0 {
		maj, min, err := splitDevice(l.Device)
		if err != nil {
			return nil, err
		}
		r.IO = &cgroup2.IO{Max: []cgroup2.Entry{
			{Type: cgroup2.ReadBPS, Major: maj, Minor: min, Rate: l.IOBps},
			{Type: cgroup2.WriteBPS, Major: maj, Minor: min, Rate: l.IOBps},
		}}
	}
	return r, nil
}

func (c cgroupsV2) Create(rel string, l Limits) (Group, error) {
	res, err := v2Resources(c.enforceable(l))
	if err != nil {
		return nil, err
	}
	p, full := c.paths(rel)
	if res.Memory != nil && c.swapAccounted() {
		// No swap for a step with a memory limit: over its limit it is
		// killed (its log says out of memory) instead of paging for
		// minutes. Without swap accounting the file is missing and the
		// machine's swap, if any, stays open to the step.
		var none int64
		res.Memory.Swap = &none
	}
	m, err := onceMoreIfGone(func() (*cgroup2.Manager, error) { return cgroup2.NewManager(c.top(), p, res) })
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", full, err)
	}
	return &groupV2{m: m, dir: filepath.Join(c.mount, full), path: full}, nil
}

// paths are the group at rel below the daemon's subtree (p) and below the
// mount (full).
func (c cgroupsV2) paths(rel string) (p, full string) {
	p = "/" + strings.Trim(rel, "/")
	return p, path.Join(c.base, p)
}

func (c cgroupsV2) mounts() []string { return []string{c.mount} }

func (c cgroupsV2) plan(rel string) ([]string, map[string]string) {
	_, full := c.paths(rel)
	g := &groupV2{dir: filepath.Join(c.mount, full), path: full}
	return []string{filepath.Join(g.Dir(), "cgroup.procs")}, g.Paths()
}

// enforceable drops the limits whose controller the subtree lacks: the run
// log says so (Unenforced), and enabling it would fail.
func (c cgroupsV2) enforceable(l Limits) Limits {
	if contains(c.miss, "cpu") {
		l.CPUPercent = 0
	}
	if contains(c.miss, "memory") {
		l.MemoryMiB = 0
	}
	if contains(c.miss, "io") {
		l.IOBps = 0
	}
	if contains(c.miss, "pids") {
		l.Pids = 0
	}
	return l
}

type groupV2 struct {
	m    *cgroup2.Manager
	dir  string
	path string
}

func (g *groupV2) JoinFiles() []string      { return nil }
func (g *groupV2) Dir() string              { return g.dir }
func (g *groupV2) Paths() map[string]string { return map[string]string{"": g.path} }

func (g *groupV2) Signal(sig syscall.Signal) error {
	pids, err := readPids(filepath.Join(g.dir, "cgroup.procs"))
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig) // ESRCH: it ended meanwhile
	}
	return err
}

// Kill uses cgroup.kill (Linux 5.14+); the library falls back to freezing
// and signalling every pid on older kernels.
func (g *groupV2) Kill() error { return g.m.Kill() }

func (g *groupV2) OOMKilled() bool {
	b, err := os.ReadFile(filepath.Join(g.dir, "memory.events"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strings.TrimSpace(n) != "0"
		}
	}
	return false
}

func (g *groupV2) Delete() error {
	procs := filepath.Join(g.dir, "cgroup.procs")
	if !waitEmpty(procs, 2e9) {
		_ = g.Kill() // the delete below fails if processes are left
		waitEmpty(procs, 2e9)
	}
	return g.m.Delete()
}

func (c cgroupsV2) Prune(dir string) {
	_ = syscall.Rmdir(filepath.Join(c.top(), dir)) // not empty or gone: both fine
}

func (c cgroupsV2) PruneBelow(parent string) { pruneBelow(filepath.Join(c.top(), parent)) }

// Recycle: cgroup v2 renames no cgroup (and makes one with one mkdir).
func (c cgroupsV2) Recycle(string) error { return errors.New("cgroup v2 renames no cgroup") }

func (c cgroupsV2) Reuse(string) {}

// pruneBelow removes each empty cgroup folder just below dir, with its
// Spare.
func pruneBelow(dir string) {
	entries, _ := os.ReadDir(dir) // gone or unreadable: nothing to prune
	for _, e := range entries {
		if e.IsDir() {
			_ = syscall.Rmdir(filepath.Join(dir, e.Name(), Spare)) // gone: fine
			_ = syscall.Rmdir(filepath.Join(dir, e.Name()))        // not empty or gone: both fine
		}
	}
}

// Clean kills every process below parent and removes its cgroups.
func (c cgroupsV2) Clean(parent string) error {
	dir := filepath.Join(c.top(), parent)
	// Empty, as at a run's end (each shim removed its step's group): the
	// rmdir is the whole job, without the walks below.
	if err := syscall.Rmdir(dir); err == nil || err == syscall.ENOENT {
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	// Best effort (cgroup.kill needs Linux 5.14): killTree signals what is left.
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.WriteFile(filepath.Join(p, "cgroup.kill"), []byte("1"), 0)
		}
		return nil
	})
	killTree(dir)
	waitTreeEmpty(dir)
	return removeTree(dir)
}

// swapAccounted says whether the kernel accounts swap per cgroup here: the
// daemon's base cgroup has memory.swap.max (the root cgroup has none, so
// there any child that has one answers).
func (c cgroupsV2) swapAccounted() bool {
	if c.base != "/" && c.base != "" {
		return fileExists(filepath.Join(c.mount, c.base, "memory.swap.max"))
	}
	found, err := filepath.Glob(filepath.Join(c.mount, "*", "memory.swap.max"))
	return err == nil && len(found) > 0
}
