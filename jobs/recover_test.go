package jobs

import (
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/jobs/boltstore"
)

const stoppedError = "jobfs stopped while the run was active"

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// startOrphanGroup starts what a crashed daemon leaves: a process group of
// a leader and a background child, marked as this test binary's. exited is
// closed once the leader is reaped, with its Wait error in *waitErr.
func startOrphanGroup(t *testing.T) (pgid int, exited <-chan struct{}, waitErr *error) {
	t.Helper()
	cmd := osexec.Command("/bin/sh", "-c", "sleep 100 & exec sleep 101")
	cmd.Env = []string{leakMarker() + "orphans", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	mustOK(t, cmd.Start())
	done := make(chan struct{})
	waitErr = new(error)
	go func() {
		*waitErr = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	eventually(t, "both processes of the group run", func() bool { return len(groupMembers(cmd.Process.Pid)) == 2 })
	return cmd.Process.Pid, done, waitErr
}

// TestRecoverActiveRuns: runs the previous daemon left RUNNING or PENDING
// end FAILED on start, and the process groups they recorded (for the run
// or for a running step) are killed.
func TestRecoverActiveRuns(t *testing.T) {
	dir := t.TempDir()
	type orphans struct {
		pgid    int
		members []int
		exited  <-chan struct{}
		waitErr *error
	}
	var groups []orphans
	for i := 0; i < 2; i++ {
		pgid, exited, waitErr := startOrphanGroup(t)
		groups = append(groups, orphans{pgid, groupMembers(pgid), exited, waitErr})
	}

	s, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	mustOK(t, err)
	j := mustStoreJob(t, s, "crashed1", uint32(os.Getuid()), jobName("crashed"))
	mustCreateRun(t, s, j.ID, Run{Status: Completed, Queued: t0, ExitCode: intp(0)})
	runLevel := mustCreateRun(t, s, j.ID, Run{Status: Running, Trigger: Manual, Queued: t0.Add(time.Second),
		StartedAt: t0.Add(time.Second), Pgid: groups[0].pgid, PgidStart: exec.ProcessStart(groups[0].pgid)})
	stepLevel := mustCreateRun(t, s, j.ID, Run{Status: Running, Trigger: Schedule, Queued: t0.Add(2 * time.Second),
		StartedAt: t0.Add(2 * time.Second), Steps: []Step{
			{Label: "fetch", Status: Completed, ExitCode: intp(0)},
			{Label: "build", Status: Running, Pgid: groups[1].pgid, PgidStart: exec.ProcessStart(groups[1].pgid)},
			{Label: "render", Status: Pending},
		}})
	pending := mustCreateRun(t, s, j.ID, Run{Status: Pending, Trigger: Manual, Queued: t0.Add(3 * time.Second)})
	mustOK(t, s.Close())
	active := []uint64{runLevel.ID, stepLevel.ID, pending.ID}
	for _, id := range active {
		mustOK(t, os.MkdirAll(filepath.Join(dir, "jobs", j.ID, "runs", itoa(id)), 0o755))
	}

	m := newTestManager(t, Options{StateDir: dir})

	for i, g := range groups {
		select {
		case <-g.exited:
			var ee *osexec.ExitError
			if err := *g.waitErr; !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("group %d: leader ended with %v, want SIGKILL", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("New did not kill process group %d that the crashed run recorded", i)
		}
		for _, pid := range g.members {
			eventually(t, "every process of the group is gone", func() bool { return !alive(pid) })
		}
	}
	for _, id := range active {
		r, err := m.Run(j.ID, id)
		mustOK(t, err)
		if r.Status != Failed || r.Error != stoppedError || r.EndedAt.IsZero() {
			t.Errorf("run %d after restart = %s %q ended %v, want FAILED %q", id, r.Status, r.Error, r.EndedAt, stoppedError)
		}
		if log := readFile(t, m.RunLogPath(j.ID, id)); log != "jobfs: "+stoppedError+"\n" {
			t.Errorf("run %d log = %q", id, log)
		}
	}
	r, _ := m.Run(j.ID, stepLevel.ID)
	for label, want := range map[string]Status{"fetch": Completed, "build": Failed, "render": Skipped} {
		if st, ok := r.Step(label); !ok || st.Status != want {
			t.Errorf("step %s after restart = %+v, want %s", label, st, want)
		}
	}
	if r, _ := m.Run(j.ID, 1); r.Status != Completed {
		t.Errorf("recovery touched the finished run 1: %s", r.Status)
	}
	log := strings.Join(jobLogLines(t, m, j.ID), "\n")
	for _, id := range active {
		if want := "run " + itoa(id) + " FAILED: " + stoppedError; !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, log)
		}
	}
	if m.Busy(j.ID) {
		t.Error("job busy after recovery")
	}
	refs, err := m.Store().ActiveRuns()
	if err != nil || len(refs) != 0 {
		t.Errorf("ActiveRuns after recovery = %v, %v", refs, err)
	}
	mustOK(t, m.WriteSetting(j.ID, "config/type", "script"))
	mustOK(t, m.WriteSetting(j.ID, "config/script", "#!/bin/sh\n"))
	if id := mustTrigger(t, m, j.ID, ""); id != 5 {
		t.Errorf("first run after recovery has id %d, want 5", id)
	}
	waitRun(t, m, j.ID, 5)
}

// TestRecoverKillsWhatACrashLeft simulates a crash: the store file as it is
// while a run executes (a consistent bbolt snapshot) is opened by a new
// Manager, whose recovery must kill the run's processes. A daemon killed
// with -9 leaves exactly this file behind.
func TestRecoverKillsWhatACrashLeft(t *testing.T) {
	t.Parallel()
	const script = "#!/bin/sh\necho $$ > \"$2/../pid\"\nsleep 100 &\necho $! > \"$2/../bgpid\"\nwait\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, m testManager, repos string) (Job, string)
	}{
		{"script", func(t *testing.T, m testManager, _ string) (Job, string) {
			j := scriptJob(t, m, "crash-script", script)
			return j, "" // the single step's folders are the run's
		}},
		{"two step chain", func(t *testing.T, m testManager, repos string) (Job, string) {
			makeImage(t, repos, currentUser(t), "sleeper", script, 0o755)
			makeImage(t, repos, currentUser(t), "after", "#!/bin/sh\n", 0o755)
			j := mustCreateJob(t, m, "crash-chain")
			mustOK(t, m.WriteSetting(j.ID, "config/chains", "a <- sleeper\nb <- after\na -> b\n"))
			return j, filepath.Join("steps", "a")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			repos := t.TempDir()
			m := newTestManager(t, Options{ReposDir: repos})
			j, stepDir := tt.setup(t, m, repos)
			id := mustTrigger(t, m, j.ID, "{}")
			base := filepath.Join(m.RunDir(j.ID, id), stepDir)
			eventually(t, "the step has started its background child", func() bool {
				b, err := os.ReadFile(filepath.Join(base, "bgpid"))
				return err == nil && strings.HasSuffix(string(b), "\n")
			})
			pids := []int{readPid(t, filepath.Join(base, "pid")), readPid(t, filepath.Join(base, "bgpid"))}
			// The start is recorded once the process runs; a crash before
			// that commit cannot be recovered from.
			eventually(t, "the start of the run (and its first step) is recorded", func() bool {
				r, err := m.Run(j.ID, id)
				if err != nil || r.Status != Running {
					return false
				}
				st, ok := r.Step("a")
				return !ok || st.Status == Running
			})

			crashed := t.TempDir()
			err := m.store.(*boltstore.Store).DB().View(func(tx *bolt.Tx) error {
				return tx.CopyFile(filepath.Join(crashed, "jobfs.db"), 0o600)
			})
			mustOK(t, err)
			// A crash leaves the store in its own folder: the copy stands
			// in for it only once it names that folder as its opener.
			sameFolder(t, crashed)
			m2 := newTestManager(t, Options{StateDir: crashed, ReposDir: repos})

			r, err := m2.Run(j.ID, id)
			mustOK(t, err)
			if r.Status != Failed || r.Error != stoppedError {
				t.Errorf("run after restart = %s %q, want FAILED %q", r.Status, r.Error, stoppedError)
			}
			for i := 0; i < 400 && (alive(pids[0]) || alive(pids[1])); i++ {
				time.Sleep(5 * time.Millisecond)
			}
			for _, pid := range pids {
				if alive(pid) {
					t.Errorf("recovery left pid %d of the crashed run running (stored record: pgid %d, steps %+v)", pid, r.Pgid, r.Steps)
				}
			}
		})
	}
}

