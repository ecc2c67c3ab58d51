package slurm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobfs/jobfs/exec/slurm/slurmtest"
)

func TestSubmitCompleted(t *testing.T) {
	c := client(t)
	out := filepath.Join(t.TempDir(), "out")
	id := submit(t, c, Job{Name: "hello", Script: script("echo hello from $SLURM_JOB_ID"), Output: out})
	got := wait(t, c, id, ended)
	if got.State != Completed || got.ExitCode != 0 || got.Signal != 0 || got.SlurmState != "COMPLETED" {
		t.Fatalf("got %+v; want COMPLETED with exit 0", got)
	}
	if got.Started.IsZero() || got.Ended.Before(got.Started) || got.Partition != cluster.Partition {
		t.Errorf("times or partition wrong: %+v", got)
	}
	b, err := os.ReadFile(out)
	if err != nil || strings.TrimSpace(string(b)) != "hello from "+id {
		t.Errorf("output %q, %v", b, err)
	}
}

func TestExitCodeFailed(t *testing.T) {
	c := client(t)
	id := submit(t, c, Job{Script: script("exit 3"), Output: "/dev/null"})
	got := wait(t, c, id, ended)
	if got.State != Failed || got.ExitCode != 3 || got.Reason != "NonZeroExitCode" {
		t.Fatalf("got %+v; want FAILED with exit 3", got)
	}
}

func TestOutOfMemory(t *testing.T) {
	c := client(t)
	if slurmtest.SwapOn() && !cluster.SwapLimited {
		t.Skip("this machine has swap and its kernel does not account swap per cgroup: a job over --mem pages out instead of ending OUT_OF_MEMORY")
	}
	// tail keeps a whole line in memory: 400 MiB without a newline.
	// 100 MiB, not less: on cgroup v2 the job's limit also covers its
	// slurmstepd, which an OOM kill must not pick.
	id := submit(t, c, Job{Script: script("head -c 400M /dev/zero | tail > /dev/null"), MemMiB: 100, Output: "/dev/null"})
	got := wait(t, c, id, ended)
	if got.State != OutOfMemory {
		t.Fatalf("got %+v; want OUT_OF_MEMORY", got)
	}
}

// TestTimeLimitRounded checks the submitted record's time limit (Slurm
// itself enforces it a quarter minute late, not worth waiting for here).
func TestTimeLimitRounded(t *testing.T) {
	c := client(t)
	for limit, want := range map[time.Duration]time.Duration{30 * time.Second: time.Minute, time.Minute: time.Minute, 61 * time.Second: 2 * time.Minute} {
		id := submit(t, c, Job{Script: script("true"), TimeLimit: limit, Hold: true, Output: "/dev/null"})
		got := wait(t, c, id, func(Info) bool { return true })
		if got.TimeLimit != want || got.State != Pending || got.Reason != "JobHeldUser" {
			t.Errorf("time limit %v: record %+v; want held with limit %v", limit, got, want)
		}
	}
}

func TestCancel(t *testing.T) {
	c := client(t)
	outside := submit(t, c, Job{Script: script("sleep 300"), Output: "/dev/null"})
	ours := submit(t, c, Job{Script: script("sleep 300"), Output: "/dev/null"})
	wait(t, c, outside, running)
	wait(t, c, ours, running)
	cmd := exec.Command("scancel", outside)
	cmd.Env = append(os.Environ(), cluster.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v: %s", err, out)
	}
	if err := c.Cancel(ctx(t), ours, 0); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{outside, ours} {
		if got := wait(t, c, id, ended); got.State != Cancelled {
			t.Errorf("job %s: got %+v; want CANCELLED", id, got)
		}
	}
}

// TestCancelSignal sends a signal the script traps: the job is not
// cancelled, it ends as the script says.
func TestCancelSignal(t *testing.T) {
	c := client(t)
	// Slurm says RUNNING once the job is allocated, before its script runs:
	// the script says when its trap is set.
	ready := filepath.Join(t.TempDir(), "ready")
	id := submit(t, c, Job{Script: script("trap 'exit 7' USR1", "touch "+ready, "while :; do sleep 0.1; done"), Output: "/dev/null"})
	waitFile(t, ready)
	if err := c.Cancel(ctx(t), id, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, c, id, ended); got.State != Failed || got.ExitCode != 7 {
		t.Errorf("got %+v; want FAILED with exit 7", got)
	}
}

