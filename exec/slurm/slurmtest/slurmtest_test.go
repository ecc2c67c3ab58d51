package slurmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartStop starts a cluster, runs a job that would outlive it, stops
// it, and checks that no daemon, job process or Slurm cgroup folder is left.
func TestStartStop(t *testing.T) {
	c := Start(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command("sbatch", "--parsable", "--output=/dev/null")
	cmd.Env = append(os.Environ(), c.Env()...)
	cmd.Stdin = strings.NewReader("#!/bin/sh\necho $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "\nexec sleep 300\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sbatch: %v: %s", err, out)
	}
	jobPid := waitPid(t, pidFile)
	var pids []int
	c.mu.Lock()
	for _, d := range c.procs {
		pids = append(pids, d.cmd.Process.Pid)
	}
	c.mu.Unlock()
	if len(pids) != 3 {
		t.Fatalf("want munged, slurmctld and slurmd running, have %d processes", len(pids))
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(pids, jobPid) {
		if live(pid) {
			t.Errorf("process %d still runs after Stop", pid)
		}
	}
	for _, pid := range slurmPids() {
		if live(pid) && hasEnv(pid, "SLURM_CONF="+c.Conf) {
			t.Errorf("slurm process %d still runs after Stop", pid)
		}
	}
	for d := range slurmCgroups() {
		if strings.Contains(d, c.Node) {
			t.Errorf("cgroup folder %s left after Stop", d)
		}
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// waitPid waits for the job to write its pid.
func waitPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file %q", b)
			}
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the job did not start in a minute")
	return 0
}

// TestOfNode: a cluster's cleanup kills only what is in its own node's
// cgroup folders, not the jobs of a cluster another package's test runs at
// the same time (go test runs packages side by side).
func TestOfNode(t *testing.T) {
	for _, c := range []struct {
		dir, node string
		want      bool
	}{
		{"/sys/fs/cgroup/memory/slurm_jobfs1", "jobfs1", true},
		{"/sys/fs/cgroup/memory/slurm_jobfs2", "jobfs1", false},
		{"/sys/fs/cgroup/memory/slurm_jobfs12", "jobfs1", false},
		{"/sys/fs/cgroup/memory/slurm", "jobfs1", true}, // a build for one slurmd per host: cannot be told apart
		{"/sys/fs/cgroup/slurmstepd.scope", "jobfs1", true},
	} {
		if got := ofNode(c.dir, c.node); got != c.want {
			t.Errorf("ofNode(%s, %s) = %v, want %v", c.dir, c.node, got, c.want)
		}
	}
}
