package scheduler

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// firing is one call of fire: the job, its tick and when fire was called,
// both as offsets from the start of the test's bubble.
type firing struct {
	job        string
	tick, when time.Duration
}

func (f firing) String() string { return fmt.Sprintf("%s@%v(at %v)", f.job, f.tick, f.when) }

// recorder collects fire calls; hook, if set, runs inside fire.
type recorder struct {
	start time.Time
	hook  func(job string, tick time.Time)

	mu  sync.Mutex
	got []firing
}

func (r *recorder) fire(job string, tick time.Time) {
	r.mu.Lock()
	r.got = append(r.got, firing{job, tick.Sub(r.start), time.Since(r.start)})
	r.mu.Unlock()
	if r.hook != nil {
		r.hook(job, tick)
	}
}

func (r *recorder) firings() []firing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// bubble runs f inside a synctest bubble with a started Scheduler, and waits
// for Run to return when f is done.
func bubble(t *testing.T, f func(t *testing.T, s *Scheduler, r *recorder)) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{start: time.Now()}
		s := New(r.fire)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		f(t, s, r)
		cancel()
		<-done // a deadlock panic if Run does not return
	})
}

// sleep advances the bubble's clock by d and lets Run catch up.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func secs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

// checkOnTime checks that every firing happened at its tick.
func checkOnTime(t *testing.T, got []firing) {
	t.Helper()
	for _, f := range got {
		if f.when != f.tick {
			t.Errorf("%v fired late", f)
		}
	}
}

func ticksOf(got []firing) []time.Duration {
	var out []time.Duration
	for _, f := range got {
		out = append(out, f.tick)
	}
	return out
}

func TestEverySecond(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		s.Set("a", mustParse(t, "@every 1s"))
		sleep(10*time.Second + 500*time.Millisecond)
		got := r.firings()
		if want := secs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10); !slices.Equal(ticksOf(got), want) {
			t.Errorf("ticks %v, want %v", got, want)
		}
		checkOnTime(t, got)
		if next, ok := s.Next("a"); !ok || next.Sub(r.start) != 11*time.Second {
			t.Errorf("Next = %v, %v; want start+11s", next, ok)
		}
	})
}

// TestLead: with a lead, each tick fires that long before it, once, with
// the tick itself; Next, asked from fire, is the tick after.
func TestLead(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		const lead = 150 * time.Millisecond
		s.SetLead(lead)
		var mu sync.Mutex
		var next []time.Duration
		r.hook = func(job string, _ time.Time) {
			n, _ := s.Next(job)
			mu.Lock()
			next = append(next, n.Sub(r.start))
			mu.Unlock()
		}
		s.Set("a", mustParse(t, "@every 1s"))
		sleep(5*time.Second + 500*time.Millisecond)
		got := r.firings()
		if want := secs(1, 2, 3, 4, 5); !slices.Equal(ticksOf(got), want) {
			t.Errorf("ticks %v, want %v", got, want)
		}
		for _, f := range got {
			if f.when != f.tick-lead {
				t.Errorf("%v fired at %v, want %v before its tick", f, f.when, lead)
			}
		}
		mu.Lock()
		if want := secs(2, 3, 4, 5, 6); !slices.Equal(next, want) {
			t.Errorf("Next from fire %v, want %v", next, want)
		}
		mu.Unlock()
		sleep(500*time.Millisecond - lead + time.Millisecond) // 5.851 s: tick 6 fired ahead, not come
		if n, ok := s.Next("a"); !ok || n.Sub(r.start) != 6*time.Second {
			t.Errorf("Next between a tick's firing and the tick = %v, want start+6s (the tick to come)", n.Sub(r.start))
		}
		sleep(lead)
		if n, ok := s.Next("a"); !ok || n.Sub(r.start) != 7*time.Second {
			t.Errorf("Next after the tick = %v, want start+7s", n.Sub(r.start))
		}
	})
}

