package slurmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// daemon is one process the cluster started.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// kill sends SIGKILL to the daemon's process group and waits for it.
func (d *daemon) kill() {
	// The group may be gone already; Wait below is what matters.
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

// exited reports whether the daemon has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// start runs bin in the foreground, in its own process group, with
// SLURM_CONF set, its output in log/<name>.out, and SIGKILL as its
// parent-death signal.
func (c *Cluster) start(name, bin string, args ...string) (*daemon, error) {
	if err := c.canStart(name); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(c.Dir, "log", name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = out.Close() }() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env()...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, &Unavailable{fmt.Sprintf("%s does not start: %v", bin, err)}
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // its exit shows through done and its log
		close(d.done)
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		go d.kill() // Stop ran meanwhile
		return nil, errors.New("slurmtest: cluster stopped")
	}
	c.procs[name] = d
	return d, nil
}

// canStart refuses a second copy of a running daemon and a stopped cluster.
func (c *Cluster) canStart(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.procs[name]; c.stopped || (old != nil && !old.exited()) {
		return fmt.Errorf("slurmtest: cannot start %s: cluster stopped or %s still running", name, name)
	}
	return nil
}

// startDaemon starts a Slurm daemon.
func (c *Cluster) startDaemon(name, bin string, args ...string) error {
	_, err := c.start(name, bin, args...)
	return err
}

// startMunge starts munged with the test's key and socket and waits for its
// socket.
func (c *Cluster) startMunge() error {
	p := func(name string) string { return filepath.Join(c.Dir, name) }
	d, err := c.start("munged", "munged", "--foreground",
		"--key-file="+p("munge.key"), "--socket="+p("run/munge.socket"),
		"--pid-file="+p("run/munged.pid"), "--seed-file="+p("run/munged.seed"),
		"--log-file="+p("log/munged.log"))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(p("run/munge.socket")); err == nil {
			return nil
		}
		if d.exited() {
			return &Unavailable{"munged refused to start: " + tail(p("log/munged.out"), 3)}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Unavailable{"munged made no socket in " + startTimeout.String() + ": " + tail(p("log/munged.out"), 3)}
}

// sinfoNode is the part of `sinfo --json` the harness reads. 22.05 gives
// state as a string ("idle"), later versions as a list (["IDLE"]).
type sinfoNode struct {
	Name       string          `json:"name"`
	State      json.RawMessage `json:"state"`
	StateFlags []string        `json:"state_flags"`
	Reason     string          `json:"reason"`
}

// waitIdle waits until the node is idle, or says why it will not be.
func (c *Cluster) waitIdle(ctx context.Context) error {
	last := "no answer from sinfo yet"
	for {
		if err := c.daemonsAlive(); err != nil {
			return err
		}
		if n, err := c.node(ctx); err != nil {
			last = err.Error()
		} else {
			state := strings.ToLower(string(n.State))
			flags := strings.ToLower(strings.Join(n.StateFlags, ","))
			if strings.Contains(state, "idle") && !strings.Contains(state, "drain") && !strings.Contains(flags, "drain") {
				return nil
			}
			last = fmt.Sprintf("node %s is %s %s (reason %q)", c.Node, n.State, flags, n.Reason)
			if strings.Contains(state, "inval") || strings.Contains(flags, "drain") {
				return &Unavailable{last + "; slurmctld: " + c.LogTail("slurmctld")}
			}
		}
		select {
		case <-ctx.Done():
			return &Unavailable{"node not idle after " + startTimeout.String() + ": " + last}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// daemonsAlive says which daemon exited, with its log's end.
func (c *Cluster) daemonsAlive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, d := range c.procs {
		if d.exited() {
			return &Unavailable{fmt.Sprintf("%s exited: %s", name, tail(filepath.Join(c.Dir, "log", name+".out"), 5))}
		}
	}
	return nil
}

// node asks sinfo for the cluster's node.
func (c *Cluster) node(ctx context.Context) (sinfoNode, error) {
	var out struct {
		Errors []struct {
			Description string `json:"description"`
			Error       string `json:"error"`
		} `json:"errors"`
		Nodes []sinfoNode `json:"nodes"`
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "sinfo", "--json")
	cmd.Env = append(os.Environ(), c.Env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return sinfoNode{}, fmt.Errorf("sinfo: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return sinfoNode{}, fmt.Errorf("sinfo --json: %v", err)
	}
	if len(out.Errors) > 0 {
		return sinfoNode{}, fmt.Errorf("sinfo: %s (%s)", out.Errors[0].Description, out.Errors[0].Error)
	}
	for _, n := range out.Nodes {
		if n.Name == c.Node {
			return n, nil
		}
	}
	return sinfoNode{}, fmt.Errorf("sinfo does not list node %s yet", c.Node)
}

// waitAnswering waits until slurmctld answers sinfo again.
func (c *Cluster) waitAnswering(ctx context.Context) error {
	for {
		_, err := c.node(ctx)
		if err == nil {
			return nil
		}
		if err := c.daemonsAlive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slurmtest: slurmctld does not answer: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last n non-empty lines of a file, joined by " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
