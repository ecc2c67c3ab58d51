package main

// The command line client: jobfs run, ps, logs, stop, kill and wait. It
// works through the mount alone, with the files a shell would use (data,
// runs/<id>/stream, wait, ctl, status, exit_code), so it needs no second
// protocol and acts with exactly the caller's rights on the mount.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// Exit codes of the client's own outcomes. A run's exit code (0-255, 124
// for TIMEOUT, 128+N for a run ended by signal N) is passed on as it is
// by run --wait and wait, so these may also be a run's own: check
// runs/<id>/exit_code when it matters.
const (
	exitUsage   = 2   // bad arguments or flags
	exitFailed  = 1   // a run FAILED without an exit code (it never ran a step)
	exitTrouble = 125 // no mount, several mounts, an I/O error, the daemon stopped while waiting
	exitRefused = 126 // the daemon refused the payload or command (the reason is in the job's log)
	exitNoJob   = 127 // no such job or run, or none the caller may see
)

// cliExitCodes is the EXIT STATUS text every subcommand's --help shows.
const cliExitCodes = `Exit status:
  0        done (run --wait, wait: the run COMPLETED)
  1-255    run --wait, wait: the run's exit code; TIMEOUT is 124, a run ended
           by signal N is 128+N (stop: 143 even if the step caught it, kill:
           137), a FAILED run that never ran a step is 1, out of memory with
           the step exiting 0 is 137
  2        bad arguments
  125      no jobfs mount found (or several), an I/O error, or the daemon
           stopped while waiting
  126      refused by the daemon (invalid payload, permission, a run that
           already ended); the reason is printed from the job's log
  127      no such job or run (or not one you may see), or no active run
           to stop or kill
`

// cliMountHelp is how every subcommand finds the mount.
const cliMountHelp = `The mount is --mount DIR, else $JOBFS_MOUNT, else, from /proc/self/mountinfo:
the fuse.jobfs mount the working folder is in, the only one, the only one you
mounted, or the only one you can enter (otherwise the command refuses and says
so).
`

// cliError is a failure of a subcommand with the exit code it maps to.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func failf(code int, format string, a ...any) error {
	return &cliError{code: code, msg: fmt.Sprintf(format, a...)}
}

// cliCommands are the client's subcommands.
var cliCommands = map[string]func(c *cli, args []string) error{
	"run":  (*cli).run,
	"ps":   (*cli).ps,
	"logs": (*cli).logs,
	"stop": func(c *cli, args []string) error { return c.ctl("stop", args) },
	"kill": func(c *cli, args []string) error { return c.ctl("kill", args) },
	"wait": (*cli).wait,
}

// cli is one invocation of a client subcommand.
type cli struct {
	name           string // the subcommand
	stdin          *os.File
	stdout, stderr io.Writer
	mount          string // from --mount, before resolution
	code           int    // the exit code on success (a run's exit code)
}

// cliCmd runs subcommand name and returns its exit code.
func cliCmd(name string, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	c := &cli{name: name, stdin: stdin, stdout: stdout, stderr: stderr}
	err := cliCommands[name](c, args)
	var ce *cliError
	switch {
	case err == nil:
		return c.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce):
		c.note("jobfs %s: %s\n", name, ce.msg)
		return ce.code
	}
	c.note("jobfs %s: %v\n", name, err)
	return exitTrouble
}

// note tells the person at the terminal (stderr); a failed write there
// has nowhere else to go, so its error is dropped.
func (c *cli) note(format string, a ...any) { _, _ = fmt.Fprintf(c.stderr, format, a...) }

// say writes a result line to stdout; a failed write fails the command.
func (c *cli) say(a ...any) error {
	if _, err := fmt.Fprintln(c.stdout, a...); err != nil {
		return failf(exitTrouble, "write to stdout: %v", err)
	}
	return nil
}