func TestTwoJobsInterleave(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		s.Set("b", mustParse(t, "*/3 * * * *"))
		s.Set("a", mustParse(t, "*/2 * * * *"))
		sleep(12*time.Minute + 30*time.Second)
		got := r.firings()
		var order []string
		for _, f := range got {
			order = append(order, fmt.Sprintf("%s%d", f.job, f.tick/time.Minute))
		}
		want := []string{"a2", "b3", "a4", "a6", "b6", "a8", "b9", "a10", "a12", "b12"}
		if !slices.Equal(order, want) {
			t.Errorf("order %v, want %v", order, want)
		}
		checkOnTime(t, got)
	})
}

func TestSetReplaces(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		s.Set("a", mustParse(t, "@hourly"))
		sleep(10 * time.Second)
		s.Set("a", mustParse(t, "@every 1s")) // re-arms: the hour no longer counts
		sleep(3*time.Second + 500*time.Millisecond)
		if want := secs(11, 12, 13); !slices.Equal(ticksOf(r.firings()), want) {
			t.Fatalf("after Set @every 1s: %v, want ticks %v", r.firings(), want)
		}
		s.Set("a", mustParse(t, "@every 1h")) // and back: no more 1s ticks
		sleep(time.Minute)
		if n := len(r.firings()); n != 3 {
			t.Errorf("after Set @every 1h: %v", r.firings())
		}
		// @every counts from the Set, at 13.5s, on whole seconds.
		if next, _ := s.Next("a"); next.Sub(r.start) != time.Hour+13*time.Second {
			t.Errorf("Next = start+%v", next.Sub(r.start))
		}
		checkOnTime(t, r.firings())
	})
}

func TestRemoveStops(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		s.Set("a", mustParse(t, "@every 1s"))
		s.Set("b", mustParse(t, "@every 2s"))
		sleep(3*time.Second + 500*time.Millisecond)
		s.Remove("a")
		s.Remove("a")       // twice is fine
		s.Remove("unknown") // so is a job never set
		if _, ok := s.Next("a"); ok {
			t.Error("Next(a) after Remove: ok")
		}
		sleep(10 * time.Second)
		var a, b int
		for _, f := range r.firings() {
			if f.job == "a" {
				a++
			} else {
				b++
			}
		}
		if a != 3 || b != 6 {
			t.Errorf("a fired %d times (want 3), b %d (want 6): %v", a, b, r.firings())
		}
		s.Set("b", Spec{}) // a zero Spec removes too
		sleep(10 * time.Second)
		if n := len(r.firings()); n != 9 {
			t.Errorf("after Set(b, Spec{}): %v", r.firings())
		}
	})
}

func TestSlowFireNoBurst(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		r.hook = func(job string, tick time.Time) {
			if job == "a" && tick.Sub(r.start) == time.Second {
				time.Sleep(5 * time.Second) // a's first fire blocks 5 s
			}
		}
		s.Set("a", mustParse(t, "@every 1s"))
		s.Set("b", mustParse(t, "@every 1s"))
		sleep(10*time.Second + 500*time.Millisecond)
		got := r.firings()
		// a blocks 1s..6s; b's tick at 1s waits for it, fires once at 6s;
		// then both tick each second from when their fire returned.
		want := []firing{
			{"a", 1 * time.Second, 1 * time.Second},
			{"b", 1 * time.Second, 6 * time.Second},
			{"a", 7 * time.Second, 7 * time.Second},
			{"b", 7 * time.Second, 7 * time.Second},
			{"a", 8 * time.Second, 8 * time.Second},
			{"b", 8 * time.Second, 8 * time.Second},
			{"a", 9 * time.Second, 9 * time.Second},
			{"b", 9 * time.Second, 9 * time.Second},
			{"a", 10 * time.Second, 10 * time.Second},
			{"b", 10 * time.Second, 10 * time.Second},
		}
		if !slices.Equal(got, want) {
			t.Errorf("firings\n got %v\nwant %v", got, want)
		}
	})
}

