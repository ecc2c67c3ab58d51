package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/boltstore"
)

const echoScript = `#!/bin/sh
echo "step $JOBFS_STEP of run $JOBFS_RUN"
echo "to stderr" >&2
cp "$1/input.json" "$2/copy.json"
`

func TestTriggerScriptCompletes(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "echo", echoScript)
	payload := "{\"city\": \"Zürich\",\n \"n\": [1, 2.50]}  \n"

	id := mustTrigger(t, m, j.ID, payload)
	if id != 1 {
		t.Errorf("first run id = %d, want 1", id)
	}
	r := waitRun(t, m, j.ID, id)
	if r.Status != Completed || r.ExitCode == nil || *r.ExitCode != 0 || r.Error != "" {
		t.Fatalf("run = %s exit %s error %q, want COMPLETED exit 0", r.Status, codeString(r.ExitCode), r.Error)
	}
	if r.Trigger != Manual || r.Queued.IsZero() || r.StartedAt.IsZero() || r.EndedAt.Before(r.StartedAt) {
		t.Errorf("run times/trigger = %+v", r)
	}
	dir := m.RunDir(j.ID, id)
	if got := readFile(t, filepath.Join(dir, "input", "input.json")); got != payload {
		t.Errorf("input.json = %q, want the payload byte for byte %q", got, payload)
	}
	if got, want := readFile(t, m.RunLogPath(j.ID, id)), "step script of run 1\nto stderr\n"; got != want {
		t.Errorf("run log = %q, want %q", got, want)
	}
	if r.Result != filepath.Join("output", "copy.json") {
		t.Errorf("Result = %q, want output/copy.json", r.Result)
	}
	if got := readFile(t, filepath.Join(dir, r.Result)); got != payload {
		t.Errorf("result = %q, want %q", got, payload)
	}
	if latest, _ := m.LatestRun(j.ID); latest != id {
		t.Errorf("LatestRun = %d, want %d", latest, id)
	}
	if m.Busy(j.ID) {
		t.Error("job still busy after its run ended")
	}
	log := strings.Join(jobLogLines(t, m, j.ID), "\n")
	for _, want := range []string{"run 1 queued (manual)", "run 1 started", "run 1 COMPLETED exit 0"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, log)
		}
	}
}

func TestTriggerBadPayload(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "bad", "#!/bin/sh\n")
	for _, p := range []string{"not json", `{"a": 1`, `{} {}`} {
		_, err := m.Trigger(j.ID, []byte(p), Manual)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Trigger(%q) = %v, want ErrInvalid", p, err)
		}
		if line := lastJobLogLine(t, m, j.ID); !strings.Contains(line, " data rejected: ") {
			t.Errorf("Trigger(%q): last job log line %q, want `data rejected: ...`", p, line)
		}
	}
	if ids, _ := m.Runs(j.ID); len(ids) != 0 {
		t.Errorf("refused payloads recorded runs %v", ids)
	}
	if m.Busy(j.ID) {
		t.Error("job busy after refused triggers")
	}
	// The refusals did not use up run ids.
	if id := mustTrigger(t, m, j.ID, "{}"); id != 1 {
		t.Errorf("first accepted run has id %d, want 1", id)
	}
	waitRun(t, m, j.ID, 1)
	if _, err := m.Trigger("nojob", []byte("{}"), Manual); !errors.Is(err, ErrNotFound) {
		t.Errorf("Trigger of a missing job = %v, want ErrNotFound", err)
	}
}

func TestTriggerBlankPayload(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "blank", echoScript)
	for i, p := range []string{"", " \n\t\n"} {
		id := mustTrigger(t, m, j.ID, p)
		r := waitRun(t, m, j.ID, id)
		if r.Status != Completed {
			t.Fatalf("bare trigger %d: %s %s", i, r.Status, r.Error)
		}
		got := readFile(t, filepath.Join(m.RunDir(j.ID, id), "input", "input.json"))
		if strings.TrimSpace(got) != "{}" {
			t.Errorf("bare trigger %q: input.json = %q, want {}", p, got)
		}
	}
}

