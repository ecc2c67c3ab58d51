package exec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Controllers are the v1 controllers a step's cgroup is made in. cpuacct
// gives the CPU usage counter; freezer makes Kill race-free.
var v1Controllers = []cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory, cgroup1.Pids, cgroup1.Blkio, cgroup1.Freezer}

const v1Root = "/sys/fs/cgroup"

// cgroupsV1 makes step cgroups in the controllers it has, below each one's
// base: "/" for root, the daemon's own cgroup where an administrator handed
// it to a normal user (delegateV1). Limits of the controllers it lacks are
// not enforced (see Unenforced).
type cgroupsV1 struct {
	root string                  // folder of the controllers' mounts
	have []cgroup1.Name          // v1Controllers that are usable, in their order
	base map[cgroup1.Name]string // per controller in have
	miss []string
	why  string
}

func newV1(h cgroupHost) (Cgroups, error) {
	if h.uid == 0 {
		for _, c := range v1Controllers {
			dir := filepath.Join(h.root, string(c))
			if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
				return nil, fmt.Errorf("%w: cgroup v1 controller %s at %s: %v", ErrNoCgroups, c, dir, err)
			}
		}
	}
	names := make([]string, len(v1Controllers))
	for i, c := range v1Controllers {
		names[i] = string(c)
	}
	base, err := h.delegateV1(names)
	if err != nil {
		return nil, err
	}
	cg := cgroupsV1{root: h.root, base: map[cgroup1.Name]string{}}
	for _, c := range v1Controllers {
		if b, ok := base[string(c)]; ok {
			cg.have = append(cg.have, c)
			cg.base[c] = b
		} else {
			cg.miss = append(cg.miss, string(c))
		}
	}
	if len(cg.miss) > 0 {
		cg.why = fmt.Sprintf("the cgroup v1 controllers %s are not delegated to jobfs (its own cgroup there is not its user's)", strings.Join(cg.miss, ", "))
	}
	return cg, nil
}

func (cgroupsV1) Version() int { return 1 }

func (c cgroupsV1) missing() ([]string, string) { return c.miss, c.why }

// has reports whether the controller is usable.
func (c cgroupsV1) has(n cgroup1.Name) bool {
	for _, h := range c.have {
		if h == n {
			return true
		}
	}
	return false
}

// dir is the folder of rel in controller n.
func (c cgroupsV1) dir(n cgroup1.Name, rel ...string) string {
	return filepath.Join(append([]string{c.root, string(n), c.base[n]}, rel...)...)
}

// hierarchy is the library's hierarchy restricted to the usable controllers.
func (c cgroupsV1) hierarchy() ([]cgroup1.Subsystem, error) {
	all, err := v1Hierarchy()
	if err != nil {
		return nil, err
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		if c.has(s.Name()) {
			out = append(out, s)
		}
	}
	return out, nil
}

// warmCgroups does ahead what a step's first cgroup would do on its path:
// for v1, the library's read of mountinfo and probe of every controller
// (about a millisecond in a shim started ahead, before its spec).
func warmCgroups(cg Cgroups) {
	if _, ok := cg.(cgroupsV1); ok {
		_, _ = v1Hierarchy() // an error is met again, and reported, by Create
	}
}

// v1Hierarchy lists the controllers jobfs uses. cgroup1.Default reads
// mountinfo and probes every controller: once per daemon, not per step.
var v1Hierarchy = sync.OnceValues(findV1Hierarchy)

func findV1Hierarchy() ([]cgroup1.Subsystem, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, err
	}
	var out []cgroup1.Subsystem
	for _, s := range all {
		for _, want := range v1Controllers {
			if s.Name() == want {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// v1Resources translates limits into the v1 files: cpu.cfs_quota_us over a
// 100 ms period, memory.limit_in_bytes, pids.max, and blkio throttles on
// the step's disk (blkio v1 throttles direct and synced writes, not page
// cache writeback: a kernel limit of v1).
func v1Resources(l Limits) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if l.CPUPercent > 0 {
		period := uint64(100_000)
		quota := l.CPUPercent * 1000
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if l.MemoryMiB > 0 {
		limit := l.MemoryMiB << 20
		r.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	if l.Pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &l.Pids}
	}
	if l.IOBps > 0 {
		maj, min, err := splitDevice(l.Device)
		if err != nil {
			return nil, err
		}
		dev := specs.LinuxThrottleDevice{Rate: l.IOBps}
		dev.Major, dev.Minor = maj, min
		r.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:  []specs.LinuxThrottleDevice{dev},
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{dev},
		}
	}
	return r, nil
}

func (c cgroupsV1) Create(rel string, l Limits) (Group, error) {
	res, err := v1Resources(l)
	if err != nil {
		return nil, err
	}
	if res.Memory != nil && c.has(cgroup1.Memory) && fileExists(filepath.Join(c.root, string(cgroup1.Memory), c.base[cgroup1.Memory], "memory.memsw.limit_in_bytes")) {
		// Memory and swap together at the memory limit: no swap, so a step
		// over its limit is killed (and its log says out of memory) instead
		// of paging for minutes. Kernels without swap accounting lack the
		// file; there the machine's swap, if any, stays open to the step.
		res.Memory.Swap = res.Memory.Limit
	}
	g := c.group(rel)
	at := func(n cgroup1.Name) (string, error) { return g.paths[n], nil }
	cg, err := onceMoreIfGone(func() (cgroup1.Cgroup, error) { return cgroup1.New(at, res, cgroup1.WithHierarchy(c.hierarchy)) })
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", g.path, err)
	}
	g.cg = cg
	if err := g.verify(l); err != nil {
		_ = g.Delete() // nothing ran in it yet; the verify error is the one to report
		return nil, err
	}
	return g, nil
}

