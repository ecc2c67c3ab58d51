package jobs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// fakeBackend runs no process: it records the spec of every step it is
// given and ends each as its node's action says (by label; a fan-out
// instance label.N by its node's label).
type fakeBackend struct {
	mu      sync.Mutex
	specs   []StepSpec
	actions map[string]fakeAction
	started chan string // the label of every step started
}

// fakeAction is what a fake step does: write to its log and output, then
// end as it returns.
type fakeAction func(ctx context.Context, s StepSpec) StepResult

func newFakeBackend(actions map[string]fakeAction) *fakeBackend {
	return &fakeBackend{actions: actions, started: make(chan string, 64)}
}

func (b *fakeBackend) Gaps(exec.Limits) []string { return nil }

func (b *fakeBackend) RunStep(ctx context.Context, s StepSpec) StepResult {
	b.mu.Lock()
	b.specs = append(b.specs, s)
	b.mu.Unlock()
	node, _, _ := strings.Cut(s.Label, ".")
	act, ok := b.actions[node]
	if !ok {
		return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: errors.New("the fake has no action for " + node)}
	}
	s.Started(StepStarted{})
	b.started <- s.Label
	return act(ctx, s)
}

func (b *fakeBackend) CanFreeze() error                  { return errors.New("the fake cannot freeze") }
func (b *fakeBackend) Freeze(string, uint64, bool) error { return errors.New("the fake cannot freeze") }
func (b *fakeBackend) EndRun(string, uint64) error       { return nil }
func (b *fakeBackend) EndJob(string)                     {}

// spec returns the spec the step labelled label was given.
func (b *fakeBackend) spec(t *testing.T, label string) StepSpec {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.specs {
		if s.Label == label {
			return s
		}
	}
	t.Fatalf("step %s never reached the backend", label)
	return StepSpec{}
}

// labels lists the labels of the steps the backend got, sorted.
func (b *fakeBackend) labels() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, s := range b.specs {
		out = append(out, s.Label)
	}
	slices.Sort(out)
	return out
}

// exits writes line to the log and files (name: content) into the output,
// then exits with code.
func exits(code int, line string, files map[string]string) fakeAction {
	return func(_ context.Context, s StepSpec) StepResult {
		if _, err := s.Log.Write([]byte(line + "\n")); err != nil {
			return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: err}
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(s.Output, name), []byte(content), 0o644); err != nil {
				return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: err}
			}
		}
		return StepResult{Outcome: exec.Exited, ExitCode: code}
	}
}

// echoInput writes got-<name> into the output for every file of its input.
func echoInput(_ context.Context, s StepSpec) StepResult {
	for _, rel := range treeFiles(s.Input) {
		if err := os.WriteFile(filepath.Join(s.Output, "got-"+filepath.Base(rel)), nil, 0o644); err != nil {
			return StepResult{Outcome: exec.NotStarted, ExitCode: -1, Err: err}
		}
	}
	return StepResult{Outcome: exec.Exited}
}

// hang waits until ctx is cancelled and ends as a process stopped by
// SIGTERM, or by SIGKILL when the cause is a kill.
func hang(ctx context.Context, s StepSpec) StepResult {
	_, _ = s.Log.Write([]byte("waiting\n")) // never fails
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), exec.ErrKill) {
		return StepResult{Outcome: exec.Cancelled, ExitCode: 137}
	}
	return StepResult{Outcome: exec.Cancelled, ExitCode: 143}
}

// treeFiles lists the regular files below dir, relative, sorted.
func treeFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	slices.Sort(out)
	return out
}

// fakeChainJob makes a chains job over images named after the chain's
// steps (never run: the fake backend acts for them) on a Manager whose
// Backend is b.
func fakeChainJob(t *testing.T, b *fakeBackend, name, chain string, images ...string) (testManager, Job) {
	t.Helper()
	repos := t.TempDir()
	m := newTestManager(t, Options{ReposDir: repos, Backend: b})
	for _, img := range images {
		makeImage(t, repos, currentUser(t), img, "#!/bin/sh\nexit 99\n", 0o755)
	}
	j := mustCreateJob(t, m, name)
	mustOK(t, m.WriteSetting(j.ID, "config/chains", chain))
	return m, j
}

// stepStatus is a step's stored status, or "none".
func stepStatus(r Run, label string) Status {
	if s, ok := r.Step(label); ok {
		return s.Status
	}
	return "none"
}