func TestTriggerMovesStagedInput(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "staged", "#!/bin/sh\ncd \"$1\" && ls -R > \"$2/listing\"\n")
	stage := m.StageDir(j.ID)
	mustOK(t, os.WriteFile(filepath.Join(stage, "data.csv"), []byte("a,b\n1,2\n"), 0o644))
	mustOK(t, os.MkdirAll(filepath.Join(stage, "images"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(stage, "images", "x.png"), []byte("png"), 0o644))

	id := mustTrigger(t, m, j.ID, `{"file": "data.csv"}`)
	if ents, _ := os.ReadDir(stage); len(ents) != 0 {
		t.Errorf("staging folder still holds %d entries after the trigger", len(ents))
	}
	r := waitRun(t, m, j.ID, id)
	if r.Status != Completed {
		t.Fatalf("run %s: %s", r.Status, r.Error)
	}
	in := filepath.Join(m.RunDir(j.ID, id), "input")
	if got := readFile(t, filepath.Join(in, "data.csv")); got != "a,b\n1,2\n" {
		t.Errorf("input/data.csv = %q", got)
	}
	if got := readFile(t, filepath.Join(in, "images", "x.png")); got != "png" {
		t.Errorf("input/images/x.png = %q", got)
	}
	listing := readFile(t, filepath.Join(m.RunDir(j.ID, id), "output", "listing"))
	for _, name := range []string{"data.csv", "images", "input.json", "x.png"} {
		if !strings.Contains(listing, name) {
			t.Errorf("the step did not see %s in its input:\n%s", name, listing)
		}
	}
	// The next run starts with an empty input again.
	id2 := mustTrigger(t, m, j.ID, "")
	waitRun(t, m, j.ID, id2)
	if _, err := os.Stat(filepath.Join(m.RunDir(j.ID, id2), "input", "data.csv")); !os.IsNotExist(err) {
		t.Errorf("run 2 got run 1's staged file: %v", err)
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{})
	tests := []struct {
		name   string
		script string // "" leaves config/script unset
		code   *int
		errHas string
	}{
		{"exit 3", "#!/bin/sh\necho before\nexit 3\n", intp(3), "step script exited with code 3"},
		{"killed", "#!/bin/sh\nkill -KILL $$\n", intp(137), "step script was killed by signal 9 (killed)"},
		{"missing interpreter", "#!/nonexistent/interpreter\n", nil, "cannot start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustCreateJob(t, m, strings.ReplaceAll(tt.name, " ", "-"))
			mustOK(t, m.WriteSetting(j.ID, "config/type", "script"))
			if tt.script != "" {
				mustOK(t, m.WriteSetting(j.ID, "config/script", tt.script))
			}
			id := mustTrigger(t, m, j.ID, "{}")
			r := waitRun(t, m, j.ID, id)
			if r.Status != Failed {
				t.Errorf("status = %s, want FAILED", r.Status)
			}
			if codeString(r.ExitCode) != codeString(tt.code) {
				t.Errorf("exit code = %s, want %s", codeString(r.ExitCode), codeString(tt.code))
			}
			if !strings.Contains(r.Error, tt.errHas) {
				t.Errorf("error = %q, want it to contain %q", r.Error, tt.errHas)
			}
			// The reason is the run log's last line too.
			if log := readFile(t, m.RunLogPath(j.ID, id)); !strings.HasSuffix(log, "jobfs: "+r.Error+"\n") {
				t.Errorf("run log %q does not end with the error", log)
			}
			if line := lastJobLogLine(t, m, j.ID); !strings.Contains(line, "run 1 FAILED") {
				t.Errorf("job log line %q, want run 1 FAILED", line)
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{Grace: 100 * time.Millisecond})
	script := "#!/bin/sh\ntrap 'echo TERM ignored' TERM\necho $$ > pid\nwhile :; do sleep 0.05; done\n"
	j := scriptJob(t, m, "timeout", script)
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "1s"))

	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	if r.Status != Timeout || codeString(r.ExitCode) != "124" {
		t.Fatalf("run = %s exit %s (%s), want TIMEOUT exit 124", r.Status, codeString(r.ExitCode), r.Error)
	}
	if !strings.Contains(r.Error, "timed out after 1s") {
		t.Errorf("error = %q, want `timed out after 1s ...`", r.Error)
	}
	pid := readPid(t, filepath.Join(m.RunDir(j.ID, id), "app", "pid"))
	eventually(t, "the TERM-ignoring script is killed", func() bool { return !alive(pid) })
}

