package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Client runs Slurm's commands. The zero value uses the programs in PATH,
// the process's environment and DefaultTimeout.
type Client struct {
	// Env is added to the process's environment for every command, e.g.
	// SLURM_CONF=/etc/slurm/slurm.conf.
	Env []string
	// Timeout bounds each command when the caller's context has no earlier
	// deadline; 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds one Slurm command. Clients wait for slurmctld for
// up to its MessageTimeout (10 s by default) times a few retries.
const DefaultTimeout = 30 * time.Second

// ErrNoSlurm means a Slurm command is not installed.
var ErrNoSlurm = errors.New("slurm: command not found")

// CmdError is a Slurm command that failed: its name, Slurm's own message (the
// last line of its stderr, or the JSON "errors" entry) and the cause.
type CmdError struct {
	Cmd    string // sbatch, squeue, sacct, scancel
	Stderr string // Slurm's message, one line
	Err    error  // exit status, context error, ...
}

func (e *CmdError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %s (%v)", e.Cmd, e.Stderr, e.Err)
}

func (e *CmdError) Unwrap() error { return e.Err }

// run runs name with args and stdin, and returns its stdout.
func (c *Client) run(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrNotFound) {
		return nil, &CmdError{Cmd: name, Err: fmt.Errorf("%w: %v", ErrNoSlurm, err)}
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, &CmdError{Cmd: name, Stderr: lastLine(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// lastLine is the last non-empty line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
