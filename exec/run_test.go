package exec

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		code   int
	}{
		{"success", "#!/bin/sh\nexit 0\n", 0},
		{"empty script", "#!/bin/sh\n", 0},
		{"exit 3", "#!/bin/sh\nexit 3\n", 3},
		{"exit 255", "#!/bin/sh\nexit 255\n", 255},
		{"SIGKILL", "#!/bin/sh\nkill -KILL $$\n", 128 + 9},
		{"SIGTERM", "#!/bin/sh\nkill -TERM $$\n", 128 + 15},
		{"SIGHUP", "#!/bin/sh\nkill -HUP $$\n", 128 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStep(t, tt.script)
			r := runBounded(t, context.Background(), s.spec())
			if r.Outcome != Exited || r.ExitCode != tt.code || r.Err != nil {
				t.Errorf("Run = %+v, want Exited with code %d", r, tt.code)
			}
		})
	}
}

// TestRunLogOrder: stdout and stderr share one pipe, so the log keeps the
// order the step wrote in; the log is appended to, never truncated.
func TestRunLogOrder(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho out 1\necho err 1 >&2\necho out 2\nprintf 'err 2' >&2\necho >&2\necho last line without newline | tr -d '\\n'\n")
	if err := os.WriteFile(s.log, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBounded(t, context.Background(), s.spec())
	if r.Outcome != Exited || r.ExitCode != 0 {
		t.Fatalf("Run = %+v", r)
	}
	want := "earlier\nout 1\nerr 1\nout 2\nerr 2\nlast line without newline"
	if got := s.readLog(t); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// TestRunEnvironmentAndDir: the step gets exactly the given environment,
// its arguments and working directory.
func TestRunEnvironmentAndDir(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho \"args=$1 $2\"\necho \"pwd=$(pwd)\"\necho \"home=${HOME:-unset} custom=$CUSTOM\"\n")
	sp := s.spec()
	sp.Env = append(sp.Env, "CUSTOM=yes")
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 0 {
		t.Fatalf("Run = %+v", r)
	}
	log := s.readLog(t)
	for _, want := range []string{
		"args=" + sp.Args[0] + " " + sp.Args[1] + "\n",
		"pwd=" + s.dir + "\n",
		"home=unset custom=yes\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestRunNotStarted(t *testing.T) {
	dir := t.TempDir()
	noShebang := filepath.Join(dir, "no-shebang")
	if err := os.WriteFile(noShebang, []byte("echo hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "not-exec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badInterp := filepath.Join(dir, "bad-interp")
	if err := os.WriteFile(badInterp, []byte("#!/nonexistent/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, errHas string
	}{
		{"missing program", filepath.Join(dir, "missing"), "cannot start"},
		{"no #! line", noShebang, "not a program and no #! line"},
		{"not executable", notExec, "permission denied"},
		{"missing interpreter", badInterp, "cannot start"},
		{"a folder", dir, "cannot start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := false
			sp := Spec{Path: tt.path, Env: []string{marker}, Dir: dir, LogPath: filepath.Join(t.TempDir(), "log"),
				Started: func(int, uint64, time.Time) { started = true }}
			r := runBounded(t, context.Background(), sp)
			if r.Outcome != NotStarted || r.Err == nil {
				t.Fatalf("Run = %+v, want NotStarted with an error", r)
			}
			if !strings.Contains(r.Err.Error(), tt.errHas) || !strings.Contains(r.Err.Error(), tt.path) {
				t.Errorf("error %q should name %s and say %q", r.Err, tt.path, tt.errHas)
			}
			if started {
				t.Error("Started was called for a step that never started")
			}
		})
	}
	r := Run(context.Background(), Spec{Path: "/bin/true", LogPath: filepath.Join(dir, "no", "such", "log")})
	if r.Outcome != NotStarted || r.Err == nil || !strings.Contains(r.Err.Error(), "open log") {
		t.Errorf("Run with an unwritable log = %+v, want NotStarted `open log`", r)
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, script string
	}{
		{"plain", "#!/bin/sh\necho $$ > pid\nsleep 100\n"},
		// Ignores TERM (and so does its sleep): only the KILL after the
		// grace ends it.
		{"ignores TERM", "#!/bin/sh\ntrap '' TERM\necho $$ > pid\nsleep 100\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStep(t, tt.script)
			sp := s.spec()
			sp.Timeout = 300 * time.Millisecond
			r := runBounded(t, context.Background(), sp)
			if r.Outcome != TimedOut || r.ExitCode != 124 {
				t.Errorf("Run = %+v, want TimedOut 124", r)
			}
			// The pid file may be missing if the timeout beat the script.
			if b, err := os.ReadFile(filepath.Join(s.dir, "pid")); err == nil && len(b) > 0 {
				if pid := s.pid(t, "pid"); alive(pid) {
					t.Errorf("the step's process %d outlived Run", pid)
				}
			}
		})
	}
}

// TestRunCancel: cancelling ctx stops the step (TERM, grace, KILL) with the
// outcome Cancelled; ErrKill as the cause skips the grace.
func TestRunCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		grace  time.Duration
		cause  error
		code   int
	}{
		{"TERM ends it", "#!/bin/sh\necho $$ > pid\necho ready > ready\nsleep 100\n", time.Hour, errors.New("stop"), 128 + 15},
		{"KILL after grace", "#!/bin/sh\ntrap '' TERM\necho $$ > pid\necho ready > ready\nsleep 100\n", 100 * time.Millisecond, errors.New("stop"), 128 + 9},
		{"ErrKill skips an hour of grace", "#!/bin/sh\ntrap '' TERM\necho $$ > pid\necho ready > ready\nsleep 100\n", time.Hour, ErrKill, 128 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStep(t, tt.script)
			sp := s.spec()
			sp.Grace = tt.grace
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			go func() {
				// Cancel once the script is past its trap.
				for i := 0; i < 6000; i++ {
					if b, err := os.ReadFile(filepath.Join(s.dir, "ready")); err == nil && len(b) > 0 {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				cancel(tt.cause)
			}()
			r := runBounded(t, ctx, sp)
			if r.Outcome != Cancelled || r.ExitCode != tt.code {
				t.Errorf("Run = %+v, want Cancelled with code %d", r, tt.code)
			}
			if pid := s.pid(t, "pid"); alive(pid) {
				t.Errorf("the step's process %d outlived Run", pid)
			}
		})
	}
}

// TestRunKillsLeftovers: what the step leaves running in its group when its
// main process exits is killed, so Run returns although the leftover holds
// the log pipe open.
func TestRunKillsLeftovers(t *testing.T) {
	t.Parallel()
	s := newStep(t, "#!/bin/sh\nsleep 100 &\necho $! > bgpid\n(trap '' TERM HUP; sleep 100) &\necho $! > bgpid2\necho main done\nexit 0\n")
	r := runBounded(t, context.Background(), s.spec())
	if r.Outcome != Exited || r.ExitCode != 0 {
		t.Errorf("Run = %+v, want Exited 0", r)
	}
	for _, name := range []string{"bgpid", "bgpid2"} {
		pid := s.pid(t, name)
		eventually(t, "the background child is killed", func() bool { return !alive(pid) })
	}
	if got := s.readLog(t); got != "main done\n" {
		t.Errorf("log = %q", got)
	}
}

// TestRunStarted: Started gets the step's process group (its main
// process's pid) and start time while the step runs.
func TestRunStarted(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho $$ > pid\n")
	var gotPgid int
	var gotStart, procStart uint64
	var procPgid int
	sp := s.spec()
	sp.Started = func(pgid int, start uint64, _ time.Time) {
		gotPgid, gotStart = pgid, start
		procPgid, procStart, _ = procStat(pgid)
	}
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 0 {
		t.Fatalf("Run = %+v", r)
	}
	if pid := s.pid(t, "pid"); gotPgid != pid {
		t.Errorf("Started pgid = %d, want the main process %d", gotPgid, pid)
	}
	if procPgid != gotPgid {
		t.Errorf("process %d is in group %d, want its own group", gotPgid, procPgid)
	}
	if gotStart == 0 || gotStart != procStart {
		t.Errorf("Started start = %d, /proc says %d", gotStart, procStart)
	}
}

// lockedBuffer is a Tee the test reads after Run.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func TestRunTeeAndNotify(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho one\necho two >&2\n")
	var tee lockedBuffer
	var rings atomic.Int64
	sp := s.spec()
	sp.Tee = &tee
	sp.Notify = func() { rings.Add(1) }
	runBounded(t, context.Background(), sp)
	if got := s.readLog(t); tee.buf.String() != got || got != "one\ntwo\n" {
		t.Errorf("tee = %q, log = %q; want both one\\ntwo\\n", tee.buf.String(), got)
	}
	if rings.Load() == 0 {
		t.Error("Notify was never called")
	}
}

func TestRunMaxLog(t *testing.T) {
	s := newStep(t, "#!/bin/sh\necho 0123456789abcdef\necho more\necho $$ > pid\necho still running > after\n")
	sp := s.spec()
	sp.MaxLog = 10
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 0 {
		t.Errorf("Run = %+v, want Exited 0 (a capped log does not stop the step)", r)
	}
	log := s.readLog(t)
	if !strings.HasPrefix(log, "0123456789\njobfs: log truncated at 10 bytes") || strings.Contains(log, "more") {
		t.Errorf("log = %q", log)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "after")); err != nil {
		t.Errorf("the step did not run to its end: %v", err)
	}
}

// TestRunThroughInit runs a step through the step init (the test binary
// re-executed) without cgroups or namespaces.
func TestRunThroughInit(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := newStep(t, "#!/bin/sh\necho via init\nexit 7\n")
	sp := s.spec()
	sp.Isolation = &Isolation{Init: self, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	r := runBounded(t, context.Background(), sp)
	if r.Outcome != Exited || r.ExitCode != 7 {
		t.Errorf("Run = %+v, want Exited 7", r)
	}
	if got := s.readLog(t); got != "via init\n" {
		t.Errorf("log = %q", got)
	}
	sp.Path = filepath.Join(s.dir, "missing")
	r = runBounded(t, context.Background(), sp)
	if r.Outcome != NotStarted || r.Err == nil || !strings.Contains(r.Err.Error(), "cannot start") {
		t.Errorf("Run of a missing program through the init = %+v, want NotStarted", r)
	}
}