// TestRunLogLineAfterPartial: jobfs's own line after a step's output that
// ended without a newline starts a line of its own.
func TestRunLogLineAfterPartial(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{Grace: 100 * time.Millisecond})
	j := scriptJob(t, m, "partial", "#!/bin/sh\nprintf partial\nsleep 10\n")
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "1s"))
	id := mustTrigger(t, m, j.ID, "{}")
	if r := waitRun(t, m, j.ID, id); r.Status != Timeout {
		t.Fatalf("run = %s (%s), want TIMEOUT", r.Status, r.Error)
	}
	b, err := os.ReadFile(m.RunLogPath(j.ID, id))
	if err != nil {
		t.Fatal(err)
	}
	if log := string(b); !strings.Contains(log, "partial\njobfs: timed out after 1s") {
		t.Errorf("run log = %q, want partial, then jobfs's line on a line of its own", log)
	}
}

// TestMaxActiveQueues: with room for one run, three triggers run one at a
// time in the order they came; the others wait PENDING.
func TestMaxActiveQueues(t *testing.T) {
	t.Parallel()
	clock := &tickClock{base: t0}
	m := newTestManager(t, Options{MaxActive: 1, Now: clock.Now})
	g := newGate(t)
	j := scriptJob(t, m, "queue", "#!/bin/sh\n"+g.wait())
	other := scriptJob(t, m, "queue-other", "#!/bin/sh\n"+g.wait())

	ids := []uint64{mustTrigger(t, m, j.ID, "{}"), mustTrigger(t, m, other.ID, "{}"), mustTrigger(t, m, j.ID, "{}")}
	jobOf := []string{j.ID, other.ID, j.ID}
	eventually(t, "the first run starts", func() bool { return runStatus(t, m, j.ID, ids[0]) == Running })
	for i := 1; i < 3; i++ {
		if st := runStatus(t, m, jobOf[i], ids[i]); st != Pending {
			t.Errorf("trigger %d is %s while the first runs, want PENDING", i+1, st)
		}
	}
	g.open(t)
	var runs []Run
	for i := range ids {
		r := waitRun(t, m, jobOf[i], ids[i])
		if r.Status != Completed {
			t.Fatalf("trigger %d: %s %s", i+1, r.Status, r.Error)
		}
		runs = append(runs, r)
	}
	for i := 1; i < len(runs); i++ {
		prev, cur := runs[i-1], runs[i]
		if !prev.Queued.Before(cur.Queued) {
			t.Errorf("trigger %d queued at %v, not after trigger %d at %v", i+1, cur.Queued, i, prev.Queued)
		}
		if !prev.EndedAt.Before(cur.StartedAt) {
			t.Errorf("trigger %d started at %v before trigger %d ended at %v", i+1, cur.StartedAt, i, prev.EndedAt)
		}
	}
}

