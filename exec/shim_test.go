package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shimmed is the spec running the step under a shim of this test binary.
func (s step) shimmed(t *testing.T) Spec {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sp := s.spec()
	sp.Shim = &Shim{Binary: bin, Dir: filepath.Join(s.dir, "shim")}
	return sp
}

// syncBuf is a tee the test reads while the run writes it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestShimRunMasksAndRecords: under a shim, the step's output is masked
// and capped into its log, copied to the tee, the readers' bell rung, and
// its end recorded durably in exit.json.
func TestShimRunMasksAndRecords(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho \"token=$TOKEN\"\necho two\nexit 3\n")
	sp := s.shimmed(t)
	sp.Env = append(sp.Env, "TOKEN=hunter2secret")
	sp.Secrets = [][]byte{[]byte("hunter2secret")}
	var tee syncBuf
	var rings atomic.Int32
	sp.Tee, sp.Notify = &tee, func() { rings.Add(1) }
	var pgid int
	sp.Started = func(p int, _ uint64, _ time.Time) { pgid = p }
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 3 || r.Err != nil {
		t.Fatalf("Run = %+v, want Exited with code 3", r)
	}
	pgid = startedPgid(r, pgid)
	want := "token=***\ntwo\n"
	if got := s.readLog(t); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if got := tee.String(); got != want {
		t.Errorf("tee = %q, want %q", got, want)
	}
	if rings.Load() == 0 {
		t.Error("the bell was never rung")
	}
	if pgid <= 0 {
		t.Errorf("Started got pgid %d", pgid)
	}
	// Run returns once the shim has recorded the step's end; the shim
	// ends a moment later.
	if !AwaitShimEnd(sp.Shim.Dir, 10*time.Second) {
		t.Fatal("the shim did not end after recording its step")
	}
	alive, rec, err := ShimState(sp.Shim.Dir)
	if err != nil || alive || rec == nil || rec.Protocol != ShimProtocol || rec.ExitCode != 3 {
		t.Errorf("ShimState = %v %+v %v", alive, rec, err)
	}
	if r := Run(context.Background(), sp); r.Outcome != NotStarted {
		t.Errorf("a second Run in the same shim folder = %+v, want NotStarted", r)
	}
}

