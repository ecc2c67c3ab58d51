package exec

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestShimWritesRunLog: a shim given the run's log appends each line of
// the step's log to it after the prefix, a last line without newline
// given one, and records its protocol in its lock; the tee is not used.
func TestShimWritesRunLog(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho one\necho \"token=$TOKEN\"\nprintf partial\n")
	sp := s.shimmed(t)
	sp.Env = append(sp.Env, "TOKEN=hunter2secret")
	sp.Secrets = [][]byte{[]byte("hunter2secret")}
	runLog := filepath.Join(s.dir, "runlog")
	if err := os.WriteFile(runLog, []byte("jobfs: before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp.Shim.RunLog, sp.Shim.RunLogPrefix = runLog, "[a] "
	var tee syncBuf
	sp.Tee = &tee
	if r := runBounded(t, context.Background(), sp); r.Outcome != Exited || r.ExitCode != 0 {
		t.Fatalf("Run = %+v, want Exited 0", r)
	}
	if got, want := s.readLog(t), "one\ntoken=***\npartial"; got != want {
		t.Errorf("step log = %q, want %q", got, want)
	}
	b, err := os.ReadFile(runLog)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "jobfs: before\n[a] one\n[a] token=***\n[a] partial\n"; got != want {
		t.Errorf("run log = %q, want %q", got, want)
	}
	if tee.String() != "" {
		t.Errorf("tee = %q, want nothing: the shim wrote the run log", tee.String())
	}
	if v, err := ShimProtocolOf(sp.Shim.Dir); err != nil || v != ShimProtocol {
		t.Errorf("ShimProtocolOf = %d, %v; want %d", v, err, ShimProtocol)
	}
	if left, _ := filepath.Glob(filepath.Join(sp.Shim.Dir, shimLock+".*")); len(left) > 0 {
		t.Errorf("the lock's temporary name is left: %v", left)
	}
}

// fakeShim makes a shim folder whose lock (holding content) the test
// holds, as a live shim of another build would; release writes rec as
// its record and lets the lock go.
func fakeShim(t *testing.T, content string) (dir string, release func(rec any)) {
	t.Helper()
	dir = t.TempDir()
	lock := filepath.Join(dir, shimLock)
	if err := os.WriteFile(lock, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(lock)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return dir, func(rec any) {
		b, err := json.Marshal(rec)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, shimRecord), b, 0o600)
		}
		if err != nil {
			t.Error(err)
		}
		_ = f.Close() // lets the lock go
	}
}

// TestAttachOlderShim: a shim of protocol 1 (an empty lock) is followed
// with the tee, as the daemon that started it did, and its record read.
func TestAttachOlderShim(t *testing.T) {
	dir, release := fakeShim(t, "")
	if v, err := ShimProtocolOf(dir); err != nil || v != 1 {
		t.Fatalf("ShimProtocolOf(empty lock) = %d, %v; want 1", v, err)
	}
	log := filepath.Join(dir, "steplog")
	if err := os.WriteFile(log, []byte("before attach\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	from := int64(len("before attach\n")) // Attach takes the log's size
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("after attach\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	var tee syncBuf
	done := make(chan Result, 1)
	// With a run log: a shim of protocol 1 does not write it, the tee is
	// its copy.
	go func() {
		done <- waitShim(context.Background(), AttachSpec{Dir: dir, LogPath: log, Tee: &tee, RunLog: filepath.Join(dir, "runlog")}, from)
	}()
	release(ShimRecord{Protocol: 1, Outcome: Exited, ExitCode: 4})
	r := <-done
	if r.Outcome != Exited || r.ExitCode != 4 {
		t.Errorf("Attach = %+v, want Exited 4", r)
	}
	if got := tee.String(); got != "after attach\n" {
		t.Errorf("tee = %q, want the line appended after attach", got)
	}
}

// TestAttachNewerShim: a shim of a protocol this jobfs does not know is
// let finish (Attach returns only once its lock is free), and the result
// says why its record is not read.
func TestAttachNewerShim(t *testing.T) {
	v := ShimProtocol + 1
	dir, release := fakeShim(t, "3\n")
	if got, err := ShimProtocolOf(dir); err != nil || got != 3 {
		t.Fatalf("ShimProtocolOf = %d, %v; want 3", got, err)
	}
	log := filepath.Join(dir, "steplog")
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan Result, 1)
	go func() { done <- Attach(context.Background(), AttachSpec{Dir: dir, LogPath: log}) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("Attach returned %+v while the shim ran", r)
	default:
	}
	release(map[string]any{"Protocol": v, "Outcome": 0, "ExitCode": 0, "NewField": "x"})
	r := <-done
	if r.Outcome != NotStarted || !errors.Is(r.Err, ErrNewerShim) {
		t.Errorf("Attach = %+v, want NotStarted with ErrNewerShim", r)
	}
}