func TestDeleteJob(t *testing.T) {
	m := newTestManager(t, Options{})
	g := newGate(t)
	j := scriptJob(t, m, "delete-me", "#!/bin/sh\n"+g.wait())
	id := mustTrigger(t, m, j.ID, "{}")

	err := m.DeleteJob(j.Owner, j.Name)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("DeleteJob while a run is active = %v, want ErrBusy", err)
	}
	if line := lastJobLogLine(t, m, j.ID); !strings.Contains(line, "delete rejected: ") {
		t.Errorf("job log line %q, want `delete rejected: ...`", line)
	}
	// A reset is a write of the default: taken while a run is active.
	mustOK(t, m.ResetSetting(j.ID, "config/timeout"))
	if err := m.DeleteRun(j.ID, id); !errors.Is(err, ErrBusy) {
		t.Errorf("DeleteRun of the active run = %v, want ErrBusy", err)
	}
	g.open(t)
	if r := waitRun(t, m, j.ID, id); r.Status != Completed {
		t.Fatalf("run %s: %s", r.Status, r.Error)
	}

	mustOK(t, m.DeleteJob(j.Owner, j.Name))
	if _, err := os.Stat(filepath.Join(m.StateDir(), "jobs", j.ID)); !os.IsNotExist(err) {
		t.Errorf("job folder still there after delete: %v", err)
	}
	if _, err := m.Job(j.Owner, j.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job after delete = %v, want ErrNotFound", err)
	}
	if _, err := m.JobByID(j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("JobByID after delete = %v, want ErrNotFound", err)
	}
	if err := m.DeleteJob(j.Owner, j.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteJob = %v, want ErrNotFound", err)
	}
	// The name is free for a new job, which starts from scratch.
	j2 := mustCreateJob(t, m, "delete-me")
	if j2.ID == j.ID {
		t.Error("a new job reused the deleted job's id")
	}
	if ids, _ := m.Runs(j2.ID); len(ids) != 0 {
		t.Errorf("new job has runs %v", ids)
	}
}

func TestDeleteRun(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "runs", "#!/bin/sh\necho out > \"$2/out.txt\"\n")
	for i := 0; i < 2; i++ {
		waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
	}
	mustOK(t, m.DeleteRun(j.ID, 1))
	if _, err := os.Stat(m.RunDir(j.ID, 1)); !os.IsNotExist(err) {
		t.Errorf("run 1 folder still there: %v", err)
	}
	if ids, _ := m.Runs(j.ID); len(ids) != 1 || ids[0] != 2 {
		t.Errorf("Runs = %v, want [2]", ids)
	}
	if err := m.DeleteRun(j.ID, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteRun = %v, want ErrNotFound", err)
	}
	if line := lastJobLogLine(t, m, j.ID); !strings.HasSuffix(line, " run 1 deleted") {
		t.Errorf("job log line %q, want `run 1 deleted`", line)
	}
	mustOK(t, m.DeleteRun(j.ID, 2))
	if id := mustTrigger(t, m, j.ID, "{}"); id != 3 {
		t.Errorf("run after deleting 1 and 2 has id %d, want 3", id)
	}
	waitRun(t, m, j.ID, 3)
}

// A lowered config/keep prunes at once, not at the next run's end.
func TestKeepLoweredPrunesAtOnce(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "lowered", "#!/bin/sh\n")
	for i := 0; i < 4; i++ {
		waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
	}
	mustOK(t, m.WriteSetting(j.ID, "config/keep", "1"))
	eventually(t, "runs 1 to 3 are pruned once config/keep is 1", func() bool {
		ids, _ := m.Runs(j.ID)
		_, err := os.Stat(m.RunDir(j.ID, 3))
		return len(ids) == 1 && ids[0] == 4 && os.IsNotExist(err)
	})
	mustOK(t, m.ResetSetting(j.ID, "config/keep")) // back to 100: nothing more goes
	if ids, _ := m.Runs(j.ID); len(ids) != 1 {
		t.Errorf("Runs after the reset = %v, want [4]", ids)
	}
}