// TestFakeFanOutFanIn: a step fans out over the three files its
// predecessor wrote (one instance each, each given its one file), and the
// step after them and a parallel first step gets one folder per instance
// and one for the other step; the run completes with every output.
func TestFakeFanOutFanIn(t *testing.T) {
	t.Parallel()
	b := newFakeBackend(map[string]fakeAction{
		"split": exits(0, "splitting", map[string]string{"a.txt": "A", "b.txt": "B", "c.txt": "C"}),
		"work":  echoInput,
		"meta":  exits(0, "meta", map[string]string{"meta.txt": "M"}),
		"join":  echoInput,
	})
	m, j := fakeChainJob(t, b, "fan",
		"split <- splitter\nwork <- worker\nmeta <- metas\njoin <- joiner\nsplit -> .work\nwork, meta -> join\n",
		"splitter", "worker", "metas", "joiner")
	id := mustTrigger(t, m, j.ID, `{"n": 1}`)
	r := waitRun(t, m, j.ID, id)
	if r.Status != Completed || codeString(r.ExitCode) != "0" {
		t.Fatalf("run = %s exit %s %q, want COMPLETED exit 0", r.Status, codeString(r.ExitCode), r.Error)
	}
	if got, want := b.labels(), []string{"join", "meta", "split", "work.1", "work.2", "work.3"}; !slices.Equal(got, want) {
		t.Errorf("steps run = %v, want %v", got, want)
	}
	for i, f := range []string{"a.txt", "b.txt", "c.txt"} {
		label := "work." + string(rune('1'+i))
		if got := treeFiles(b.spec(t, label).Input); !slices.Equal(got, []string{f}) {
			t.Errorf("input of %s = %v, want [%s]", label, got, f)
		}
		if s := stepStatus(r, label); s != Completed {
			t.Errorf("step %s = %s, want COMPLETED", label, s)
		}
	}
	join := b.spec(t, "join")
	want := []string{"meta/meta.txt", "work.1/got-a.txt", "work.2/got-b.txt", "work.3/got-c.txt"}
	if got := treeFiles(join.Input); !slices.Equal(got, want) {
		t.Errorf("the fan-in's input = %v, want %v", got, want)
	}
	if got := treeFiles(filepath.Join(m.RunDir(j.ID, id), "output")); !slices.Equal(got, []string{"got-got-a.txt", "got-got-b.txt", "got-got-c.txt", "got-meta.txt"}) {
		t.Errorf("the run's output = %v", got)
	}
	split := b.spec(t, "split")
	if got := readFile(t, filepath.Join(split.Input, "input.json")); got != `{"n": 1}` {
		t.Errorf("the first step's input.json = %q", got)
	}
	if split.Owner != j.Owner || split.Limits.MemoryMiB != 512 || split.Grace != m.opts.Grace || split.Timeout != time.Hour {
		t.Errorf("split's spec: owner %d limits %+v grace %s timeout %s", split.Owner, split.Limits, split.Grace, split.Timeout)
	}
	if !slices.Contains(split.Env, "JOBFS_STEP=split") || !slices.Contains(split.Env, "JOBFS_JOB="+j.Name) {
		t.Errorf("split's env = %v", split.Env)
	}
	if log := readFile(t, m.RunLogPath(j.ID, id)); !strings.Contains(log, "[split] splitting\n") {
		t.Errorf("the run's log = %q, want split's line prefixed", log)
	}
	if log := readFile(t, filepath.Join(m.RunDir(j.ID, id), "steps", "split", "log")); log != "splitting\n" {
		t.Errorf("split's log = %q", log)
	}
}

