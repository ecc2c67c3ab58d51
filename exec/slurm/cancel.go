package slurm

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
)

// Cancel ends a job with scancel. With sig 0 Slurm cancels it: SIGTERM to
// every process of the job, SIGKILL after the cluster's KillWait, state
// CANCELLED. With a signal, scancel only sends that signal to the batch
// script and all its processes (--full); the job ends as they do.
func (c *Client) Cancel(ctx context.Context, id string, sig syscall.Signal) error {
	if !validID(id) {
		return fmt.Errorf("%w: %q is not a job id", ErrBadJob, id)
	}
	args := []string{id}
	if sig != 0 {
		args = []string{"--full", "--signal=" + strconv.Itoa(int(sig)), id}
	}
	_, err := c.run(ctx, nil, "scancel", args...)
	return err
}
