package jobs

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/exec/slurm"
)

// TestSlurmScript checks the batch script: sh parses it, names are quoted,
// and no secret is in it (it is Slurm's to keep).
func TestSlurmScript(t *testing.T) {
	dir := t.TempDir()
	s := StepSpec{Job: "j'1", Run: 3, Label: "a b", ShimDir: filepath.Join(dir, "it's"), LogPath: filepath.Join(dir, "log $x"),
		Program: "/bin/echo", Dir: dir, Input: "/in", Output: "/out", Env: []string{"PATH=/bin", "JOBFS_JOB=j'1"}}
	for _, secrets := range [][][]byte{nil, {[]byte("s3cr3t-value")}} {
		s.Secrets = secrets
		if secrets != nil {
			s.Env = append(s.Env, "token=s3cr3t-value")
		}
		script := slurmScript(s, "/opt/jobfs bin/jobfs", "/opt/jobfs bin/jobfs-init")
		if strings.Contains(string(script), "s3cr3t-value") {
			t.Errorf("the script holds a secret:\n%s", script)
		}
		path := filepath.Join(dir, "script")
		if err := os.WriteFile(path, script, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := osexec.Command("sh", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v: %s\n%s", err, out, script)
		}
	}
}

// TestSlurmPlainRun runs the script where the shim is missing: the step
// runs plainly, with the log's first line saying so; with secrets it does
// not run.
func TestSlurmPlainRun(t *testing.T) {
	dir := t.TempDir()
	shimDir := filepath.Join(dir, ".shim", "s")
	if err := os.MkdirAll(shimDir, 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "log")
	s := StepSpec{ShimDir: shimDir, LogPath: log, Program: "/bin/sh", Dir: dir, Input: "-c", Output: `echo "hi $JOBFS_JOB"`,
		Env: []string{"PATH=/bin:/usr/bin", "JOBFS_JOB=it's"}, Job: "j", Label: "s"}
	run := func() (string, error) {
		_ = os.Remove(log) // a fresh log for each case
		err := osexec.Command("sh", "-c", string(slurmScript(s, filepath.Join(dir, "no-jobfs"), ""))).Run()
		b, _ := os.ReadFile(log)
		return string(b), err
	}
	got, err := run()
	if err != nil || !strings.HasPrefix(got, "jobfs: "+filepath.Join(dir, "no-jobfs")+" is not installed on ") || !strings.HasSuffix(got, "\nhi it's\n") {
		t.Errorf("plain run: %v, log %q", err, got)
	}
	s.Secrets = [][]byte{[]byte("value")}
	got, err = run()
	if err == nil || strings.Contains(got, "hi it's") || !strings.Contains(got, "the step is not run") {
		t.Errorf("plain run with secrets: %v, log %q", err, got)
	}
}

// TestSlurmEnded maps Slurm's end states and the shim's record.
func TestSlurmEnded(t *testing.T) {
	b := &slurmBackend{}
	s := StepSpec{ShimDir: t.TempDir()}
	// Without the shim's record nor the plain run's mark, the end is unknown.
	if got := b.ended(s, "5", slurm.Info{State: slurm.Completed, SlurmState: "COMPLETED"}, false); got.Outcome != exec.NotStarted || !strings.Contains(fmt.Sprint(got.Err), "left no exit.json") {
		t.Errorf("no record: got %+v", got)
	}
	if err := os.WriteFile(filepath.Join(s.ShimDir, slurmPlainFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		info     slurm.Info
		stopping bool
		want     exec.Outcome
		code     int
		oom      bool
	}{
		{slurm.Info{State: slurm.Completed}, false, exec.Exited, 0, false},
		{slurm.Info{State: slurm.Failed, ExitCode: 7}, false, exec.Exited, 7, false},
		{slurm.Info{State: slurm.Failed, Signal: 9}, false, exec.Exited, 137, false},
		{slurm.Info{State: slurm.OutOfMemory}, false, exec.Exited, 137, true},
		{slurm.Info{State: slurm.Timeout}, false, exec.TimedOut, 124, false},
		{slurm.Info{State: slurm.Cancelled}, false, exec.Cancelled, 143, false},
		{slurm.Info{State: slurm.Cancelled}, true, exec.Cancelled, 143, false},
		{slurm.Info{State: slurm.NodeFail}, false, exec.NotStarted, -1, false},
	}
	for _, c := range cases {
		got := b.ended(s, "5", c.info, c.stopping)
		if got.Outcome != c.want || got.ExitCode != c.code || got.OOM != c.oom {
			t.Errorf("%+v (stopping %v): got %+v, want outcome %v code %d oom %v", c.info, c.stopping, got, c.want, c.code, c.oom)
		}
		if c.info.State == slurm.Cancelled && !c.stopping && (got.Err == nil || !strings.Contains(got.Err.Error(), "scancel outside jobfs")) {
			t.Errorf("an outside scancel: err %v", got.Err)
		}
	}
}

// TestSlurmGaps says what Slurm does not enforce.
func TestSlurmGaps(t *testing.T) {
	r := &slurmRun{b: &slurmBackend{}}
	got := strings.Join(r.Gaps(exec.Limits{CPUPercent: 150, MemoryMiB: 100, Pids: 10, IOBps: 5}), "\n")
	for _, want := range []string{"isolation not applied: on Slurm", "pids", "io", "--cpus-per-task=2"} {
		if !strings.Contains(got, want) {
			t.Errorf("gaps %q lack %q", got, want)
		}
	}
	if got := r.Gaps(exec.Limits{CPUPercent: 200}); len(got) != 1 {
		t.Errorf("gaps with whole CPUs and no pids or io limit: %q, want the isolation line only", got)
	}
}