func TestKeepPrunesOldRuns(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "prune", "#!/bin/sh\n")
	mustOK(t, m.WriteSetting(j.ID, "config/keep", "2"))
	for i := 0; i < 4; i++ {
		waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
	}
	// Pruning follows the end of a run, so Wait may return before it.
	var ids []uint64
	eventually(t, "runs 1 and 2 are pruned", func() bool {
		ids, _ = m.Runs(j.ID)
		_, err := os.Stat(m.RunDir(j.ID, 2))
		return len(ids) <= 2 && os.IsNotExist(err)
	})
	if len(ids) != 2 || ids[0] != 3 || ids[1] != 4 {
		t.Errorf("Runs = %v, want [3 4]", ids)
	}
	for _, id := range []uint64{1, 2} {
		if _, err := os.Stat(m.RunDir(j.ID, id)); !os.IsNotExist(err) {
			t.Errorf("pruned run %d folder still there: %v", id, err)
		}
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{MaxActive: 1, Grace: time.Hour})
	g := newGate(t)
	j := scriptJob(t, m, "stop", "#!/bin/sh\ntrap '' TERM\necho $$ > pid\n"+g.wait())
	running := mustTrigger(t, m, j.ID, "{}")
	queued := mustTrigger(t, m, j.ID, "{}")
	pidFile := filepath.Join(m.RunDir(j.ID, running), "app", "pid")
	eventually(t, "the first run ignores TERM", func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	})

	mustOK(t, m.Stop(j.ID, queued, false))
	if r := waitRun(t, m, j.ID, queued); r.Status != Cancelled || !r.StartedAt.IsZero() {
		t.Errorf("stopped queued run = %s started %v, want CANCELLED never started", r.Status, r.StartedAt)
	}
	// kill skips the (hour long) grace of a TERM-ignoring step.
	mustOK(t, m.Stop(j.ID, running, true))
	r := waitRun(t, m, j.ID, running)
	if r.Status != Cancelled || codeString(r.ExitCode) != "137" {
		t.Errorf("killed run = %s exit %s (%s), want CANCELLED 137", r.Status, codeString(r.ExitCode), r.Error)
	}
	pid := readPid(t, pidFile)
	eventually(t, "the killed step is gone", func() bool { return !alive(pid) })
	if err := m.Stop(j.ID, running, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("Stop of an ended run = %v, want ErrInvalid", err)
	}
}

func TestResultTooLarge(t *testing.T) {
	m := newTestManager(t, Options{MaxResult: 1_000_000})
	j := scriptJob(t, m, "big", "#!/bin/sh\nhead -c 1000000 /dev/zero > \"$2/a\"\nhead -c 500000 /dev/zero > \"$2/b\"\n")
	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	if want := "Job result is too large: 1.5 MB exceeds the 1 MB limit."; r.Status != Failed || r.Error != want {
		t.Errorf("run = %s %q, want FAILED %q", r.Status, r.Error, want)
	}
	if r.Result != "" {
		t.Errorf("Result = %q, want none", r.Result)
	}
	if ents, _ := os.ReadDir(filepath.Join(m.RunDir(j.ID, id), "output")); len(ents) != 0 {
		t.Errorf("output keeps %d files after a too large result", len(ents))
	}
}

func TestResultZip(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "zip", "#!/bin/sh\necho a > \"$2/a.txt\"\nmkdir \"$2/sub\"\necho b > \"$2/sub/b.txt\"\n")
	r := waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
	if r.Status != Completed || r.Result != "result.zip" {
		t.Errorf("run = %s result %q, want COMPLETED result.zip", r.Status, r.Result)
	}
}

// TestTriggerChainsImage runs a chains job of one image: the entrypoint
// gets the run's input and output folders.
func TestTriggerChainsImage(t *testing.T) {
	repos := t.TempDir()
	m := newTestManager(t, Options{ReposDir: repos})
	makeImage(t, repos, currentUser(t), "builder", "#!/bin/sh\necho \"building in $(pwd)\"\ntr a-z A-Z < \"$1/input.json\" > \"$2/report.txt\"\n", 0o755)
	j := mustCreateJob(t, m, "chains-run")
	mustOK(t, m.WriteSetting(j.ID, "config/chains", "builder\n"))
	id := mustTrigger(t, m, j.ID, `{"a":"b"}`)
	r := waitRun(t, m, j.ID, id)
	if r.Status != Completed || r.Result != filepath.Join("output", "report.txt") {
		t.Fatalf("run = %s %q result %q", r.Status, r.Error, r.Result)
	}
	if got := readFile(t, filepath.Join(m.RunDir(j.ID, id), r.Result)); got != `{"A":"B"}` {
		t.Errorf("result = %q", got)
	}
	if log := readFile(t, m.RunLogPath(j.ID, id)); !strings.Contains(log, "building in "+filepath.Join(repos, currentUser(t), "builder")) {
		t.Errorf("log = %q, want the step to run in its image folder", log)
	}
}