// waitFile waits for a job to create a file.
func waitFile(t *testing.T, path string) {
	t.Helper()
	ctx := ctx(t)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not created", path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestGresPassThrough submits a config/slurm line with a GPU-style gres; the
// test cluster has a fake GPU, so the job runs, and its record keeps the
// request.
func TestGresPassThrough(t *testing.T) {
	c := client(t)
	opts, err := ParseOptions("partition=" + cluster.Partition + " gres=gpu:1")
	if err != nil {
		t.Fatal(err)
	}
	id := submit(t, c, Job{Options: opts, Script: script("true"), Output: "/dev/null"})
	got := wait(t, c, id, ended)
	if got.State != Completed || got.Gres != "gres:gpu:1" {
		t.Fatalf("got %+v; want COMPLETED with gres:gpu:1", got)
	}
	_, err = c.Submit(ctx(t), Job{Options: Options{Gres: "gpu:9"}, Script: script("true")})
	var ce *CmdError
	if !errors.As(err, &ce) || ce.Cmd != "sbatch" || ce.Stderr == "" {
		t.Errorf("9 GPUs on a 1-GPU node: error %v; want sbatch's own message", err)
	}
}

// TestAfterOK runs the second job only after the first completed, and
// cancels a job whose dependency failed.
func TestAfterOK(t *testing.T) {
	c := client(t)
	path, open := gate(t)
	first := submit(t, c, Job{Script: script(waitGate(path)), Output: "/dev/null"})
	second := submit(t, c, Job{Script: script("true"), AfterOK: []string{first}, Output: "/dev/null"})
	wait(t, c, first, running)
	if got := wait(t, c, second, func(Info) bool { return true }); got.State != Pending || got.Reason != "Dependency" {
		t.Fatalf("second while first runs: %+v; want PENDING on Dependency", got)
	}
	open()
	a := wait(t, c, first, ended)
	b := wait(t, c, second, ended)
	if a.State != Completed || b.State != Completed || b.Started.Before(a.Ended) {
		t.Errorf("first %+v, second %+v; want both COMPLETED, second started after first ended", a, b)
	}

	// Slurm gives a cancelled job a start time even if it never ran: the
	// job's own marker file tells.
	marker := filepath.Join(t.TempDir(), "ran")
	bad := submit(t, c, Job{Script: script("exit 1"), Output: "/dev/null"})
	never := submit(t, c, Job{Script: script("touch " + marker), AfterOK: []string{bad}, Output: "/dev/null"})
	if got := wait(t, c, never, ended); got.State != Cancelled || got.Reason != "DependencyNeverSatisfied" {
		t.Errorf("job after a failed one: %+v; want CANCELLED, DependencyNeverSatisfied", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the job after a failed one ran")
	}
}

// TestArray checks an array's tasks and the array as a whole.
func TestArray(t *testing.T) {
	c := client(t)
	id := submit(t, c, Job{Script: script("exit $SLURM_ARRAY_TASK_ID"), Array: "0-2", Output: "/dev/null"})
	got := wait(t, c, id, ended)
	if got.State != Failed || got.ExitCode != 1 || len(got.Tasks) != 3 {
		t.Fatalf("array: %+v; want FAILED with task 1's exit 1 and 3 tasks", got)
	}
	tasks, err := c.Query(ctx(t), []string{id + "_0", id + "_2"})
	if err != nil {
		t.Fatal(err)
	}
	if tasks[id+"_0"].State != Completed || tasks[id+"_2"].ExitCode != 2 {
		t.Errorf("tasks: %+v", tasks)
	}
}

// TestControllerRestart kills slurmctld while a job runs: Query fails with
// Slurm's message during the outage and sees the job's true state after.
func TestControllerRestart(t *testing.T) {
	c := client(t)
	path, open := gate(t)
	id := submit(t, c, Job{Script: script(waitGate(path)), Output: "/dev/null"})
	wait(t, c, id, running)
	// A kill before slurmctld saved the job's start would run it twice.
	if err := cluster.SaveJobState(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	if err := cluster.KillController(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted { // leave a working cluster to the other tests
			_ = cluster.StartController()
		}
	})
	short := &Client{Env: c.Env, Timeout: 20 * time.Second}
	_, err := short.Query(ctx(t), []string{id})
	var ce *CmdError
	if !errors.As(err, &ce) || ce.Stderr == "" {
		t.Fatalf("query without slurmctld: %v; want a CmdError with Slurm's message", err)
	}
	t.Logf("query during the outage: %v", err)
	open() // the job ends while the controller is down
	if err := cluster.StartController(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	got := wait(t, c, id, ended)
	if got.State != Completed || got.ExitCode != 0 {
		t.Fatalf("after restart: %+v; want COMPLETED with exit 0", got)
	}
	next := submit(t, c, Job{Script: script("true"), Output: "/dev/null"})
	if got := wait(t, c, next, ended); got.State != Completed {
		t.Errorf("a job after the restart: %+v", got)
	}
}

// TestQueryBadID refuses ids that are not Slurm's before running anything.
func TestQueryBadID(t *testing.T) {
	c := &Client{}
	if _, err := c.Query(context.Background(), []string{"1;rm"}); !errors.Is(err, ErrBadJob) {
		t.Errorf("got %v; want ErrBadJob", err)
	}
	if err := c.Cancel(context.Background(), "-1", 0); !errors.Is(err, ErrBadJob) {
		t.Errorf("got %v; want ErrBadJob", err)
	}
}

// TestQueryForgotten asks for a job slurmctld never had: squeue does not
// list it, sacct has no accounting here, so it is absent, without error.
func TestQueryForgotten(t *testing.T) {
	c := client(t)
	got, err := c.Query(ctx(t), []string{"999999", "999999_1"})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want an empty map", got, err)
	}
}