// TestFakeMiddleStepFails: a failing middle step fails the run with its
// exit code and reason (also the last line of the run's log), and the step
// after it never reaches the backend and is SKIPPED.
func TestFakeMiddleStepFails(t *testing.T) {
	t.Parallel()
	b := newFakeBackend(map[string]fakeAction{
		"a": exits(0, "a ok", map[string]string{"x": "1"}),
		"b": exits(2, "b breaks", nil),
		"c": exits(0, "c ok", nil),
	})
	m, j := fakeChainJob(t, b, "middle", "a <- ia\nb <- ib\nc <- ic\na -> b -> c\n", "ia", "ib", "ic")
	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	if r.Status != Failed || codeString(r.ExitCode) != "2" || r.Error != "step b exited with code 2" {
		t.Errorf("run = %s exit %s %q, want FAILED exit 2 \"step b exited with code 2\"", r.Status, codeString(r.ExitCode), r.Error)
	}
	for label, want := range map[string]Status{"a": Completed, "b": Failed, "c": Skipped} {
		if s := stepStatus(r, label); s != want {
			t.Errorf("step %s = %s, want %s", label, s, want)
		}
	}
	if got := b.labels(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("steps run = %v, want [a b]", got)
	}
	if got := treeFiles(b.spec(t, "b").Input); !slices.Equal(got, []string{"x"}) {
		t.Errorf("b's input = %v, want a's output [x]", got)
	}
	lines := strings.Split(strings.TrimSuffix(readFile(t, m.RunLogPath(j.ID, id)), "\n"), "\n")
	if last := lines[len(lines)-1]; last != "jobfs: step b exited with code 2" {
		t.Errorf("the run log's last line = %q, want the error", last)
	}
}

// TestFakeStop: a stop of a run whose first step hangs cancels the step
// (CANCELLED, its SIGTERM exit code), skips the next one and ends the run
// CANCELLED; a kill reaches the backend as exec.ErrKill.
func TestFakeStop(t *testing.T) {
	t.Parallel()
	for _, kill := range []bool{false, true} {
		b := newFakeBackend(map[string]fakeAction{"a": hang, "b": exits(0, "b", nil)})
		m, j := fakeChainJob(t, b, "stop", "a <- ia\nb <- ib\na -> b\n", "ia", "ib")
		id := mustTrigger(t, m, j.ID, "{}")
		<-b.started
		if s := runStatus(t, m, j.ID, id); s != Running {
			t.Errorf("run with its step started = %s, want RUNNING", s)
		}
		mustOK(t, m.Stop(j.ID, id, kill))
		r := waitRun(t, m, j.ID, id)
		code, reason := "143", "stopped (ctl)"
		if kill {
			code, reason = "137", "killed (ctl)"
		}
		if r.Status != Cancelled || r.Error != reason || codeString(r.ExitCode) != code {
			t.Errorf("kill %v: run = %s exit %s %q, want CANCELLED exit %s %q", kill, r.Status, codeString(r.ExitCode), r.Error, code, reason)
		}
		if sa, sb := stepStatus(r, "a"), stepStatus(r, "b"); sa != Cancelled || sb != Skipped {
			t.Errorf("kill %v: steps a %s, b %s; want CANCELLED, SKIPPED", kill, sa, sb)
		}
		if got := b.labels(); !slices.Equal(got, []string{"a"}) {
			t.Errorf("kill %v: steps run = %v, want [a]", kill, got)
		}
	}
}

// TestFakeStopThenKill: a kill during a stop's grace (the step ignores the
// SIGTERM) ends the step at once, and the run's error says both.
func TestFakeStopThenKill(t *testing.T) {
	t.Parallel()
	ignoresStop := func(ctx context.Context, s StepSpec) StepResult {
		_, _ = s.Log.Write([]byte("waiting\n")) // never fails
		<-ctx.Done()
		for !exec.Killed(ctx) {
			time.Sleep(5 * time.Millisecond)
		}
		return StepResult{Outcome: exec.Cancelled, ExitCode: 137}
	}
	b := newFakeBackend(map[string]fakeAction{"a": ignoresStop, "b": exits(0, "b", nil)})
	m, j := fakeChainJob(t, b, "stopkill", "a <- ia\nb <- ib\na -> b\n", "ia", "ib")
	id := mustTrigger(t, m, j.ID, "{}")
	<-b.started
	mustOK(t, m.Stop(j.ID, id, false))
	mustOK(t, m.Stop(j.ID, id, true))
	r := waitRun(t, m, j.ID, id)
	want := "stopped (ctl), then killed (ctl) within its grace"
	if r.Status != Cancelled || r.Error != want || codeString(r.ExitCode) != "137" {
		t.Errorf("run = %s exit %s %q, want CANCELLED exit 137 %q", r.Status, codeString(r.ExitCode), r.Error, want)
	}
}

