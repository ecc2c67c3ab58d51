package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

const psUsage = `Usage: jobfs ps [--mount DIR]

Prints one line per job you may see: your own jobs (MOUNT/<job>) and those
shared with you (MOUNT/@<owner>/<job>; as root, every owner's), jobs that
never ran included, with their newest run:

  JOB      the job (@owner/name for another owner's)
  RUN      the newest run's id, - when it never ran
  STATUS   its status (PENDING RUNNING PAUSED COMPLETED FAILED TIMEOUT CANCELLED),
           never-ran when there is none
  EXIT     its exit code, - while it has none
  STARTED  when it started (UTC), - before
  TIME     how long it ran, or has been running
  NEXT     the job's next scheduled run (next_run), - when none

It reads runs/latest/status and the files beside it, so a line is as current
as those files.
`

func (c *cli) ps(args []string) error {
	fs := c.flags(psUsage)
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	root, err := c.root()
	if err != nil {
		return err
	}
	names, err := visibleJobs(root)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	lines := []string{"JOB\tRUN\tSTATUS\tEXIT\tSTARTED\tTIME\tNEXT"}
	for _, name := range names {
		if line, ok := psLine(jobRef{root: root, name: name}); ok {
			lines = append(lines, line)
		}
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return failf(exitTrouble, "write to stdout: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		return failf(exitTrouble, "write to stdout: %v", err)
	}
	return nil
}

// visibleJobs lists the jobs of the mount the caller may see, in the
// order of ls: their own at the top, then each @owner folder's.
func visibleJobs(root string) ([]string, error) {
	top, err := os.ReadDir(root)
	if err != nil {
		return nil, fsError(err, "mount "+root)
	}
	var names []string
	for _, e := range top {
		switch n := e.Name(); {
		case strings.HasPrefix(n, "."): // not a job (.jobfs/)
		case strings.HasPrefix(n, "@"):
			inner, err := os.ReadDir(root + "/" + n)
			if err != nil {
				continue // its last share went away meanwhile
			}
			for _, j := range inner {
				names = append(names, n+"/"+j.Name())
			}
		default:
			names = append(names, n)
		}
	}
	return names, nil
}

// psLine is a job's line; false when the job went away meanwhile.
func psLine(j jobRef) (string, bool) {
	if _, err := os.Stat(j.path()); err != nil {
		return "", false
	}
	next := orDash(j.read("next_run"))
	target, err := os.Readlink(j.path("runs", "latest"))
	if err != nil {
		return strings.Join([]string{j.name, "-", "never-ran", "-", "-", "-", next}, "\t"), true
	}
	id := target[strings.LastIndexByte(target, '/')+1:]
	status := orDash(j.read("runs", id, "status"))
	started, _ := j.read("runs", id, "started_at")
	ended, _ := j.read("runs", id, "ended_at")
	cols := []string{j.name, id, status, orDash(j.read("runs", id, "exit_code")), dash(started), elapsed(started, ended), next}
	return strings.Join(cols, "\t"), true
}

// elapsed is the time between two timestamps of a run's files, or until
// now while it has not ended.
func elapsed(started, ended string) string {
	from, err := time.Parse(time.RFC3339Nano, started)
	if err != nil {
		return "-"
	}
	to := time.Now()
	if t, err := time.Parse(time.RFC3339Nano, ended); err == nil {
		to = t
	}
	return to.Sub(from).Round(time.Second).String() // the files say seconds
}

func orDash(s string, err error) string {
	if err != nil {
		return "-"
	}
	return dash(s)
}

func dash(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return "-"
	}
	return s
}

// activeRun is the newest run of the job that is PENDING or RUNNING.
func (j jobRef) activeRun() (string, error) {
	ents, err := os.ReadDir(j.path("runs"))
	if err != nil {
		return "", fsError(err, "job "+j.name)
	}
	var ids []uint64
	for _, e := range ents {
		if id, err := strconv.ParseUint(e.Name(), 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for i := len(ids) - 1; i >= 0; i-- {
		id := strconv.FormatUint(ids[i], 10)
		if s, err := j.read("runs", id, "status"); err == nil && (s == "PENDING" || s == "RUNNING") {
			return id, nil
		}
	}
	return "", failf(exitNoJob, "job %s has no active run (PENDING or RUNNING) to act on; give a run id", j.name)
}

// ttyIoctl fails unless f is a terminal.
func ttyIoctl(f *os.File) error {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err
}
