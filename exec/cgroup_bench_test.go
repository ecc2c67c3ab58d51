package exec

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkCgroupCreate: a step's cgroup made with the limits every step
// gets by default and removed, as a pooled shim does for each step (the
// job's and run's folders made too, as for a job's first run). As root.
// On a 2-core VM with v1 controllers: 1.45 ms, 94% of it in the kernel's
// mkdir and rmdir of cgroups (a fast path by bare system calls, tried,
// saved nothing measurable: the library's stats are cheap beside them).
func BenchmarkCgroupCreate(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	cg, err := DetectCgroups()
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = cg.Clean("jobfs-bench-cg") })
	l := Limits{CPUPercent: 100, MemoryMiB: 512, Pids: 512}
	for i := 0; i < b.N; i++ {
		g, err := cg.Create(fmt.Sprintf("jobfs-bench-cg/job/%d/step", i), l)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Delete(); err != nil {
			b.Fatal(err)
		}
		if err := cg.Clean(fmt.Sprintf("jobfs-bench-cg/job/%d", i)); err != nil {
			b.Fatal(err)
		}
		cg.Prune("jobfs-bench-cg/job")
	}
}
