package jobs

import (
	"context"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkTriggerToCompleted measures a trigger of a `#!/bin/sh` script
// that does nothing, from Trigger to the durable COMPLETED record, against
// a bare fork/exec of the same script in the same run (reported as ratio).
func BenchmarkTriggerToCompleted(b *testing.B) {
	dir := b.TempDir()
	m, err := New(Options{StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	j, err := m.CreateJob(0, "bench")
	if err != nil {
		b.Fatal(err)
	}
	benchMust(b, m.WriteSetting(j.ID, "config/type", "script"))
	benchMust(b, m.WriteSetting(j.ID, "config/script", "#!/bin/sh\n"))
	script := filepath.Join(dir, "true.sh")
	benchMust(b, osWriteExec(script, "#!/bin/sh\n"))

	var base []time.Duration
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		benchMust(b, osexec.Command(script).Run())
		base = append(base, time.Since(t0))
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		id, err := m.Trigger(j.ID, []byte("{}"), Manual)
		if err != nil {
			b.Fatal(err)
		}
		r, err := m.Wait(context.Background(), j.ID, id)
		if err != nil || r.Status != Completed {
			b.Fatalf("run %d: %v %v", id, r.Status, err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	p50, p99 := benchPct(lat, 50), benchPct(lat, 99)
	b.ReportMetric(float64(p50.Microseconds()), "p50-us")
	b.ReportMetric(float64(p99.Microseconds()), "p99-us")
	b.ReportMetric(float64(p50)/float64(benchPct(base, 50)), "p50/forkexec")
}

func benchPct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

func benchMust(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
