package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShimPool: steps handed to shims started ahead run as under a shim of
// their own: masked log, run log with its prefix, exit code, exit.json;
// the pool refills, and Close ends its idle shims.
func TestShimPool(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pool := NewShimPool(bin, 2)
	closed := false
	defer func() {
		if !closed {
			pool.Close()
		}
	}()
	for i := 0; i < 4; i++ { // the first starts its own shim; the next ones find idle ones
		s := newStep(t, "#!/bin/sh\necho \"token=$TOKEN\"\nexit 3\n")
		sp := s.shimmed(t)
		sp.Shim.Pool = pool
		sp.Shim.RunLog, sp.Shim.RunLogPrefix = filepath.Join(s.dir, "run.log"), "[a] "
		sp.Env = append(sp.Env, "TOKEN=hunter2secret")
		sp.Secrets = [][]byte{[]byte("hunter2secret")}
		var next *shimProc // the idle shim the step must be handed to
		if i > 0 {
			pool.mu.Lock()
			if len(pool.idle) > 0 {
				next = pool.idle[0]
			}
			pool.mu.Unlock()
			if next == nil {
				t.Fatalf("step %d: no idle shim to hand it to", i)
			}
		}
		r := runBounded(t, context.Background(), sp)
		if r.Outcome != Exited || r.ExitCode != 3 || r.Err != nil {
			t.Fatalf("step %d: Run = %+v, want Exited with code 3", i, r)
		}
		if got := s.readLog(t); got != "token=***\n" {
			t.Errorf("step %d: log = %q", i, got)
		}
		if b, err := os.ReadFile(sp.Shim.RunLog); err != nil || string(b) != "[a] token=***\n" {
			t.Errorf("step %d: run log = %q, %v", i, b, err)
		}
		if rec, err := ReadShimRecord(sp.Shim.Dir); err != nil || rec == nil || rec.ExitCode != 3 {
			t.Errorf("step %d: ShimState = %+v %v", i, rec, err)
		}
		if next != nil { // it ran the step, so it has ended; an unused idle shim would not
			select {
			case <-next.reaped:
			case <-time.After(5 * time.Second):
				t.Errorf("step %d: the idle shim %d it was to be handed to still waits", i, next.cmd.Process.Pid)
			}
		}
		// As the daemon does once the run has recorded its end (EndRun):
		// a refill held for a step alone starts then. Let the pool start
		// its shims.
		pool.Refill()
		deadline := time.Now().Add(10 * time.Second)
		for idleCount(pool) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	pool.mu.Lock()
	idle := append([]*shimProc(nil), pool.idle...)
	pool.mu.Unlock()
	if len(idle) == 0 {
		t.Fatal("the pool has no idle shim after four steps")
	}
	for _, s := range idle { // the scan for holders of data passes them by
		if !OwnShim(s.cmd.Process.Pid) {
			t.Errorf("idle shim %d is not listed as the daemon's own", s.cmd.Process.Pid)
		}
	}
	pool.Close()
	closed = true
	for _, s := range idle {
		select {
		case <-s.reaped:
			if OwnShim(s.cmd.Process.Pid) { // dropped before the reap that frees the pid
				t.Errorf("shim %d is still listed as the daemon's own once reaped", s.cmd.Process.Pid)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("idle shim %d still runs after Close", s.cmd.Process.Pid)
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
}

// TestShimPoolIdleKilled: an idle shim killed while it waits is skipped;
// the step starts its own.
func TestShimPoolIdleKilled(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pool := startedPool(t, bin, 1, nil)
	deadline := time.Now().Add(10 * time.Second)
	for idleCount(pool) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	pool.mu.Lock()
	if len(pool.idle) != 1 {
		pool.mu.Unlock()
		t.Fatal("no idle shim")
	}
	victim := pool.idle[0]
	pool.mu.Unlock()
	_ = victim.cmd.Process.Kill()
	<-victim.reaped
	s := newStep(t, "#!/bin/sh\necho hello\n")
	sp := s.shimmed(t)
	sp.Shim.Pool = pool
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 0 || r.Err != nil {
		t.Fatalf("Run = %+v, want Exited 0", r)
	}
	if got := s.readLog(t); !strings.Contains(got, "hello") {
		t.Errorf("log = %q", got)
	}
}

func idleCount(p *ShimPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// TestShimPoolRefillWaitsForStep: a step alone, taking a shim while
// another is left idle, refills the pool only once its run has recorded
// its end (Refill), or refillAfter after its start for a long step; a step
// taken beside a running one, or taking the last idle shim, refills at once.
func TestShimPoolRefillWaitsForStep(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// counts waits up to 10 s for the pool to have idle idle shims and
	// starting starting (-1: any), and says how it is.
	counts := func(pool *ShimPool, idle, starting int) (int, int) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			pool.mu.Lock()
			i, s := len(pool.idle), pool.starting
			pool.mu.Unlock()
			if (i == idle && (starting < 0 || s == starting)) || time.Now().After(deadline) {
				return i, s
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fill := func(pool *ShimPool, n int, what string) {
		t.Helper()
		if got, _ := counts(pool, n, -1); got != n {
			t.Fatalf("%s: %d idle shims, want %d", what, got, n)
		}
	}
	// gated starts a step of pool that runs until released.
	gated := func(pool *ShimPool) (release func(), done <-chan Result) {
		s := newStep(t, "#!/bin/sh\nwhile [ ! -e \"$0.gate\" ]; do sleep 0.01; done\n")
		sp := s.shimmed(t)
		sp.Shim.Pool = pool
		ch := make(chan Result, 1)
		go func() { ch <- Run(context.Background(), sp) }()
		release = func() {
			if err := os.WriteFile(s.path+".gate", nil, 0o644); err != nil {
				t.Error(err)
			}
		}
		t.Cleanup(release) // a failed test ends its step too
		return release, ch
	}
	ended := func(done <-chan Result) {
		t.Helper()
		select {
		case r := <-done:
			if r.Outcome != Exited || r.ExitCode != 0 {
				t.Errorf("the gated step ended %+v", r)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the gated step did not end")
		}
	}
	old := refillAfter
	defer func() { refillAfter = old }()

	refillAfter = time.Hour
	pool := startedPool(t, bin, 2, nil)
	fill(pool, 2, "at the start")
	release, done := gated(pool)
	counts(pool, 1, -1)                // the step took its shim
	time.Sleep(200 * time.Millisecond) // a refill at the take would show by now
	if idle, starting := counts(pool, 1, 0); idle != 1 || starting != 0 {
		t.Errorf("while the step runs: %d idle, %d starting; want 1 and 0 (refilled once its run recorded its end)", idle, starting)
	}
	release()
	ended(done)
	time.Sleep(100 * time.Millisecond) // a refill at the step's end would show by now
	if idle, starting := counts(pool, 1, 0); idle != 1 || starting != 0 {
		t.Errorf("after the step ended: %d idle, %d starting; want 1 and 0 until its run recorded its end (Refill)", idle, starting)
	}
	pool.Refill() // the daemon's EndRun
	fill(pool, 2, "after the run recorded its end")

	refillAfter = 50 * time.Millisecond
	release, done = gated(pool)
	fill(pool, 2, "while a long step runs, after refillAfter")
	release()
	ended(done)

	refillAfter = time.Hour
	busy := startedPool(t, bin, 3, nil)
	fill(busy, 3, "at the start")
	release1, done1 := gated(busy)
	counts(busy, 2, -1)
	release2, done2 := gated(busy) // beside a running step: refilled at once
	fill(busy, 3, "a step started beside another")
	release1()
	release2()
	ended(done1)
	ended(done2)
}

// startedPool is a pool of size shims of bin (that start their step's init
// ahead as ahead says, when set), started at once and closed at the test's
// end.
func startedPool(t *testing.T, bin string, size int, ahead *InitAhead) *ShimPool {
	t.Helper()
	pool := NewShimPool(bin, size)
	t.Cleanup(pool.Close)
	if ahead != nil {
		pool.StartInitsAhead(*ahead)
	}
	pool.mu.Lock()
	pool.refillLocked()
	pool.mu.Unlock()
	return pool
}

// TestShimPoolCloseLeavesTakenShims: Close ends and waits for the idle
// shims only; a shim taken for a step (which outlives the daemon with it)
// is not waited for. Shown with a wait bound no test would sit out: Close
// waited for every shim the pool had started, so a stop with a step of one
// still running took the whole bound (two seconds).
func TestShimPoolCloseLeavesTakenShims(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	defer func(w time.Duration) { closeWait = w }(closeWait)
	closeWait = time.Hour
	pool := startedPool(t, bin, 2, nil)
	deadline := time.Now().Add(10 * time.Second)
	for idleCount(pool) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	taken := pool.take(nil) // its step "runs": the shim waits for its spec, which it never gets here
	if taken == nil {
		t.Fatal("no idle shim to take")
	}
	defer func() { // its step's end: the shim exits at the end of its spec pipe
		closeIdle(taken)
		<-taken.reaped
	}()
	pool.mu.Lock()
	idle := append([]*shimProc(nil), pool.idle...)
	pool.mu.Unlock()
	closed := make(chan struct{})
	go func() { pool.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // a bound, not a measure
		t.Fatal("Close still waits after 30 s: it waits for the shim taken for a step")
	}
	for _, s := range idle {
		select {
		case <-s.reaped:
		default:
			t.Errorf("idle shim %d still runs after Close returned", s.cmd.Process.Pid)
		}
	}
	select {
	case <-taken.reaped:
		t.Error("the taken shim ended with the pool's Close")
	default:
	}
}