// flags makes the flag set of a subcommand, with --mount, whose --help
// prints usage (what the command does) and the shared parts to stdout.
func (c *cli) flags(usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("jobfs "+c.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.StringVar(&c.mount, "mount", "", "the jobfs mount `DIR` (default $JOBFS_MOUNT, else the only fuse.jobfs mount)")
	fs.Usage = func() {
		// --help's output: nowhere else to report a failed write
		_, _ = fmt.Fprintf(fs.Output(), "%s\nFlags:\n", usage)
		fs.PrintDefaults()
		_, _ = fmt.Fprintf(fs.Output(), "\n%s\n%s", cliMountHelp, cliExitCodes)
	}
	return fs
}

// parse parses args with flags anywhere among the operands (jobfs logs
// build -f), up to a "--"; it checks the operand count is in [min, max].
func (c *cli) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var operands []string
	for {
		fs.SetOutput(io.Discard) // a --help goes to stdout, an error to stderr, below
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(c.stdout)
			fs.Usage()
			return nil, err
		}
		if err != nil {
			return nil, failf(exitUsage, "%v (jobfs %s --help)", err, c.name)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			operands = append(operands, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
	if len(operands) < min || len(operands) > max {
		got := fmt.Sprintf("%d arguments", len(operands))
		if len(operands) == 1 {
			got = "1 argument"
		}
		return nil, failf(exitUsage, "want %s, got %s (jobfs %s --help)", operandsWanted(min, max), got, c.name)
	}
	return operands, nil
}

// operandsWanted says how many operands a subcommand takes.
func operandsWanted(min, max int) string {
	switch {
	case max == 0:
		return "no arguments"
	case min == max && min == 1:
		return "1 argument"
	case min == max:
		return fmt.Sprintf("%d arguments", min)
	}
	return fmt.Sprintf("%d to %d arguments", min, max)
}

// root finds the mount: --mount, $JOBFS_MOUNT, or the only jobfs mount.
func (c *cli) root() (string, error) {
	dir, from := c.mount, "--mount"
	if dir == "" {
		dir, from = os.Getenv("JOBFS_MOUNT"), "$JOBFS_MOUNT"
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("fuse.jobfs"))
	if err != nil {
		return "", failf(exitTrouble, "read /proc/self/mountinfo: %v", err)
	}
	if dir == "" {
		return onlyMount(mounts)
	}
	return checkMount(dir, from, mounts)
}

// onlyMount picks the mount when none was named: the one the working
// folder is in, else the only one mounted by the caller (FUSE's user_id),
// else the only one the caller can enter (a mount of another user without
// allow_other refuses them), else an error that says how to choose.
func onlyMount(mounts []*mountinfo.Info) (string, error) {
	if len(mounts) == 0 {
		return "", failf(exitTrouble, "no jobfs mount in /proc/self/mountinfo; mount one (jobfs mount DIR) or name it with --mount DIR or JOBFS_MOUNT=DIR")
	}
	if wd, err := os.Getwd(); err == nil {
		if m := mountHolding(mounts, wd); m != "" {
			return m, nil
		}
	}
	uid := "user_id=" + strconv.Itoa(os.Getuid())
	for _, pick := range []func(*mountinfo.Info) bool{
		func(*mountinfo.Info) bool { return true },
		func(m *mountinfo.Info) bool { return slices.Contains(strings.Split(m.VFSOptions, ","), uid) },
		func(m *mountinfo.Info) bool { _, err := os.Stat(m.Mountpoint); return err == nil },
	} {
		var found []string
		for _, m := range mounts {
			if pick(m) {
				found = append(found, m.Mountpoint)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	var points []string
	for _, m := range mounts {
		points = append(points, m.Mountpoint)
	}
	return "", failf(exitTrouble, "%d jobfs mounts (%s), none of them holding the working folder, and not one alone mounted by you; choose one with --mount DIR or JOBFS_MOUNT=DIR", len(mounts), strings.Join(points, ", "))
}

// mountHolding is the deepest mountpoint among mounts that dir is in, or "".
func mountHolding(mounts []*mountinfo.Info, dir string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	best := ""
	for _, m := range mounts {
		p := m.Mountpoint
		if (dir == p || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/")) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// checkMount makes sure dir, given by from, is a jobfs mountpoint: any
// other folder would answer "no such job" for every job.
func checkMount(dir, from string, mounts []*mountinfo.Info) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", failf(exitTrouble, "%s %s: %v", from, dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for _, m := range mounts {
		if m.Mountpoint == abs {
			return abs, nil
		}
	}
	return "", failf(exitTrouble, "%s %s is not a jobfs mount (no fuse.jobfs mount there in /proc/self/mountinfo)", from, dir)
}

// checkJob refuses a JOB operand that is not a job's name or
// @owner/name: it must name a folder at the top of the mount.
func checkJob(job string) error {
	parts := strings.Split(job, "/")
	bad := job == "" || len(parts) > 2 || len(parts) == 2 && !strings.HasPrefix(parts[0], "@")
	for _, p := range parts {
		bad = bad || p == "" || p == "." || p == ".."
	}
	if bad {
		return failf(exitUsage, "%q is not a job: give its name (etl) or, for another owner's, @owner/name", job)
	}
	return nil
}

// checkRun refuses an ID operand that is not a run id or latest.
func checkRun(id string) error {
	if id == "latest" {
		return nil
	}
	if id == "" || strings.TrimLeft(id, "0123456789") != "" || id[0] == '0' {
		return failf(exitUsage, "%q is not a run id: give a number (7) or latest", id)
	}
	return nil
}

// fsError maps an error of the mount onto the client's exit codes; what
// names the job or run in the message.
func fsError(err error, what string) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return failf(exitTrouble, "%v", err)
	}
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR:
		return failf(exitNoJob, "no such %s (or not one you may see)", what)
	case syscall.EINVAL, syscall.EACCES, syscall.EPERM, syscall.EBUSY, syscall.EFBIG,
		syscall.ENOSPC, syscall.EMFILE, syscall.EROFS, syscall.EEXIST:
		return failf(exitRefused, "%s: refused: %s", what, errno.Error())
	case syscall.EINTR:
		return failf(exitTrouble, "%s: interrupted (the daemon stopped?)", what)
	case syscall.ESHUTDOWN:
		return failf(exitTrouble, "%s: the daemon is stopping", what)
	}
	return failf(exitTrouble, "%s: %v", what, err)
}
