package exec

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the step init when the test binary is re-executed as one,
// and fails the package when a test left a step's process running.
func TestMain(m *testing.M) {
	MaybeInit()
	// As the daemon does (it handles SIGHUP): a test binary started with
	// SIGHUP ignored (nohup) would hand SIG_IGN on to the steps it starts.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	code := m.Run()
	if leaked := waitNoLeaks(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "processes left behind by the tests:\n%s", strings.Join(leaked, ""))
		code = 1
	}
	os.Exit(code)
}

// marker is in the environment of every process the tests start.
var marker = "JOBFS_EXEC_TEST=" + strconv.Itoa(os.Getpid())

func waitNoLeaks() []string {
	var leaked []string
	for i := 0; i < 500; i++ {
		if leaked = markedProcesses(); len(leaked) == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return leaked
}

func markedProcesses() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker+"\x00")) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, fmt.Sprintf("  pid %d: %s\n", pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// eventually polls cond (bounded) and fails with what when it never holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 6000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

// step is a script to run in its own folder.
type step struct {
	dir, path, log string
}

// newStep writes script (executable) into a fresh folder.
func newStep(t testing.TB, script string) step {
	t.Helper()
	dir := t.TempDir()
	s := step{dir: dir, path: filepath.Join(dir, "step"), log: filepath.Join(dir, "log")}
	if err := os.WriteFile(s.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// spec is the Spec running the step with a clean, marked environment.
func (s step) spec() Spec {
	return Spec{
		Path:    s.path,
		Args:    []string{filepath.Join(s.dir, "in"), filepath.Join(s.dir, "out")},
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", marker},
		Dir:     s.dir,
		LogPath: s.log,
		Grace:   100 * time.Millisecond,
	}
}

func (s step) readLog(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pid reads a pid the script wrote to name in its folder.
func (s step) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// runBounded runs the spec, failing (instead of hanging) if Run never
// returns.
func runBounded(t *testing.T, ctx context.Context, s Spec) Result {
	t.Helper()
	done := make(chan Result, 1)
	go func() { done <- Run(ctx, s) }()
	select {
	case r := <-done:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return")
		return Result{}
	}
}