func TestRenameJob(t *testing.T) {
	m := newTestManager(t, Options{})
	a := mustCreateJob(t, m, "a")
	mustCreateJob(t, m, "b")
	if err := m.RenameJob(a.Owner, a.Name, jobName("b")); !errors.Is(err, ErrExists) {
		t.Errorf("rename onto an existing job = %v, want ErrExists", err)
	}
	if err := m.RenameJob(a.Owner, a.Name, "bad name"); !errors.Is(err, ErrInvalid) {
		t.Errorf("rename to a bad name = %v, want ErrInvalid", err)
	}
	if line := lastJobLogLine(t, m, a.ID); !strings.Contains(line, "rename rejected: ") {
		t.Errorf("job log line %q, want `rename rejected: ...`", line)
	}
	if err := m.RenameJob(a.Owner, "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("rename of a missing job = %v, want ErrNotFound", err)
	}
	mustOK(t, m.RenameJob(a.Owner, a.Name, jobName("c")))
	if j, err := m.Job(a.Owner, jobName("c")); err != nil || j.ID != a.ID {
		t.Errorf("renamed job = %+v, %v", j, err)
	}
	if v, _ := m.ReadSetting(a.ID, "name"); v != jobName("c")+"\n" {
		t.Errorf("name of the renamed job reads %q", v)
	}
	if _, err := m.CreateJob(a.Owner, jobName("c")); !errors.Is(err, ErrExists) {
		t.Errorf("CreateJob of a taken name = %v, want ErrExists", err)
	}
	if _, err := m.CreateJob(a.Owner, ".bad"); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateJob of a bad name = %v, want ErrInvalid", err)
	}
}

// readPid reads a pid a script wrote with `echo $$ > file`.
func readPid(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestRunMakesJobDir0700: a run of a job whose folder is missing (a
// cluster node meets a job another node created) makes it 0700, not the
// 0755 of the run folder's MkdirAll.
func TestRunMakesJobDir0700(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "nodir")
	mustOK(t, m.WriteSetting(j.ID, "config/type", "script"))
	mustOK(t, m.WriteSetting(j.ID, "config/script", "#!/bin/sh\ntrue\n"))
	if err := os.RemoveAll(m.jobDir(j.ID)); err != nil {
		t.Fatal(err)
	}
	waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
	if st, err := os.Stat(m.jobDir(j.ID)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the job's folder made by its run: %v (%v), want 0700", st.Mode().Perm(), err)
	}
}

// runIDsCounter is the bbolt store, counting the listings of every run id
// of a job (RunIDs).
type runIDsCounter struct {
	Store
	listed atomic.Int64
}

func (c *runIDsCounter) RunIDs(id string) ([]uint64, error) {
	c.listed.Add(1)
	return c.Store.RunIDs(id)
}

// TestRunEndListsNoRunIDs: a run's end does not list all of a job's run
// ids while it has no more runs than config/keep: that cost grew with
// every run kept (with fs's stat of data, which reads runs by number now) (trigger p50 30 ms and 27 runs/s at 60,000 runs
// kept, against 12.6 ms and 104 once gone). Past keep, pruning lists them.
func TestRunEndListsNoRunIDs(t *testing.T) {
	dir := t.TempDir()
	bolt, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := &runIDsCounter{Store: bolt}
	m := newTestManager(t, Options{StateDir: dir, Store: store})
	j := scriptJob(t, m, "many", "#!/bin/sh\n")
	mustOK(t, m.WriteSetting(j.ID, "config/keep", "3"))
	for i := 0; i < 4; i++ {
		waitRun(t, m, j.ID, mustTrigger(t, m, j.ID, "{}"))
	}
	eventually(t, "run 1 is pruned past config/keep", func() bool {
		_, err := m.Run(j.ID, 1)
		return errors.Is(err, ErrNotFound)
	})
	// Runs end in order, so run 1's prune is the fourth run's, the last.
	if n := store.listed.Load(); n != 1 {
		t.Errorf("four runs with config/keep 3 listed the job's run ids %d times, want 1 (the prune past keep)", n)
	}
}