// TestCloseEndsActiveRuns: Close stops a running run and fails a queued
// one, as a crash would, but leaves no process behind.
func TestCloseEndsActiveRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := newTestManager(t, Options{StateDir: dir, MaxActive: 1})
	j := scriptJob(t, m, "close", "#!/bin/sh\necho $$ > pid\nsleep 100 &\necho $! > bgpid\nwait\n")
	running := mustTrigger(t, m, j.ID, "{}")
	queued := mustTrigger(t, m, j.ID, "{}")
	app := filepath.Join(m.RunDir(j.ID, running), "app")
	eventually(t, "the step has started its background child", func() bool {
		b, err := os.ReadFile(filepath.Join(app, "bgpid"))
		return err == nil && strings.HasSuffix(string(b), "\n")
	})
	pids := []int{readPid(t, filepath.Join(app, "pid")), readPid(t, filepath.Join(app, "bgpid"))}

	mustOK(t, m.Close())
	for _, pid := range pids {
		eventually(t, "the run's processes are gone", func() bool { return !alive(pid) })
	}
	if _, err := m.Trigger(j.ID, []byte("{}"), Manual); !errors.Is(err, ErrStopped) {
		t.Errorf("Trigger after Close = %v, want ErrStopped", err)
	}

	s, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	mustOK(t, err)
	defer s.Close()
	for _, id := range []uint64{running, queued} {
		r, err := s.Run(j.ID, id)
		mustOK(t, err)
		if r.Status != Failed || r.Error != stoppedError || r.EndedAt.IsZero() {
			t.Errorf("run %d after Close = %s %q, want FAILED %q", id, r.Status, r.Error, stoppedError)
		}
	}
	if r, _ := s.Run(j.ID, queued); !r.StartedAt.IsZero() {
		t.Errorf("the queued run started during Close at %v", r.StartedAt)
	}
}

