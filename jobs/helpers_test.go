package jobs

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/boltstore"
	"github.com/jobfs/jobfs/jobs/etcdstore/etcdtest"
)

// TestMain fails the package when a test left a step's process running.
func TestMain(m *testing.M) {
	code := m.Run()
	etcdtest.Cleanup() // the etcd member binary cluster_test.go built
	if leaked := waitNoLeaks(leakMarker()); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "processes left behind by the tests:\n%s", strings.Join(leaked, ""))
		code = 1
	}
	os.Exit(code)
}

// testPrefix starts every job name of this test binary, so its steps (whose
// environment holds JOBFS_JOB=<name>) can be found in /proc.
var testPrefix = "ut" + strconv.Itoa(os.Getpid()) + "-"

func leakMarker() string { return "JOBFS_JOB=" + testPrefix }

// waitNoLeaks returns the live processes whose environment holds marker,
// after giving SIGKILLed ones a bounded while to disappear.
func waitNoLeaks(marker string) []string {
	var leaked []string
	for i := 0; i < 500; i++ {
		if leaked = markedProcesses(marker); len(leaked) == 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return leaked
}

func markedProcesses(marker string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(marker)) {
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

// checkStoreFile reopens a closed store and runs bbolt's consistency check.
func checkStoreFile(t *testing.T, path string) {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Errorf("reopen store: %v", err)
		return
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Errorf("store check: %v", err)
	}
}

// syncBuffer is a daemon log the test can read while runs write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testManager struct {
	*Manager
	daemonLog *syncBuffer
}

// newTestManager starts a Manager on a fresh state folder, with a short
// grace and repos under the state folder unless opts says otherwise.
// Cleanup closes it (idempotent) and checks the store file.
func newTestManager(t *testing.T, opts Options) testManager {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Grace == 0 {
		opts.Grace = 100 * time.Millisecond
	}
	daemonLog := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = log.New(daemonLog, "", 0)
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
		checkStoreFile(t, filepath.Join(opts.StateDir, "jobfs.db"))
	})
	return testManager{m, daemonLog}
}

// jobName gives a job name marked as this test binary's.
func jobName(name string) string { return testPrefix + name }

func mustCreateJob(t *testing.T, m testManager, name string) Job {
	t.Helper()
	j, err := m.CreateJob(uint32(os.Getuid()), jobName(name))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// scriptJob creates a job of type script running script.
func scriptJob(t *testing.T, m testManager, name, script string) Job {
	t.Helper()
	j := mustCreateJob(t, m, name)
	mustOK(t, m.WriteSetting(j.ID, "config/type", "script\n"))
	mustOK(t, m.WriteSetting(j.ID, "config/script", script))
	return j
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustTrigger(t *testing.T, m testManager, jobID, payload string) uint64 {
	t.Helper()
	id, err := m.Trigger(jobID, []byte(payload), Manual)
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	return id
}

// waitRun blocks until the run is terminal. The deadline only turns a hang
// into a failure; nothing is asserted about time.
func waitRun(t *testing.T, m testManager, jobID string, id uint64) Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := m.Wait(ctx, jobID, id)
	if err != nil {
		t.Fatalf("wait for run %d: %v", id, err)
	}
	if !r.Status.Terminal() {
		t.Fatalf("run %d: Wait returned status %s", id, r.Status)
	}
	return r
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

// runStatus reads a run's stored status, failing on error.
func runStatus(t *testing.T, m testManager, jobID string, id uint64) Status {
	t.Helper()
	r, err := m.Run(jobID, id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jobLogLines returns the job's event log, one entry per line.
func jobLogLines(t *testing.T, m testManager, jobID string) []string {
	t.Helper()
	return strings.Split(strings.TrimSuffix(readFile(t, m.JobLogPath(jobID)), "\n"), "\n")
}

// lastJobLogLine is the newest line of the job's event log.
func lastJobLogLine(t *testing.T, m testManager, jobID string) string {
	t.Helper()
	lines := jobLogLines(t, m, jobID)
	return lines[len(lines)-1]
}

// gate is a file a script waits for, so a test holds a run RUNNING as long
// as it needs without guessing durations.
type gate string

func newGate(t *testing.T) gate { return gate(filepath.Join(t.TempDir(), "gate")) }

// wait is the shell line that blocks until the gate opens.
func (g gate) wait() string {
	return fmt.Sprintf("while [ ! -e %q ]; do sleep 0.01; done\n", string(g))
}

func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(string(g), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tickClock is a fake clock that moves one millisecond at every reading,
// so the order of stored times is the order of the calls that made them.
type tickClock struct {
	base time.Time
	n    atomic.Int64
}

func (c *tickClock) Now() time.Time {
	return c.base.Add(time.Duration(c.n.Add(1)) * time.Millisecond)
}

func intp(v int) *int { return &v }

func codeString(c *int) string {
	if c == nil {
		return "<nil>"
	}
	return strconv.Itoa(*c)
}