func TestFireMayCallScheduler(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		var nexts []time.Duration
		r.hook = func(job string, tick time.Time) {
			next, ok := s.Next(job) // the job being fired: what follows if fire returned now
			if !ok {
				t.Errorf("Next(%s) inside fire: none", job)
			}
			nexts = append(nexts, next.Sub(r.start))
			switch job {
			case "once":
				s.Remove(job)
			case "twice":
				s.Set(job, mustParse(t, "@every 3s")) // wins over rearming the old schedule
			}
		}
		s.Set("once", mustParse(t, "@every 1s"))
		s.Set("twice", mustParse(t, "@every 2s"))
		sleep(6*time.Second + 500*time.Millisecond)
		got := r.firings()
		want := []firing{
			{"once", 1 * time.Second, 1 * time.Second},
			{"twice", 2 * time.Second, 2 * time.Second},
			{"twice", 5 * time.Second, 5 * time.Second},
		}
		if !slices.Equal(got, want) {
			t.Errorf("firings\n got %v\nwant %v", got, want)
		}
		if want := secs(2, 4, 8); !slices.Equal(nexts, want) {
			t.Errorf("Next inside fire: %v, want %v", nexts, want)
		}
	})
}

func TestSetBeforeRunFiresOnceLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{start: time.Now()}
		s := New(r.fire)
		s.Set("a", mustParse(t, "@every 1s"))
		time.Sleep(5*time.Second + 500*time.Millisecond) // Run not started: ticks pass
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go s.Run(ctx)
		sleep(2 * time.Second)
		want := []firing{
			{"a", 1 * time.Second, 5*time.Second + 500*time.Millisecond},
			{"a", 6 * time.Second, 6 * time.Second},
			{"a", 7 * time.Second, 7 * time.Second},
		}
		if got := r.firings(); !slices.Equal(got, want) {
			t.Errorf("firings\n got %v\nwant %v", got, want)
		}
	})
}

func TestRunReturnsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(func(string, time.Time) {})
		s.Set("a", mustParse(t, "@daily"))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		sleep(time.Hour)
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("Run still running after cancel")
		}
	})
}

func TestRunEmpty(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		sleep(24 * time.Hour) // nothing to fire: Run only wakes once a minute
		s.Set("a", mustParse(t, "@every 1s"))
		sleep(1500 * time.Millisecond)
		if got := r.firings(); len(got) != 1 || got[0].when != 24*time.Hour+time.Second {
			t.Errorf("firings %v", got)
		}
	})
}

func TestTenThousandJobs(t *testing.T) {
	bubble(t, func(t *testing.T, s *Scheduler, r *recorder) {
		goroutines := runtime.NumGoroutine()
		specs := []Spec{mustParse(t, "*/5 * * * *"), mustParse(t, "@every 7m"), mustParse(t, "TZ=Europe/Oslo 0 * * * *")}
		for i := range 10000 {
			s.Set(fmt.Sprintf("job%05d", i), specs[i%len(specs)])
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			t.Errorf("%d goroutines after 10,000 Set, %d before", n, goroutines)
		}
		sleep(time.Hour + 30*time.Second)
		got := r.firings()
		count := map[int]int{}
		for _, f := range got {
			var i int
			fmt.Sscanf(f.job, "job%d", &i)
			count[i%len(specs)]++
		}
		// per job in one hour: */5 -> 12, every 7m -> 8, hourly -> 1
		want := map[int]int{0: 3334 * 12, 1: 3333 * 8, 2: 3333 * 1}
		for k, w := range want {
			if count[k] != w {
				t.Errorf("schedule %d fired %d times, want %d", k, count[k], w)
			}
		}
		checkOnTime(t, got)
		if !slices.IsSortedFunc(got, func(a, b firing) int { return int(a.tick - b.tick) }) {
			t.Error("ticks fired out of order")
		}
	})
}

// BenchmarkSet10k sets 10,000 jobs on a running Scheduler.
func BenchmarkSet10k(b *testing.B) {
	specs := []Spec{mustParse(b, "*/5 * * * *"), mustParse(b, "@every 7m"), mustParse(b, "TZ=Europe/Oslo 30 2 * * *")}
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("job%05d", i)
	}
	for b.Loop() {
		s := New(func(string, time.Time) {})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		for i, id := range ids {
			s.Set(id, specs[i%len(specs)])
		}
		cancel()
		<-done
	}
}