// TestFakeTimeout: a run whose step outlives config/timeout ends TIMEOUT
// with exit code 124 and says after how long.
func TestFakeTimeout(t *testing.T) {
	t.Parallel()
	b := newFakeBackend(map[string]fakeAction{"a": hang, "b": exits(0, "b", nil)})
	m, j := fakeChainJob(t, b, "timeout", "a <- ia\nb <- ib\na -> b\n", "ia", "ib")
	// 1 s, not less: the clock runs from the run's start, and on a loaded
	// machine a 50 ms one ran out before step a reached the backend.
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "1s\n"))
	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	want := "timed out after 1s (config/timeout)"
	if r.Status != Timeout || codeString(r.ExitCode) != "124" || r.Error != want {
		t.Errorf("run = %s exit %s %q, want TIMEOUT exit 124 %q", r.Status, codeString(r.ExitCode), r.Error, want)
	}
	if sa, sb := stepStatus(r, "a"), stepStatus(r, "b"); sa != Timeout || sb != Skipped {
		t.Errorf("steps a %s, b %s; want TIMEOUT, SKIPPED", sa, sb)
	}
	if spec := b.spec(t, "a"); spec.Timeout.String() != "1s" {
		t.Errorf("the step's spec has timeout %s, want 1s", spec.Timeout)
	}
}

// TestFakeNotStarted: a step the backend cannot start fails the run with
// the backend's reason.
func TestFakeNotStarted(t *testing.T) {
	t.Parallel()
	b := newFakeBackend(map[string]fakeAction{})
	m, j := fakeChainJob(t, b, "nostart", "a <- ia\n", "ia")
	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	if want := "step a: the fake has no action for a"; r.Status != Failed || r.Error != want {
		t.Errorf("run = %s %q, want FAILED %q", r.Status, r.Error, want)
	}
}

// TestFakeOOMExitCode: a step the OOM killer hit whose own process exited
// 0 (a shell whose child was killed) fails with the OOM killer's code,
// never 0; one that died of it keeps its own.
func TestFakeOOMExitCode(t *testing.T) {
	t.Parallel()
	b := newFakeBackend(map[string]fakeAction{
		"a": func(context.Context, StepSpec) StepResult { return StepResult{Outcome: exec.Exited, OOM: true} },
		"b": func(context.Context, StepSpec) StepResult {
			return StepResult{Outcome: exec.Exited, ExitCode: 2, OOM: true}
		},
	})
	for chain, want := range map[string]string{"a <- ia\n": "137", "b <- ib\n": "2"} {
		m, j := fakeChainJob(t, b, "oom"+chain[:1], chain, "i"+chain[:1])
		r := waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
		if r.Status != Failed || codeString(r.ExitCode) != want || !strings.Contains(r.Error, "out of memory") {
			t.Errorf("%s: run = %s exit %s %q, want FAILED exit %s, out of memory", chain, r.Status, codeString(r.ExitCode), r.Error, want)
		}
	}
}

// endJobBackend records the jobs EndJob frees.
type endJobBackend struct {
	*fakeBackend
	ended []string
}

func (b *endJobBackend) EndJob(job string) { b.ended = append(b.ended, job) }

// TestIdleJobKeepsTheLatest: the backend folders of the idleJobsKept jobs
// idle most recently are kept; the one idle longest is freed first, and a
// job with an active run is never freed.
func TestIdleJobKeepsTheLatest(t *testing.T) {
	b := &endJobBackend{fakeBackend: newFakeBackend(nil)}
	m := &Manager{backend: b, perJob: map[string]int{}}
	for i := range idleJobsKept {
		m.idleJob(strconv.Itoa(i))
	}
	m.idleJob("0") // idle again: now the latest
	m.perJob["1"] = 1
	m.idleJob("new")  // one too many: "1" is the oldest but runs again, so it is skipped
	m.idleJob("new2") // then "2" goes
	if want := []string{"2"}; !slices.Equal(b.ended, want) {
		t.Errorf("EndJob was called for %v, want %v", b.ended, want)
	}
	if len(m.idle) != idleJobsKept || m.idle[len(m.idle)-1] != "new2" || !slices.Contains(m.idle, "0") {
		t.Errorf("idle = %v, want %d jobs ending with new2, 0 among them", m.idle, idleJobsKept)
	}
	m.idleJob("1") // still active: not idle
	if slices.Contains(m.idle, "1") {
		t.Errorf("a job with an active run was made idle: %v", m.idle)
	}
}
