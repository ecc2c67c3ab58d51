package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup2"
)

type cgroupsV2 struct{ mount string }

func newV2(mount string) (Cgroups, error) {
	b, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCgroups, err)
	}
	have := strings.Fields(string(b))
	for _, want := range []string{"cpu", "memory", "pids", "io"} {
		if !contains(have, want) {
			return nil, fmt.Errorf("%w: cgroup v2 at %s lacks the %s controller", ErrNoCgroups, mount, want)
		}
	}
	if err := syscall.Access(mount, 2 /* W_OK */); err != nil {
		return nil, fmt.Errorf("%w: %s is not writable: %v", ErrNoCgroups, mount, err)
	}
	return cgroupsV2{mount: mount}, nil
}

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
	res, err := v2Resources(l)
	if err != nil {
		return nil, err
	}
	path := "/" + strings.Trim(rel, "/")
	m, err := cgroup2.NewManager(c.mount, path, res)
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", path, err)
	}
	return &groupV2{m: m, dir: filepath.Join(c.mount, path), path: path}, nil
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
		syscall.Kill(pid, sig)
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
		g.Kill()
		waitEmpty(procs, 2e9)
	}
	return g.m.Delete()
}

// Clean kills every process below parent and removes its cgroups.
func (c cgroupsV2) Prune(dir string) { syscall.Rmdir(filepath.Join(c.mount, dir)) }

func (c cgroupsV2) Clean(parent string) error {
	dir := filepath.Join(c.mount, parent)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.WriteFile(filepath.Join(p, "cgroup.kill"), []byte("1"), 0)
		}
		return nil
	})
	killTree(dir)
	waitTreeEmpty(dir)
	return removeTree(dir)
}
