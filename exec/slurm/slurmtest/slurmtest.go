// Package slurmtest starts a real single-node Slurm cluster (munged,
// slurmctld, slurmd) for tests, without systemd, with all of its
// configuration, state, spool, pid and log files in one temporary folder.
//
// The cluster needs root (slurmd runs jobs as their owners), the Debian
// packages slurm-wlm and munge, and cgroups: v1 (or hybrid) machines get
// CgroupPlugin=cgroup/v1, pure v2 machines cgroup/v2. Where Slurm cannot start
// here the test is skipped with the reason. Stop kills every process the
// cluster started, jobs included, and removes the cgroup folders Slurm made;
// the daemons also get SIGKILL as their parent-death signal, so a test binary
// that dies leaves no daemon behind (running jobs' cgroups may then stay).
//
// The node has a unique name (so its cgroup folders, slurm_<node>, are its
// own) at 127.0.0.1, two free ports, and a fake GPU (gres gpu:1 backed by
// /dev/null) so that GPU-style options can be submitted and checked.
package slurmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a running single-node Slurm. Its methods are safe for
// concurrent use.
type Cluster struct {
	// Dir holds everything: slurm.conf, cgroup.conf, gres.conf, munge.key,
	// state/, spool/, run/ (pids, munge socket) and log/.
	Dir string
	// Conf is the path of slurm.conf (SLURM_CONF for clients).
	Conf string
	// Node is the node's name; Partition is its only partition (the default).
	Node      string
	Partition string
	// SwapLimited says the job's swap is limited too (cgroup.conf
	// ConstrainSwapSpace=yes): the kernel accounts swap here. Without it, on
	// a machine with swap, a job over --mem pages out instead of ending
	// OUT_OF_MEMORY.
	SwapLimited bool

	mu      sync.Mutex // guards the fields below
	procs   map[string]*daemon
	before  map[string]bool // Slurm cgroup folders that existed at start
	stopped bool
}

// Unavailable is the error Launch returns when Slurm cannot run here; tests
// skip with its text.
type Unavailable struct{ Reason string }

func (u *Unavailable) Error() string { return "slurm unavailable: " + u.Reason }

// startTimeout bounds the wait for the node to become idle.
const startTimeout = 60 * time.Second

// Start launches a cluster for one test and stops it in t.Cleanup; it skips
// the test with the reason when Slurm cannot start here, and fails it on
// other errors.
func Start(t testing.TB) *Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "slurmtest-")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Launch(dir)
	if err != nil {
		_ = os.RemoveAll(dir) // best effort: nothing runs there any more
		var u *Unavailable
		if errors.As(err, &u) {
			t.Skip(u.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("slurm logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir) // best effort: a leftover temp folder is harmless
	})
	return c
}

// Launch starts a cluster in dir, an empty folder the caller removes after
// Stop; for a cluster shared by a whole package (TestMain). It returns an
// *Unavailable when Slurm cannot run here.
func Launch(dir string) (*Cluster, error) {
	if err := canRun(); err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:       dir,
		Conf:      filepath.Join(dir, "slurm.conf"),
		Node:      fmt.Sprintf("jobfs%d", os.Getpid()),
		Partition: "test",
		procs:     map[string]*daemon{},
	}
	c.before = slurmCgroups()
	if err := c.writeConfig(); err != nil {
		return nil, err
	}
	if err := c.startAll(); err != nil {
		stopErr := c.Stop()
		return nil, errors.Join(err, stopErr)
	}
	return c, nil
}

// Env is what a Slurm client needs to talk to this cluster, as KEY=value
// lines to add to a command's environment.
func (c *Cluster) Env() []string {
	return []string{"SLURM_CONF=" + c.Conf}
}

// startAll starts munged, slurmctld and slurmd in that order and waits until
// the node is idle.
func (c *Cluster) startAll() error {
	if err := c.startMunge(); err != nil {
		return err
	}
	if err := c.startDaemon("slurmctld", "slurmctld", "-D"); err != nil {
		return err
	}
	if err := c.startDaemon("slurmd", "slurmd", "-D", "-N", c.Node); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return c.waitIdle(ctx)
}

// RestartController kills slurmctld with SIGKILL and starts it again, as a
// crash would; it returns once the controller answers again.
//
// slurmctld writes its state a few seconds after a change: kill it before a
// job's start is saved and the restarted controller runs the job a second
// time, finds it on the node and drains the node ("Duplicate jobid"). Call
// SaveJobState first where that matters.
func (c *Cluster) RestartController() error {
	if err := c.KillController(); err != nil {
		return err
	}
	return c.StartController()
}

// KillController kills slurmctld with SIGKILL, for a test that looks at the
// outage itself; StartController ends it.
func (c *Cluster) KillController() error {
	c.mu.Lock()
	d := c.procs["slurmctld"]
	delete(c.procs, "slurmctld")
	c.mu.Unlock()
	if d == nil {
		return errors.New("slurmtest: slurmctld is not running")
	}
	d.kill()
	return nil
}

// StartController starts slurmctld after KillController and waits until it
// answers.
func (c *Cluster) StartController() error {
	if err := c.startDaemon("slurmctld", "slurmctld", "-D"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return c.waitAnswering(ctx)
}

// SaveJobState makes slurmctld write its job state now, with the job as it
// is: it updates the job's comment (slurmctld saves after every job change,
// and only then) and waits for the write. Call it before KillController
// when a running job must survive the restart as running.
func (c *Cluster) SaveJobState(ctx context.Context, id string) error {
	since := time.Now()
	cmd := exec.CommandContext(ctx, "scontrol", "update", "JobId="+id, "Comment=slurmtest-saved")
	cmd.Env = append(os.Environ(), c.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("slurmtest: scontrol update: %v: %s", err, strings.TrimSpace(string(out)))
	}
	path := filepath.Join(c.Dir, "state", "job_state")
	for {
		if fi, err := os.Stat(path); err == nil && fi.ModTime().After(since) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slurmtest: %s not written since %s: %w", path, since.Format(time.RFC3339Nano), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the cluster's jobs and daemons and removes the cgroup folders
// Slurm made. It may be called more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	procs := c.procs
	c.procs = map[string]*daemon{}
	c.mu.Unlock()
	// slurmd first so it starts no new step, then the steps (slurmstepd
	// and the jobs in their cgroups), then the controller and munged.
	if d := procs["slurmd"]; d != nil {
		d.kill()
	}
	left := c.killOwn()
	errCg := removeCgroups(c.before, c.Node)
	for _, name := range []string{"slurmctld", "munged"} {
		if d := procs[name]; d != nil {
			d.kill()
		}
	}
	left = append(left, c.killOwn()...)
	if len(left) > 0 {
		return errors.Join(errCg, fmt.Errorf("slurmtest: processes %v outlive SIGKILL", left))
	}
	return errCg
}

// LogTail returns the last lines of a daemon's log (munged, slurmctld,
// slurmd), for a failing test's message.
func (c *Cluster) LogTail(name string) string {
	p := filepath.Join(c.Dir, "log", name+".log")
	if _, err := os.Stat(p); err != nil {
		p = filepath.Join(c.Dir, "log", name+".out") // munged logs to its stderr
	}
	return tail(p, 20)
}