// group lays out the group at rel in every usable hierarchy, not yet made.
func (c cgroupsV1) group(rel string) *groupV1 {
	rel = "/" + strings.Trim(rel, "/")
	g := &groupV1{c: c, rel: rel, paths: map[cgroup1.Name]string{}}
	for _, n := range c.have {
		g.paths[n] = filepath.Join(c.base[n], rel)
	}
	g.path = g.paths[c.have[0]]
	return g
}

func (c cgroupsV1) mounts() []string {
	out := make([]string, 0, len(c.have))
	for _, n := range c.have {
		out = append(out, filepath.Join(c.root, string(n)))
	}
	return out
}

func (c cgroupsV1) plan(rel string) ([]string, map[string]string) {
	g := c.group(rel)
	return g.JoinFiles(), g.Paths()
}

type groupV1 struct {
	c     cgroupsV1
	cg    cgroup1.Cgroup
	rel   string                  // below the daemon's base, as Create was given it
	paths map[cgroup1.Name]string // per usable controller
	path  string                  // of the first, for messages
}

func (g *groupV1) dir(c cgroup1.Name) string { return filepath.Join(g.c.root, string(c), g.paths[c]) }

// procsFile is a cgroup.procs file listing every process of the group.
func (g *groupV1) procsFile() string {
	n := g.c.have[0]
	if g.c.has(cgroup1.Pids) {
		n = cgroup1.Pids
	}
	return filepath.Join(g.dir(n), "cgroup.procs")
}

// verify reads the limits back: a limit the kernel did not take fails the
// step instead of running it unlimited.
func (g *groupV1) verify(l Limits) error {
	check := func(c cgroup1.Name, file string, want int64) error {
		b, err := os.ReadFile(filepath.Join(g.dir(c), file))
		if err != nil {
			return fmt.Errorf("cgroup %s: read %s: %w", g.path, file, err)
		}
		got, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if got != want {
			return fmt.Errorf("cgroup %s: %s is %d, not %d: the limit was not applied", g.path, file, got, want)
		}
		return nil
	}
	if l.MemoryMiB > 0 && g.c.has(cgroup1.Memory) {
		if err := check(cgroup1.Memory, "memory.limit_in_bytes", l.MemoryMiB<<20); err != nil {
			return err
		}
	}
	if l.CPUPercent > 0 && g.c.has(cgroup1.Cpu) {
		if err := check(cgroup1.Cpu, "cpu.cfs_quota_us", l.CPUPercent*1000); err != nil {
			return err
		}
	}
	return nil
}

func (g *groupV1) JoinFiles() []string {
	var out []string
	for _, c := range g.c.have {
		out = append(out, filepath.Join(g.dir(c), "cgroup.procs"))
	}
	return out
}

func (g *groupV1) Dir() string { return filepath.Dir(g.procsFile()) }

func (g *groupV1) Paths() map[string]string {
	out := map[string]string{}
	for c, p := range g.paths {
		out[string(c)] = p
	}
	return out
}

func (g *groupV1) procs() []int {
	pids, _ := readPids(g.procsFile())
	return pids
}

func (g *groupV1) Signal(sig syscall.Signal) error {
	for _, pid := range g.procs() {
		_ = syscall.Kill(pid, sig) // ESRCH: it ended meanwhile
	}
	return nil
}

