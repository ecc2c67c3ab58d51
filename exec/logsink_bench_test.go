package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkStepOutputThroughDaemon: a step writing 256 MiB to stdout,
// which reaches the log through the daemon (pipe, logSink, file, a notify
// per append), against the same command writing to a file itself (a
// redirect in sh), measured in the same run. MB/s is the daemon's path;
// direct-MB/s the redirect; daemon/direct their ratio (1 = no cost).
func BenchmarkStepOutputThroughDaemon(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		b.Fatal(err)
	}
	through := logsBenchScript(b, dir, "through", fmt.Sprintf("#!/bin/sh\nexec head -c %d /dev/zero\n", size))
	direct := logsBenchScript(b, dir, "direct", fmt.Sprintf("#!/bin/sh\nexec head -c %d /dev/zero > \"$2/direct.out\"\n", size))
	var appends atomic.Int64

	// run runs one step to its end and returns how long it took and the
	// size of what it left (the log, or the file it wrote).
	run := func(path, result string) (time.Duration, int64) {
		log := filepath.Join(dir, "log")
		os.Remove(log)
		os.Remove(filepath.Join(out, "direct.out"))
		start := time.Now()
		res := Run(context.Background(), Spec{
			Path:    path,
			Args:    []string{dir, out},
			Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", marker},
			Dir:     dir,
			LogPath: log,
			MaxLog:  1 << 30, // the daemon's default
			Notify:  func() { appends.Add(1) },
			Grace:   time.Second,
		})
		took := time.Since(start)
		if res.Outcome != Exited || res.ExitCode != 0 || res.Err != nil {
			b.Fatalf("%s: outcome %v, exit %d, %v", path, res.Outcome, res.ExitCode, res.Err)
		}
		st, err := os.Stat(filepath.Join(dir, result))
		if err != nil {
			b.Fatal(err)
		}
		return took, st.Size()
	}

	var tThrough, tDirect time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		took, n := run(through, "log")
		tThrough += took
		b.StopTimer()
		if n != size {
			b.Fatalf("the log holds %d bytes, want %d", n, size)
		}
		took, n = run(direct, "out/direct.out")
		tDirect += took
		if n != size {
			b.Fatalf("the redirect wrote %d bytes, want %d", n, size)
		}
		b.StartTimer()
	}
	b.StopTimer()
	mbs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbs(tDirect), "direct-MB/s")
	b.ReportMetric(mbs(tThrough)/mbs(tDirect), "daemon/direct")
	b.ReportMetric(float64(size)*float64(b.N)/float64(max(appends.Load(), 1)), "B/append")
	os.Remove(filepath.Join(dir, "log"))
	os.Remove(filepath.Join(out, "direct.out"))
}

// logsBenchScript writes an executable script into dir.
func logsBenchScript(b *testing.B, dir, name, script string) string {
	b.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return p
}
