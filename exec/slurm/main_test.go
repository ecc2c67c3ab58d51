package slurm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobfs/jobfs/exec/slurm/slurmtest"
)

// One cluster serves the whole package: it starts in about a second, but
// every test waits on the same scheduler anyway.
var (
	cluster     *slurmtest.Cluster
	clusterSkip string // why there is no cluster
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "slurmtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := slurmtest.Launch(dir)
	var u *slurmtest.Unavailable
	switch {
	case errors.As(err, &u):
		clusterSkip = u.Error()
	case err != nil:
		fmt.Fprintf(os.Stderr, "slurm cluster: %v (logs in %s)\n", err, dir)
		return 1
	}
	cluster = c
	code := m.Run()
	if c != nil {
		code = max(code, stopCluster(c))
	}
	if code == 0 {
		_ = os.RemoveAll(dir) // best effort; the logs matter only on failure
	} else {
		fmt.Fprintf(os.Stderr, "slurm logs kept in %s\n", dir)
	}
	return code
}

// stopCluster stops the cluster and checks that nothing of it is left: no
// process in its cgroups, no cgroup folder.
func stopCluster(c *slurmtest.Cluster) int {
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	left, _ := filepath.Glob("/sys/fs/cgroup/*/slurm_" + c.Node) // constant pattern
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "cgroup folders left after Stop: %v\n", left)
		return 1
	}
	return 0
}

// client returns a client of the package's cluster, or skips the test.
func client(t *testing.T) *Client {
	t.Helper()
	if cluster == nil {
		t.Skip(clusterSkip)
	}
	return &Client{Env: cluster.Env()}
}

// ctx bounds one test's waiting on Slurm; it is a guard against a hang, not
// a timing assertion.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// script makes a batch script of shell lines.
func script(lines ...string) []byte {
	return []byte("#!/bin/sh\n" + strings.Join(lines, "\n") + "\n")
}

// submit submits j and cancels the job when the test ends.
func submit(t *testing.T, c *Client, j Job) string {
	t.Helper()
	id, err := c.Submit(ctx(t), j)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	t.Cleanup(func() {
		// Cancelling an ended job fails; only a running one matters here.
		_ = c.Cancel(context.Background(), id, 0)
	})
	return id
}

// wait polls Query until the job's state satisfies ok.
func wait(t *testing.T, c *Client, id string, ok func(Info) bool) Info {
	t.Helper()
	ctx := ctx(t)
	var last Info
	for {
		got, err := c.Query(ctx, []string{id})
		if err != nil {
			t.Fatalf("query %s: %v", id, err)
		}
		last = got[id]
		if ok(last) {
			return last
		}
		select {
		case <-ctx.Done():
			logDiagnosis(t)
			t.Fatalf("job %s: still %+v", id, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ended(i Info) bool   { return i.State.Terminal() }
func running(i Info) bool { return i.State == Running || i.State.Terminal() }

// gate is a file a test creates to let a waiting job go on.
func gate(t *testing.T) (path string, open func()) {
	path = filepath.Join(t.TempDir(), "gate")
	return path, func() {
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// waitGate is the script line that waits for a gate file.
func waitGate(path string) string {
	return fmt.Sprintf("while [ ! -e %s ]; do sleep 0.1; done", path)
}

// logDiagnosis logs what says why a job did not end: the ends of the
// cluster's logs, the cgroup setup it chose and the kernel's last lines
// (an OOM kill shows there). CI keeps only the test's output.
func logDiagnosis(t *testing.T) {
	t.Helper()
	for _, name := range []string{"cgroup.conf", "log/slurmd.log", "log/slurmctld.log"} {
		b, err := os.ReadFile(filepath.Join(cluster.Dir, name))
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("%s (last lines):\n%s", name, strings.Join(lines[max(len(lines)-40, 0):], "\n"))
	}
	if b, err := os.ReadFile("/proc/swaps"); err == nil {
		t.Logf("/proc/swaps:\n%s", b)
	}
	if out, err := exec.Command("dmesg", "--ctime").CombinedOutput(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("dmesg (last lines):\n%s", strings.Join(lines[max(len(lines)-20, 0):], "\n"))
	}
	// Where a job's processes are and what they wait on (a job that never
	// ended once, with no OOM kill in dmesg: stuck, or never started?).
	if out, err := exec.Command("ps", "-eo", "pid,ppid,stat,wchan:24,rss,etime,args").CombinedOutput(); err == nil {
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "slurm") || strings.Contains(l, "head") || strings.Contains(l, "tail") || strings.Contains(l, "PID") {
				keep = append(keep, l)
			}
		}
		t.Logf("ps (slurm and its jobs):\n%s", strings.Join(keep, "\n"))
	}
}