// TestShimOutlivesDetach: a step left to its shim (ErrDetach) runs on;
// Attach follows it to its end with every line once in the log.
func TestShimOutlivesDetach(t *testing.T) {
	s := newStep(t, "#!/bin/sh\ni=1\nwhile [ $i -le 20 ]; do echo line $i; i=$((i+1)); sleep 0.05; done\nexit 7\n")
	sp := s.shimmed(t)
	ctx, stop := WithStop(context.Background())
	time.AfterFunc(200*time.Millisecond, func() { stop(ErrDetach) })
	if r := runBounded(t, ctx, sp); r.Outcome != Detached {
		t.Fatalf("Run = %+v, want Detached", r)
	}
	if alive, _, err := ShimState(sp.Shim.Dir); err != nil || !alive {
		t.Fatalf("after detach the shim is alive = %v (%v), want true", alive, err)
	}
	var tee syncBuf
	r := Attach(context.Background(), AttachSpec{Dir: sp.Shim.Dir, LogPath: s.log, Tee: &tee})
	if r.Outcome != Exited || r.ExitCode != 7 {
		t.Fatalf("Attach = %+v, want Exited with code 7", r)
	}
	var want strings.Builder
	for i := 1; i <= 20; i++ {
		want.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if got := s.readLog(t); got != want.String() {
		t.Errorf("log = %q, want lines 1..20 once each", got)
	}
	if !strings.HasSuffix(want.String(), tee.String()) || tee.String() == "" {
		t.Errorf("tee = %q, want the log's tail", tee.String())
	}
}

// startedPgid is the step's process group as Run told it: through Started,
// or, for a step that ended within StartedGrace, in its Result.
func startedPgid(r Result, fromStarted int) int {
	if r.Start != nil {
		return r.Start.Pgid
	}
	return fromStarted
}

// TestShimStartTold: a step under a shim that ends within StartedGrace is
// not told through Started (one commit fewer for its daemon): its Result
// carries its start; a longer one is told while it runs, and its Result
// carries none.
func TestShimStartTold(t *testing.T) {
	defer func(g time.Duration) { startedGrace = g }(startedGrace)
	for _, tc := range []struct {
		script  string
		grace   time.Duration // long, or short, beside the step
		started bool
	}{{"#!/bin/sh\nexit 0\n", time.Minute, false}, {"#!/bin/sh\nsleep 0.5\n", time.Millisecond, true}} {
		startedGrace = tc.grace
		s := newStep(t, tc.script)
		sp := s.shimmed(t)
		called := false
		sp.Started = func(p int, _ uint64, _ time.Time) { called = p > 0 }
		r := runBounded(t, context.Background(), sp)
		if r.Outcome != Exited || r.ExitCode != 0 {
			t.Fatalf("%q: Run = %+v, want Exited 0", tc.script, r)
		}
		if called != tc.started || (r.Start != nil) == tc.started {
			t.Errorf("%q: Started called %v, Result.Start %+v; want Started %v", tc.script, called, r.Start, tc.started)
		}
		if r.Start != nil && (r.Start.Pgid <= 0 || time.Since(r.Start.At) > time.Minute) {
			t.Errorf("%q: Result.Start = %+v", tc.script, r.Start)
		}
	}
}

// TestShimTimeoutWithoutDaemon: the shim enforces the timeout alone and
// records it.
func TestShimTimeoutWithoutDaemon(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho started\nexec sleep 30\n")
	sp := s.shimmed(t)
	sp.Timeout = 300 * time.Millisecond
	ctx, stop := WithStop(context.Background())
	sp.Started = func(int, uint64, time.Time) { stop(ErrDetach) }
	if r := runBounded(t, ctx, sp); r.Outcome != Detached {
		t.Fatalf("Run = %+v, want Detached", r)
	}
	var rec *ShimRecord
	eventually(t, "the shim records the timeout", func() bool {
		alive, r, err := ShimState(sp.Shim.Dir)
		rec = r
		return err == nil && !alive
	})
	if rec == nil || rec.Outcome != TimedOut || rec.ExitCode != 124 {
		t.Fatalf("record = %+v, want TimedOut 124", rec)
	}
}

// TestShimStopAndKill: a cancelled Run stops the step through the shim's
// ctl (SIGTERM), a kill cause SIGKILLs it.
func TestShimStopAndKill(t *testing.T) {
	for _, tc := range []struct {
		cause error
		code  int
	}{{context.Canceled, 143}, {ErrKill, 137}} {
		s := newStep(t, "#!/bin/sh\necho started\nexec sleep 30\n")
		sp := s.shimmed(t)
		ctx, stop := WithStop(context.Background())
		sp.Started = func(int, uint64, time.Time) { go func() { time.Sleep(100 * time.Millisecond); stop(tc.cause) }() }
		r := runBounded(t, ctx, sp)
		if r.Outcome != Cancelled || r.ExitCode != tc.code {
			t.Errorf("%v: Run = %+v, want Cancelled %d", tc.cause, r, tc.code)
		}
	}
}

// TestShimProtocol: a shim refuses a spec of a newer protocol, saying why;
// a daemon refuses a record of a newer one.
func TestShimProtocol(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, shimRecord), []byte(`{"Protocol":99,"ExitCode":0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readShimRecord(dir); err == nil || !strings.Contains(err.Error(), "protocol 99") {
		t.Errorf("a newer record read with err %v", err)
	}
	old := ShimRecord{Protocol: 1, Outcome: Exited, ExitCode: 5}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, shimRecord), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if rec, err := readShimRecord(dir); err != nil || rec.ExitCode != 5 {
		t.Errorf("a protocol 1 record: %+v %v", rec, err)
	}
}
