package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// jobRef is one job of a mount, as the client reaches it.
type jobRef struct {
	root string // the mountpoint
	name string // etl or @alice/etl
}

// open resolves the mount and checks the JOB operand.
func (c *cli) open(job string) (jobRef, error) {
	if err := checkJob(job); err != nil {
		return jobRef{}, err
	}
	root, err := c.root()
	if err != nil {
		return jobRef{}, err
	}
	j := jobRef{root: root, name: job}
	if _, err := os.Stat(j.path()); err != nil {
		return jobRef{}, fsError(err, "job "+job)
	}
	return j, nil
}

// path is a file of the job: path("runs", "7", "status").
func (j jobRef) path(elem ...string) string {
	return filepath.Join(append([]string{j.root, j.name}, elem...)...)
}

// read returns a file of the job without its trailing newline.
func (j jobRef) read(elem ...string) (string, error) {
	b, err := os.ReadFile(j.path(elem...))
	return strings.TrimRight(string(b), "\n"), err
}

// runID resolves a run operand: latest becomes the newest run's id, so a
// command that follows a run keeps to it when a newer one starts.
func (j jobRef) runID(id string) (string, error) {
	if err := checkRun(id); err != nil {
		return "", err
	}
	if id == "latest" {
		target, err := os.Readlink(j.path("runs", "latest"))
		if errors.Is(err, os.ErrNotExist) {
			return "", failf(exitNoJob, "job %s has no runs yet", j.name)
		}
		if err != nil {
			return "", fsError(err, "job "+j.name)
		}
		return filepath.Base(target), nil
	}
	if _, err := os.Stat(j.path("runs", id)); err != nil {
		return "", fsError(err, "run "+id+" of job "+j.name)
	}
	return id, nil
}

// refused explains a refusal by the daemon with the last line of the
// job's log, where the daemon writes the reason of a refused value or
// command (not of a permission it denies: that leaves the owner's log
// alone).
func (j jobRef) refused(err error, what string) error {
	logged := errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EFBIG) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE)
	err = fsError(err, what)
	var ce *cliError
	if !logged || !errors.As(err, &ce) {
		return err
	}
	if line := j.lastLogLine(); line != "" {
		ce.msg += "\n  the job's log: " + line
	}
	return ce
}

// lastLogLine is the last line of the job's log, or "" when it cannot be
// read (a caller who may trigger but not read, a daemon gone).
func (j jobRef) lastLogLine() string {
	f, err := os.Open(j.path("log"))
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	const tail = 64 << 10
	var b []byte
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		b = make([]byte, tail)
		n, _ := f.ReadAt(b, st.Size()-tail) // a short read keeps what came
		b = b[:n]
	} else if b, err = io.ReadAll(f); err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}

// runExit reads how run id ended and maps it onto an exit code: its own
// exit code where it has one (124 for TIMEOUT, 128+N after signal N), 143
// for a stopped run (SIGTERM) whatever its step exited with, 137 for a
// killed one, 1 for a FAILED run that never ran a step. It returns the status too.
func (j jobRef) runExit(id string) (string, int, error) {
	status, err := j.read("runs", id, "status")
	if err != nil {
		return "", 0, j.fail(err, "run "+id+" of job "+j.name)
	}
	raw, err := j.read("runs", id, "exit_code")
	if err != nil {
		return "", 0, j.fail(err, "run "+id+" of job "+j.name)
	}
	return status, exitOf(status, raw), nil
}

// exitOf is the exit code of a run that ended with status and the
// recorded exit_code raw ("" when none).
func exitOf(status, raw string) int {
	code, err := strconv.Atoi(raw)
	has := err == nil && code >= 0 && code <= 255
	switch {
	case status == "COMPLETED":
		return 0
	case status == "TIMEOUT":
		return 124
	case status == "CANCELLED":
		// Whatever a step that caught the stop exited with (0, or 3 like
		// a failure): a stopped run is 143, a killed one 137.
		if has && code == 128+int(syscall.SIGKILL) {
			return code
		}
		return 128 + int(syscall.SIGTERM)
	case has && code != 0:
		return code
	}
	return exitFailed
}

// waitEnd blocks on runs/<id>/wait until the run has ended and returns
// its status and exit code.
func (j jobRef) waitEnd(id string) (string, int, error) {
	what := "run " + id + " of job " + j.name
	b, err := os.ReadFile(j.path("runs", id, "wait"))
	if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ESHUTDOWN) || err == nil && len(b) == 0 {
		err = errStopped
	}
	if err != nil {
		return "", 0, j.fail(err, what)
	}
	return j.runExit(id)
}

// errStopped: a wait answered without a status, as when the daemon stops.
var errStopped = errors.New("the daemon stopped before the run ended")

// fail is fsError, unless the mount went away meanwhile: then it says so
// (exitTrouble), as the paths below it are an empty folder's.
func (j jobRef) fail(err error, what string) error {
	if errors.Is(err, errStopped) || !j.mounted() {
		return failf(exitTrouble, "%s: the daemon stopped before the run ended", what)
	}
	return fsError(err, what)
}

// mounted reports whether the job's mount is still there.
func (j jobRef) mounted() bool {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("fuse.jobfs"))
	if err != nil {
		return true // cannot tell: the error of the read says what happened
	}
	_, err = checkMount(j.root, "mount", mounts)
	return err == nil
}

// describe is the line that says how a run ended.
func describe(job, id, status string, code int) string {
	return fmt.Sprintf("%s run %s: %s (exit %d)", job, id, status, code)
}
