package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Controllers are the v1 controllers a step's cgroup is made in. cpuacct
// gives the CPU usage counter; freezer makes Kill race-free.
var v1Controllers = []cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory, cgroup1.Pids, cgroup1.Blkio, cgroup1.Freezer}

const v1Root = "/sys/fs/cgroup"

type cgroupsV1 struct{}

func newV1() (Cgroups, error) {
	for _, c := range v1Controllers {
		dir := filepath.Join(v1Root, string(c))
		if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
			return nil, fmt.Errorf("%w: cgroup v1 controller %s at %s: %v", ErrNoCgroups, c, dir, err)
		}
	}
	return cgroupsV1{}, nil
}

func (cgroupsV1) Version() int { return 1 }

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

func (cgroupsV1) Create(rel string, l Limits) (Group, error) {
	res, err := v1Resources(l)
	if err != nil {
		return nil, err
	}
	path := "/" + strings.Trim(rel, "/")
	cg, err := cgroup1.New(cgroup1.StaticPath(path), res, cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", path, err)
	}
	g := &groupV1{cg: cg, path: path}
	if err := g.verify(l); err != nil {
		g.Delete()
		return nil, err
	}
	return g, nil
}

type groupV1 struct {
	cg   cgroup1.Cgroup
	path string
}

func (g *groupV1) dir(c cgroup1.Name) string { return filepath.Join(v1Root, string(c), g.path) }

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
	if l.MemoryMiB > 0 {
		if err := check(cgroup1.Memory, "memory.limit_in_bytes", l.MemoryMiB<<20); err != nil {
			return err
		}
	}
	if l.CPUPercent > 0 {
		if err := check(cgroup1.Cpu, "cpu.cfs_quota_us", l.CPUPercent*1000); err != nil {
			return err
		}
	}
	return nil
}

func (g *groupV1) JoinFiles() []string {
	var out []string
	for _, c := range v1Controllers {
		out = append(out, filepath.Join(g.dir(c), "cgroup.procs"))
	}
	return out
}

func (g *groupV1) Dir() string { return g.dir(cgroup1.Memory) }

func (g *groupV1) Paths() map[string]string {
	out := map[string]string{}
	for _, c := range v1Controllers {
		out[string(c)] = g.path
	}
	return out
}

func (g *groupV1) procs() []int {
	pids, _ := readPids(filepath.Join(g.dir(cgroup1.Pids), "cgroup.procs"))
	return pids
}

func (g *groupV1) Signal(sig syscall.Signal) error {
	for _, pid := range g.procs() {
		syscall.Kill(pid, sig)
	}
	return nil
}

func (g *groupV1) Kill() error {
	if len(g.procs()) == 0 { // nothing to freeze: the usual end of a step
		return nil
	}
	if err := g.cg.Freeze(); err != nil {
		g.Signal(syscall.SIGKILL)
		return fmt.Errorf("freeze %s: %w", g.path, err)
	}
	g.Signal(syscall.SIGKILL)
	return g.cg.Thaw()
}

func (g *groupV1) OOMKilled() bool {
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
	if !waitEmpty(filepath.Join(g.dir(cgroup1.Pids), "cgroup.procs"), 2e9) {
		g.Kill()
		waitEmpty(filepath.Join(g.dir(cgroup1.Pids), "cgroup.procs"), 2e9)
	}
	return g.cg.Delete()
}

func (cgroupsV1) Prune(dir string) {
	for _, c := range v1Controllers {
		syscall.Rmdir(filepath.Join(v1Root, string(c), dir))
	}
}

// Clean removes what a crashed daemon left below parent in every v1
// controller: processes are killed, folders removed.
func (cgroupsV1) Clean(parent string) error {
	// A crash may have left a group frozen, where SIGKILL waits: thaw first.
	filepath.WalkDir(filepath.Join(v1Root, string(cgroup1.Freezer), parent), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.WriteFile(filepath.Join(p, "freezer.state"), []byte("THAWED"), 0)
		}
		return nil
	})
	var firstErr error
	for _, c := range v1Controllers {
		dir := filepath.Join(v1Root, string(c), parent)
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

// killTree SIGKILLs every process listed below dir.
func killTree(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
			pids, _ := readPids(p)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}

// waitTreeEmpty waits briefly until no cgroup below dir lists a process.
func waitTreeEmpty(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
			waitEmpty(p, 2e9)
		}
		return nil
	})
}
