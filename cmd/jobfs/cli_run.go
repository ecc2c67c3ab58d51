package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

const runUsage = `Usage: jobfs run [--wait] [--mount DIR] JOB < payload.json

Starts a run of JOB (a job's name, or @owner/name for a job shared with you)
with the JSON payload read from stdin, and prints the run's id. It is
echo PAYLOAD > MOUNT/JOB/data, with the id read back from the same open data
file. When stdin is a terminal, or empty (< /dev/null), the payload is {}.
A payload the daemon refuses (not JSON, too large, a job that cannot start)
starts nothing: the command exits 126 and prints the reason from the job's log.

With --wait it prints the id on stderr instead, streams the run's log
(runs/ID/stream) to stdout until the run ends, prints how it ended on stderr
and exits with the run's exit code (like sbatch --wait, systemd-run --wait).
`

func (c *cli) run(args []string) error {
	fs := c.flags(runUsage)
	wait := fs.Bool("wait", false, "stream the run's log to stdout and exit with the run's exit code")
	ops, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	j, err := c.open(ops[0])
	if err != nil {
		return err
	}
	id, err := c.trigger(j)
	if err != nil {
		return err
	}
	if !*wait {
		return c.say(id)
	}
	c.note("%s run %s\n", j.name, id)
	if err := c.follow(j, id); err != nil {
		return err
	}
	status, code, err := j.waitEnd(id)
	if err != nil {
		return err
	}
	c.note("%s\n", describe(j.name, id, status, code))
	c.code = code
	return nil
}

// trigger writes the payload to data and reads the run's id back from
// the same open file: that read makes the daemon judge the payload at
// once (fs/data.go), so a refusal comes back here as the read's error.
func (c *cli) trigger(j jobRef) (string, error) {
	what := "job " + j.name
	f, err := os.OpenFile(j.path("data"), os.O_RDWR, 0)
	if err != nil {
		return "", j.refused(err, what)
	}
	defer func() { _ = f.Close() }() // judged by the read below; a close adds nothing
	n, err := c.copyPayload(f)
	if err != nil {
		return "", j.refused(err, what)
	}
	if n == 0 {
		if _, err := io.WriteString(f, "{}"); err != nil {
			return "", j.refused(err, what)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "", j.refused(err, what)
	}
	id := strings.TrimSpace(string(b))
	if checkRun(id) != nil || id == "latest" {
		return "", failf(exitTrouble, "%s: the daemon answered %q instead of a run id", what, b)
	}
	return id, nil
}

// copyPayload copies stdin to data; a terminal gives nothing (the payload
// is then {}). It tells write errors (the daemon's refusals) from stdin's.
func (c *cli) copyPayload(f *os.File) (int64, error) {
	if c.stdin == nil || isTerminal(c.stdin) {
		return 0, nil
	}
	var n int64
	buf := make([]byte, 64<<10)
	for {
		m, rerr := c.stdin.Read(buf)
		if m > 0 {
			if _, err := f.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, failf(exitTrouble, "read the payload from stdin: %v", rerr)
		}
	}
}

// isTerminal reports whether f is a terminal (a character device that
// answers the terminal ioctl).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	return ttyIoctl(f) == nil
}

// follow copies runs/<id>/stream to stdout: the log from its first byte,
// then live bytes until the run ends (or the daemon stops).
func (c *cli) follow(j jobRef, id string) error {
	f, err := os.Open(j.path("runs", id, "stream"))
	if err != nil {
		return j.fail(err, "run "+id+" of job "+j.name)
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	return c.copyOut(f, "run "+id+" of job "+j.name)
}

// copyOut copies f to stdout with plain reads and writes (no splice or
// copy_file_range from a file that blocks), telling the mount's errors
// from stdout's.
func (c *cli) copyOut(f *os.File, what string) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := c.stdout.Write(buf[:n]); werr != nil {
				return failf(exitTrouble, "write to stdout: %v", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, syscall.ESHUTDOWN) { // a stream cut by the stop, its run going on
			return failf(exitTrouble, "%s: %v", what, errStopped)
		}
		if err != nil {
			return fsError(err, what)
		}
	}
}

const waitUsage = `Usage: jobfs wait [--mount DIR] JOB [ID]

Blocks until run ID of JOB (default: the newest run) has ended, prints its
status (cat MOUNT/JOB/runs/ID/wait) and exits with the run's exit code.
`

func (c *cli) wait(args []string) error {
	fs := c.flags(waitUsage)
	ops, err := c.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	j, id, err := c.openRun(ops)
	if err != nil {
		return err
	}
	status, code, err := j.waitEnd(id)
	if err != nil {
		return err
	}
	c.code = code
	return c.say(status)
}

// openRun resolves JOB [ID] operands (ID defaults to latest).
func (c *cli) openRun(ops []string) (jobRef, string, error) {
	id := "latest"
	if len(ops) > 1 {
		id = ops[1]
	}
	if err := checkRun(id); err != nil { // before looking for the mount
		return jobRef{}, "", err
	}
	j, err := c.open(ops[0])
	if err != nil {
		return jobRef{}, "", err
	}
	id, err = j.runID(id)
	return j, id, err
}

const logsUsage = `Usage: jobfs logs [-f] [--mount DIR] JOB [ID]

Prints the log of run ID of JOB (default: the newest run), every step's lines
prefixed [label] (cat MOUNT/JOB/runs/ID/log). With -f it follows the run
(cat runs/ID/stream): everything so far, then live lines until the run ends.
`

func (c *cli) logs(args []string) error {
	fs := c.flags(logsUsage)
	follow := fs.Bool("f", false, "follow the run until it ends")
	ops, err := c.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	j, id, err := c.openRun(ops)
	if err != nil {
		return err
	}
	if *follow {
		return c.follow(j, id)
	}
	f, err := os.Open(j.path("runs", id, "log"))
	if err != nil {
		return fsError(err, "log of run "+id+" of job "+j.name)
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	return c.copyOut(f, "log of run "+id+" of job "+j.name)
}

const ctlUsage = `Usage: jobfs %[1]s [--mount DIR] JOB [ID]

%[2]s run ID of JOB, or without ID the newest run that is PENDING or
RUNNING, and prints its id: echo %[1]s > MOUNT/JOB/runs/ID/ctl. It returns at
once; jobfs wait JOB ID waits for the end. A run that has already ended is
refused (exit 126); a job with no active run exits 127.
`

var ctlWhat = map[string]string{
	"stop": "Stops (SIGTERM to every process, --grace of the daemon, then SIGKILL)",
	"kill": "Kills (SIGKILL at once, also while a stop waits out its grace)",
}

// ctl writes stop or kill to a run's ctl file.
func (c *cli) ctl(cmd string, args []string) error {
	fs := c.flags(fmt.Sprintf(ctlUsage, cmd, ctlWhat[cmd]))
	ops, err := c.parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	var j jobRef
	var id string
	if len(ops) == 2 {
		j, id, err = c.openRun(ops)
	} else if j, err = c.open(ops[0]); err == nil {
		id, err = j.activeRun()
	}
	if err != nil {
		return err
	}
	what := "run " + id + " of job " + j.name
	f, err := os.OpenFile(j.path("runs", id, "ctl"), os.O_WRONLY, 0)
	if err != nil {
		return j.refused(err, what)
	}
	_, err = io.WriteString(f, cmd+"\n")
	cerr := f.Close()
	if err != nil {
		return j.refused(err, what)
	}
	if cerr != nil {
		return j.refused(cerr, what)
	}
	return c.say(id)
}
