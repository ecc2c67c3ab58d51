package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkStepStart: what isolation costs per step, from Run to the exit
// of a step that does nothing (#!/bin/true), at each level: a bare
// fork/exec; through a big init (this test binary re-executed, as jobfs
// does without jobfs-init); through jobfs-init (built here); with a cgroup
// of its own (as root); and with namespaces and a private root too.
// Reported as p50 ms and as a ratio to the bare fork/exec.
func BenchmarkStepStart(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	small := filepath.Join(b.TempDir(), "jobfs-init")
	if out, err := osexec.Command("go", "build", "-o", small, "../cmd/jobfs-init").CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/jobfs-init: %v\n%s", err, out)
	}
	var cg Cgroups
	if os.Geteuid() == 0 {
		cg, _ = DetectCgroups()
	}
	levels := []struct {
		name string
		iso  func(dir string) *Isolation
		root bool
	}{
		{"bare", func(string) *Isolation { return nil }, false},
		{"big-init", func(string) *Isolation {
			return &Isolation{Init: self, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
		}, false},
		{"jobfs-init", func(string) *Isolation {
			return &Isolation{Init: small, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
		}, false},
		{"cgroup", func(string) *Isolation {
			return &Isolation{Init: small, Cgroups: cg, Group: "jobfs-bench/step",
				Limits: Limits{CPUPercent: 100, MemoryMiB: 512, Pids: 512}, UID: 0, GID: 0}
		}, true},
		{"cgroup+namespaces", func(dir string) *Isolation {
			return &Isolation{Init: small, Cgroups: cg, Group: "jobfs-bench/step",
				Limits: Limits{CPUPercent: 100, MemoryMiB: 512, Pids: 512}, Namespaces: true,
				Input: filepath.Join(dir, "in"), Output: filepath.Join(dir, "out"), App: dir, UID: 0, GID: 0}
		}, true},
	}
	var bare time.Duration
	for _, l := range levels {
		b.Run(l.name, func(b *testing.B) {
			if l.root && cg == nil {
				b.Skip("needs root and a cgroup hierarchy")
			}
			if l.root {
				b.Cleanup(func() { cg.Clean("jobfs-bench") })
			}
			s := newStep(b, "#!/bin/true\n")
			for _, d := range []string{"in", "out"} {
				os.MkdirAll(filepath.Join(s.dir, d), 0o755)
			}
			var took []time.Duration
			for i := 0; i < b.N; i++ {
				sp := s.spec()
				sp.Isolation = l.iso(s.dir)
				t0 := time.Now()
				r := Run(context.Background(), sp)
				took = append(took, time.Since(t0))
				if r.Outcome != Exited || r.ExitCode != 0 {
					b.Fatalf("step: %+v; log: %s", r, s.readLog(b))
				}
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			p50 := took[len(took)/2]
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			if l.name == "bare" {
				bare = p50
			} else if bare > 0 {
				b.ReportMetric(float64(p50)/float64(bare), "x-bare")
			}
		})
	}
}
