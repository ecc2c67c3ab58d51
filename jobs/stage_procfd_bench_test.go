package jobs

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkProcWriters is what a close(2) of data costs the daemon (CPU) to find
// out whether another process still holds the file: one scan of every
// process's descriptors, against the floor of listing /proc alone, and the
// scan of only the processes made since the file's open.
func BenchmarkProcWriters(b *testing.B) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Skip("no /proc")
	}
	procs := 0
	for _, e := range ents {
		if isPID(e.Name()) {
			procs++
		}
	}
	match := func(string) bool { return false }
	inos := map[uint64]bool{1: true}
	// CPU time, not wall time: what a scan costs the machine, the same on a
	// loaded one.
	cpu := func() time.Duration {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	began := cpu()
	for i := 0; i < b.N; i++ {
		if _, complete := ProcWriters(inos, match); !complete {
			b.Fatal("scan did not end")
		}
	}
	scan := (cpu() - began) / time.Duration(b.N)
	began = cpu()
	for i := 0; i < b.N; i++ {
		if _, err := os.ReadDir("/proc"); err != nil {
			b.Fatal(err)
		}
	}
	list := (cpu() - began) / time.Duration(b.N)
	// The scan of a data file's close (ProcWritersSince) with the mark its
	// open reads: the processes made since, here none but the runtime's.
	began = cpu()
	for i := 0; i < b.N; i++ {
		if _, complete := ProcWritersSince(inos, match, MarkPids(), nil); !complete {
			b.Fatal("scan did not end")
		}
	}
	since := (cpu() - began) / time.Duration(b.N)
	b.ReportMetric(float64(scan.Microseconds()), "cpu-us@jobfs")
	b.ReportMetric(float64(since.Microseconds()), "cpu-us-since-open")
	b.ReportMetric(float64(list.Microseconds()), "cpu-us@readdir-proc")
	b.ReportMetric(float64(scan)/float64(list), "ratio-cpu-us@readdir-proc")
	b.ReportMetric(float64(procs), "processes")
}