func (g *groupV1) Kill() error {
	if len(g.procs()) == 0 { // nothing to freeze: the usual end of a step
		return nil
	}
	if !g.c.has(cgroup1.Freezer) { // a delegated subtree without it: signal until empty
		for i := 0; i < 100 && len(g.procs()) > 0; i++ {
			_ = g.Signal(syscall.SIGKILL) // never fails: each pid is best effort
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	if err := g.cg.Freeze(); err != nil {
		_ = g.Signal(syscall.SIGKILL) // never fails; the freeze error is the one to report
		return fmt.Errorf("freeze %s: %w", g.path, err)
	}
	_ = g.Signal(syscall.SIGKILL) // never fails: each pid is best effort
	return g.cg.Thaw()
}

func (g *groupV1) OOMKilled() bool {
	if !g.c.has(cgroup1.Memory) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(g.dir(cgroup1.Memory), "memory.oom_control"))
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

func (g *groupV1) Delete() error {
	if !waitEmpty(g.procsFile(), 2e9) {
		_ = g.Kill() // the delete below fails if processes are left
		waitEmpty(g.procsFile(), 2e9)
	}
	// A step's group is a leaf, and empty now: one rmdir per hierarchy
	// removes it. The library's Delete walks each hierarchy's subtree for
	// processes and stats every file before removing (measured with perf:
	// 7% of all the CPU a run of /bin/true costs); it stays the fallback.
	if g.c.rmdirs(g.rel) == nil {
		return nil
	}
	return g.cg.Delete()
}

// rmdirs removes parent in every usable hierarchy, where it is an empty
// leaf (a folder already gone, as where two controllers share one, is
// fine); an error (a group or process left below it) leaves the rest.
func (c cgroupsV1) rmdirs(parent string) error {
	for _, n := range c.have {
		if err := syscall.Rmdir(c.dir(n, parent)); err != nil && err != syscall.ENOENT {
			return err
		}
	}
	return nil
}

func (c cgroupsV1) Prune(dir string) {
	for _, n := range c.have {
		_ = syscall.Rmdir(c.dir(n, dir, Spare)) // gone: fine
		_ = syscall.Rmdir(c.dir(n, dir))        // not empty or gone: both fine
	}
}

func (c cgroupsV1) PruneBelow(parent string) {
	for _, n := range c.have {
		pruneBelow(c.dir(n, parent))
	}
}

func (c cgroupsV1) Recycle(dir string) error {
	for _, n := range c.have {
		var st syscall.Stat_t
		if err := syscall.Stat(c.dir(n, dir), &st); err != nil {
			return err
		}
		if st.Nlink != 2 { // a folder's own . and its name in its parent: a step's folder is left
			return fmt.Errorf("%s: not empty", c.dir(n, dir))
		}
	}
	return c.renameAll(dir, path.Join(path.Dir(dir), Spare))
}

func (c cgroupsV1) Reuse(dir string) {
	_ = c.renameAll(path.Join(path.Dir(dir), Spare), dir) // no spare: the step's start makes dir
}

// renameAll renames from to to in every hierarchy, or in none: a rename
// that fails (from is gone, to is there: the kernel never replaces a
// cgroup) undoes the ones made; one that cannot be undone is removed
// (both are empty run folders, which a step's start makes again).
func (c cgroupsV1) renameAll(from, to string) error {
	for i, n := range c.have {
		if err := syscall.Rename(c.dir(n, from), c.dir(n, to)); err != nil {
			for _, m := range c.have[:i] {
				if syscall.Rename(c.dir(m, to), c.dir(m, from)) != nil {
					_ = syscall.Rmdir(c.dir(m, to)) // empty; gone is fine too
				}
			}
			return err
		}
	}
	return nil
}

// Clean removes what a crashed daemon left below parent in every v1
// controller: processes are killed, folders removed.
func (c cgroupsV1) Clean(parent string) error {
	// At a run's end its steps' groups are gone already (each shim removed
	// its own): then one rmdir per hierarchy is the whole job. The walk
	// below (thaw, kill, wait, remove, several reads of every folder) cost
	// the daemon 11% of its CPU on runs of /bin/true, measured with perf.
	if c.rmdirs(parent) == nil {
		return nil
	}
	// A crash may have left a group frozen, where SIGKILL waits: thaw first.
	// Best effort: a group left frozen fails the removal reported below.
	_ = filepath.WalkDir(c.dir(cgroup1.Freezer, parent), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && c.has(cgroup1.Freezer) {
			_ = os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0)
		}
		return nil
	})
	var firstErr error
	for _, n := range c.have {
		dir := c.dir(n, parent)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		killTree(dir)
		waitTreeEmpty(dir)
		if err := removeTree(dir); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	return firstErr
}

// killTree SIGKILLs every process listed below dir. Best effort: the
// callback never fails, and what is left fails the removal after it.
func killTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
			pids, _ := readPids(p)
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: it ended meanwhile
			}
		}
		return nil
	})
}

// waitTreeEmpty waits briefly until no cgroup below dir lists a process
// (the callback never fails).
func waitTreeEmpty(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
			waitEmpty(p, 2e9)
		}
		return nil
	})
}