// TestPlanResumedKeepsScript: planning a resumed run leaves its script
// file as its step started it (same file, same bytes), even after the
// job's script changed: the step may be reading it still, and a rewrite
// in place would show a shell a short or other script. A new run's plan
// writes the snapshot's script.
func TestPlanResumedKeepsScript(t *testing.T) {
	m := sigManager(t)
	j := scriptJob(t, m, "resumedscript", "#!/bin/sh\necho first\n")
	c, err := m.snapshot(j.ID)
	mustOK(t, err)
	dir := t.TempDir()
	nodes, err := m.planRun(c, dir, false)
	mustOK(t, err)
	before, err := os.Stat(nodes[0].path)
	mustOK(t, err)

	mustOK(t, m.WriteSetting(j.ID, "config/script", "#!/bin/sh\necho second\n"))
	c, err = m.snapshot(j.ID)
	mustOK(t, err)
	nodes, err = m.planRun(c, dir, true)
	mustOK(t, err)
	after, err := os.Stat(nodes[0].path)
	mustOK(t, err)
	if !os.SameFile(before, after) || after.ModTime() != before.ModTime() {
		t.Errorf("a resumed run's script was written again")
	}
	if got := readFile(t, nodes[0].path); got != "#!/bin/sh\necho first\n" {
		t.Errorf("resumed run's script = %q, want the one its step started with", got)
	}

	nodes, err = m.planRun(c, t.TempDir(), false)
	mustOK(t, err)
	if got := readFile(t, nodes[0].path); got != "#!/bin/sh\necho second\n" {
		t.Errorf("new run's script = %q, want the snapshot's", got)
	}
}

// A start recorded by a new daemon but made before it opened the store (a
// re-attached run whose daemon died before it recorded its step's start)
// says when it was, not that it is now.
func TestTellStartBeforeTheDaemon(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "late", "#!/bin/sh\n")
	at := m.opened.Add(-90 * time.Second)
	m.tellStart(runKey{j.ID, 7}, at)
	m.tellStart(runKey{j.ID, 8}, m.opened.Add(time.Millisecond))
	log := strings.Join(jobLogLines(t, m, j.ID), "\n")
	for _, want := range []string{"run 7 had started at " + at.UTC().Format(time.RFC3339) + ", while jobfs was stopped", "run 8 started"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, log)
		}
	}
}
