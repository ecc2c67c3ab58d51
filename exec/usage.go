package exec

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// Usage is what one step used, read from its cgroup when it ended (before
// the cgroup is removed). A nil field is unknown: no cgroup (a daemon
// without root and without delegation), a controller jobfs does not have,
// or a kernel without that counter. Never 0 for "not measured".
type Usage struct {
	CPUNanos   *uint64 // user+system CPU time
	MemoryPeak *uint64 // bytes: v1 memory.max_usage_in_bytes, v2 memory.peak
	IORead     *uint64 // bytes read from block devices
	IOWrite    *uint64 // bytes written to block devices (v1: direct and synced writes only)
	PidsPeak   *uint64 // most processes and threads at once
}

// emptyWithin bounds the wait for a step's last processes to leave its
// cgroup before its counters are read: a dying process still charges CPU.
const emptyWithin = 2 * time.Second

// Usage reads the step's counters once its processes are gone.
func (g *groupV1) Usage() Usage {
	waitEmpty(g.procsFile(), emptyWithin)
	return g.Counters()
}

// Counters reads the counters as they are.
func (g *groupV1) Counters() Usage {
	var u Usage
	if g.c.has(cgroup1.Cpuacct) {
		u.CPUNanos = readUint(filepath.Join(g.dir(cgroup1.Cpuacct), "cpuacct.usage"))
	}
	if g.c.has(cgroup1.Memory) {
		u.MemoryPeak = readUint(filepath.Join(g.dir(cgroup1.Memory), "memory.max_usage_in_bytes"))
	}
	if g.c.has(cgroup1.Blkio) {
		u.IORead, u.IOWrite = readBlkioV1(filepath.Join(g.dir(cgroup1.Blkio), "blkio.throttle.io_service_bytes"))
	}
	if g.c.has(cgroup1.Pids) {
		// pids.peak came to v1 with Linux 6.13; older kernels keep no peak.
		u.PidsPeak = readUint(filepath.Join(g.dir(cgroup1.Pids), "pids.peak"))
	}
	return u
}

// Usage reads the step's counters once its processes are gone. A
// controller the subtree lacks has no file, so its fields stay unknown.
func (g *groupV2) Usage() Usage {
	waitEmpty(filepath.Join(g.dir, "cgroup.procs"), emptyWithin)
	return g.Counters()
}

// Counters reads the counters as they are.
func (g *groupV2) Counters() Usage {
	var u Usage
	// cpu.stat's usage_usec is there even without the cpu controller.
	if us := readKey(filepath.Join(g.dir, "cpu.stat"), "usage_usec"); us != nil {
		ns := *us * 1000
		u.CPUNanos = &ns
	}
	u.MemoryPeak = readUint(filepath.Join(g.dir, "memory.peak")) // Linux 5.19+
	u.IORead, u.IOWrite = readIOStatV2(filepath.Join(g.dir, "io.stat"))
	u.PidsPeak = readUint(filepath.Join(g.dir, "pids.peak")) // Linux 6.1+
	return u
}

// readUint reads a file holding one unsigned number; nil if it cannot.
func readUint(file string) *uint64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// readKey reads the value of key in a flat-keyed file ("key value" lines).
func readKey(file, key string) *uint64 {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				return &n
			}
		}
	}
	return nil
}

// readBlkioV1 sums the Read and Write lines of a v1 io_service_bytes file
// ("8:0 Read 4096") over its devices. An empty file (no I/O yet) is 0 of
// each: the counter exists.
func readBlkioV1(file string) (read, write *uint64) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil
	}
	var r, w uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			r += n
		case "Write":
			w += n
		}
	}
	return &r, &w
}

// readIOStatV2 sums rbytes and wbytes of a v2 io.stat file ("8:0 rbytes=4096
// wbytes=0 ...") over its devices; nil without the io controller.
func readIOStatV2(file string) (read, write *uint64) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil
	}
	var r, w uint64
	for _, line := range strings.Split(string(b), "\n") {
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				r += n
			case "wbytes":
				w += n
			}
		}
	}
	return &r, &w
}
