package jobs

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRunHooks measures what metrics and events add to one run's
// trigger path: the queued, started and ended hooks and the three commit
// timings, without a .jobfs/events reader and with one.
func BenchmarkRunHooks(b *testing.B) {
	m, err := New(Options{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() }) // a benchmark's state folder
	j, err := m.CreateJob(0, "bench")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	code := 0
	r := Run{ID: 1, Status: Completed, Trigger: Manual, Queued: now, StartedAt: now.Add(time.Millisecond), EndedAt: now.Add(5 * time.Millisecond), ExitCode: &code}
	hooks := func() {
		t0 := time.Now()
		m.metrics.observeCommit("queue", t0)
		m.onQueued(j.ID, r)
		m.metrics.observeCommit("start", t0)
		m.onStarted(j.ID, r)
		m.metrics.observeCommit("end", t0)
		m.onEnded(j.ID, r)
	}
	b.Run("no-reader", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			hooks()
		}
	})
	b.Run("one-reader", func(b *testing.B) {
		s := m.Subscribe(Caller{UID: 0}, true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := s.Next(ctx, m.Closing(), 1024); err != nil {
					return
				}
			}
		}()
		for i := 0; i < b.N; i++ {
			hooks()
		}
		b.StopTimer()
		cancel()
		<-done
		s.Close(m)
	})
}
