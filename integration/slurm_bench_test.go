package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobfs/jobfs/exec/slurm"
	"github.com/jobfs/jobfs/exec/slurm/slurmtest"
)

// Scales of BenchmarkCmpSlurm: latency samples, runs of the throughput
// round.
const (
	slurmBenchSamples = 10
	slurmBenchRuns    = 25
)

// BenchmarkCmpSlurm measures the Slurm backend against plain sbatch on the
// same single-node cluster in the same run: submit-to-start (from the
// write of data, or the sbatch call, to the first line of the step, which
// writes the time; p50 in ms) and runs/s (slurmBenchRuns trivial runs at
// once until all ended, as squeue or jobfs tells).
func BenchmarkCmpSlurm(b *testing.B) {
	c := slurmtest.Start(b)
	if err := os.Setenv("SLURM_CONF", c.Conf); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.Unsetenv("SLURM_CONF") }) // a benchmark's own setting
	sc := &slurm.Client{Env: c.Env()}
	d, _ := benchDaemon(b, "", "--slurm", "--max-active", "32")
	marks := b.TempDir()
	benchJob(b, d, "lat", "#!/bin/sh\ndate +%s.%N > \"$2/t\"\n", "config/backend", "slurm", "config/limits/memory", "100")
	benchJob(b, d, "many", "#!/bin/true\n", "config/backend", "slurm", "config/limits/memory", "100", "config/keep", "100000")
	var jobfsLat, plainLat []time.Duration
	var jobfsRate, plainRate []float64
	run := 0
	b.ResetTimer()
	for range b.N {
		for range slurmBenchSamples {
			run++
			t0 := time.Now()
			benchTrigger(b, d, "lat")
			benchCompleted(b, d, "lat", run)
			jobfsLat = append(jobfsLat, slurmBenchMark(b, filepath.Join(d.mnt, "lat", "runs", strconv.Itoa(run), "result")).Sub(t0))

			mark := filepath.Join(marks, strconv.Itoa(len(plainLat)))
			t0 = time.Now()
			if _, err := sc.Submit(context.Background(), slurm.Job{Script: []byte("#!/bin/sh\ndate +%s.%N > " + mark + "\n"), Output: "/dev/null", MemMiB: 100}); err != nil {
				b.Fatal(err)
			}
			plainLat = append(plainLat, slurmBenchWaitMark(b, mark).Sub(t0))
		}
		jobfsRound := func() {
			t0 := time.Now()
			for range slurmBenchRuns {
				benchTrigger(b, d, "many")
			}
			for id := 1; id <= slurmBenchRuns; id++ {
				benchCompleted(b, d, "many", len(jobfsRate)*slurmBenchRuns+id)
			}
			jobfsRate = append(jobfsRate, slurmBenchRuns/time.Since(t0).Seconds())
		}
		plainRound := func() {
			t0 := time.Now()
			var ids []string
			for range slurmBenchRuns {
				id, err := sc.Submit(context.Background(), slurm.Job{Script: []byte("#!/bin/true\n"), Output: "/dev/null", MemMiB: 100})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, id)
			}
			slurmBenchWaitEnded(b, sc, ids)
			plainRate = append(plainRate, slurmBenchRuns/time.Since(t0).Seconds())
		}
		// Slurm's pace drifts as its queue ages: each goes first in turn.
		if len(jobfsRate)%2 == 0 {
			plainRound()
			jobfsRound()
		} else {
			jobfsRound()
			plainRound()
		}
	}
	b.StopTimer()
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	benchReport(b, "ms-submit-to-start-p50", benchMS(benchPct(jobfsLat, 50)), benchBase{"sbatch", benchMS(benchPct(plainLat, 50))})
	benchReport(b, "runs/s", mean(jobfsRate), benchBase{"sbatch", mean(plainRate)})
}

// slurmBenchMark reads a time a step wrote (date +%s.%N).
func slurmBenchMark(b *testing.B, path string) time.Time {
	b.Helper()
	out, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	sec, frac, _ := strings.Cut(strings.TrimSpace(string(out)), ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	ns, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("%s holds %q, not a time", path, out)
	}
	return time.Unix(s, ns)
}

// slurmBenchWaitMark waits for a plain job's time file.
func slurmBenchWaitMark(b *testing.B, path string) time.Time {
	b.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if out, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(out), "\n") {
			return slurmBenchMark(b, path)
		}
	}
	b.Fatalf("%s not written within a minute", path)
	return time.Time{}
}

// slurmBenchWaitEnded polls squeue (as the daemon does, every 100 ms here)
// until every job ended.
func slurmBenchWaitEnded(b *testing.B, sc *slurm.Client, ids []string) {
	b.Helper()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got, err := sc.Query(context.Background(), ids)
		if err != nil {
			continue // slurmctld busy: ask again
		}
		ended := 0
		for _, id := range ids {
			if got[id].State.Terminal() {
				ended++
			}
		}
		if ended == len(ids) {
			return
		}
	}
	b.Fatalf("%d plain jobs not ended within 5 minutes", len(ids))
}
