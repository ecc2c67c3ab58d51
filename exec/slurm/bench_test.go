package slurm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSubmitToStart measures plain sbatch from the call to Submit to
// the first line of the job's script (which writes the time), the number
// jobfs's Slurm backend is to be compared with.
func BenchmarkSubmitToStart(b *testing.B) {
	if cluster == nil {
		b.Skip(clusterSkip)
	}
	c := &Client{Env: cluster.Env()}
	dir := b.TempDir()
	var total time.Duration
	for i := range b.N {
		mark := filepath.Join(dir, strconv.Itoa(i))
		t0 := time.Now()
		if _, err := c.Submit(context.Background(), Job{Script: script("date +%s.%N > " + mark + ".tmp && mv " + mark + ".tmp " + mark), Output: "/dev/null"}); err != nil {
			b.Fatal(err)
		}
		started, err := waitMark(mark)
		if err != nil {
			b.Fatal(err)
		}
		total += started.Sub(t0)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
}

// waitMark waits for a job's time file and reads it.
func waitMark(path string) (time.Time, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			sec, frac, _ := strings.Cut(strings.TrimSpace(string(b)), ".")
			s, err1 := strconv.ParseInt(sec, 10, 64)
			ns, err2 := strconv.ParseInt(frac, 10, 64)
			if err1 != nil || err2 != nil {
				return time.Time{}, fmt.Errorf("time file %q", b)
			}
			return time.Unix(s, ns), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%s not written in a minute", path)
}

// BenchmarkThroughput submits 25 trivial jobs and waits until squeue shows
// them all ended: plain sbatch's jobs/s on this node.
func BenchmarkThroughput(b *testing.B) {
	if cluster == nil {
		b.Skip(clusterSkip)
	}
	c := &Client{Env: cluster.Env()}
	const n = 25
	var total, submitting time.Duration
	for range b.N {
		t0 := time.Now()
		ids := make([]string, 0, n)
		for range n {
			id, err := c.Submit(context.Background(), Job{Script: script("true"), Output: "/dev/null"})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
		}
		submitting += time.Since(t0)
		if err := waitAll(c, ids); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
	b.ReportMetric(float64(submitting.Milliseconds())/float64(n*b.N), "ms/sbatch")
}

// waitAll polls Query until every job has ended with COMPLETED.
func waitAll(c *Client, ids []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		got, err := c.Query(ctx, ids)
		if err != nil {
			return err
		}
		done := 0
		for _, id := range ids {
			switch s := got[id].State; {
			case s == Completed:
				done++
			case s.Terminal():
				return fmt.Errorf("job %s: %+v", id, got[id])
			}
		}
		if done == len(ids) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkQuery is one Query of a finished job: one squeue --json of every
// job slurmctld holds (what a backend's poll costs).
func BenchmarkQuery(b *testing.B) {
	if cluster == nil {
		b.Skip(clusterSkip)
	}
	c := &Client{Env: cluster.Env()}
	id, err := c.Submit(context.Background(), Job{Script: script("true"), Output: "/dev/null"})
	if err != nil {
		b.Fatal(err)
	}
	if err := waitAll(c, []string{id}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := c.Query(context.Background(), []string{id}); err != nil {
			b.Fatal(err)
		}
	}
}
