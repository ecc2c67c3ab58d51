package exec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// TestUsageFiles: the counter files of both cgroup versions are read as
// the kernel writes them; a missing file is unknown (nil), an empty I/O
// file is 0 (the counter is there, nothing was read or written).
func TestUsageFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if v := readUint(write("memory.peak", "209977344\n")); v == nil || *v != 209977344 {
		t.Errorf("memory.peak: %v", v)
	}
	if v := readUint(filepath.Join(dir, "none")); v != nil {
		t.Errorf("a missing file read as %d", *v)
	}
	if v := readUint(write("pids.peak", "max\n")); v != nil {
		t.Errorf("a word read as %d", *v)
	}
	if v := readKey(write("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"), "usage_usec"); v == nil || *v != 1500 {
		t.Errorf("cpu.stat usage_usec: %v", v)
	}
	r, w := readBlkioV1(write("blkio", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n8:16 Read 1\nTotal 12289\n"))
	if r == nil || w == nil || *r != 4097 || *w != 8192 {
		t.Errorf("v1 io_service_bytes: read %v write %v, want 4097 and 8192", r, w)
	}
	r, w = readBlkioV1(write("blkio-empty", "Total 0\n"))
	if r == nil || w == nil || *r != 0 || *w != 0 {
		t.Errorf("v1 io_service_bytes without I/O: %v %v, want 0 and 0", r, w)
	}
	r, w = readIOStatV2(write("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n"))
	if r == nil || w == nil || *r != 101 || *w != 202 {
		t.Errorf("v2 io.stat: read %v write %v, want 101 and 202", r, w)
	}
	if r, w = readIOStatV2(filepath.Join(dir, "no-io.stat")); r != nil || w != nil {
		t.Error("no io.stat (no io controller) read as known")
	}
}

// TestGroupUsage: each version's Usage reads its step's folder (a fake
// tree here: this host's v2 hierarchy is empty); v1 without pids.peak (a
// kernel before 6.13) leaves pids_peak unknown.
func TestGroupUsage(t *testing.T) {
	put := func(dir, name, text string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2 := t.TempDir()
	put(v2, "cgroup.procs", "")
	put(v2, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n")
	put(v2, "memory.peak", "314572800\n")
	put(v2, "io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n")
	put(v2, "pids.peak", "7\n")
	u := (&groupV2{dir: v2}).Usage()
	if u.CPUNanos == nil || *u.CPUNanos != 2_500_000_000 || u.MemoryPeak == nil || *u.MemoryPeak != 314572800 ||
		u.IORead == nil || *u.IORead != 4096 || u.IOWrite == nil || *u.IOWrite != 8192 || u.PidsPeak == nil || *u.PidsPeak != 7 {
		t.Errorf("v2 usage: %+v", u)
	}

	root := t.TempDir()
	c := cgroupsV1{root: root, have: v1Controllers, base: map[cgroup1.Name]string{}}
	g := &groupV1{c: c, paths: map[cgroup1.Name]string{}}
	for _, n := range v1Controllers {
		c.base[n] = "/"
		g.paths[n] = "/jobfs/step"
	}
	put(g.dir(cgroup1.Pids), "cgroup.procs", "")
	put(g.dir(cgroup1.Cpuacct), "cpuacct.usage", "1234567\n")
	put(g.dir(cgroup1.Memory), "memory.max_usage_in_bytes", "209715200\n")
	put(g.dir(cgroup1.Blkio), "blkio.throttle.io_service_bytes", "Total 0\n")
	u = g.Usage()
	if u.CPUNanos == nil || *u.CPUNanos != 1234567 || u.MemoryPeak == nil || *u.MemoryPeak != 209715200 ||
		u.IORead == nil || *u.IORead != 0 || u.IOWrite == nil || *u.IOWrite != 0 || u.PidsPeak != nil {
		t.Errorf("v1 usage: %+v", u)
	}
}
