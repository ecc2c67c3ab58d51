package jobs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/jobfs/jobfs/exec"
)

// slurmSpecFile, in a step's shim folder, holds the shim's spec (with the
// job's secrets) until the batch script opens it on the node and removes
// it: owner-only, never in a command line or Slurm's copy of the script.
const slurmSpecFile = "spec.json"

// slurmJobFile, in a step's shim folder, records the step's Slurm job id:
// a later daemon re-attaches by it.
const slurmJobFile = "slurm_job"

// slurmPlainFile, in a step's shim folder, says the step ran without its
// shim (none on its node): its end is Slurm's record alone.
const slurmPlainFile = "plain"

// slurmOutFile, in a step's shim folder, takes what the batch script
// itself prints (Slurm's --output): why a shim could not start.
const slurmOutFile = "slurm.out"

// slurmScript is the batch script of one step. On a node where the jobfs
// binary (shim) is installed, the step runs under its shim, as locally:
// masking before a byte reaches the log on shared storage, the exact
// timeout, exit.json. Elsewhere it runs plainly, which its log's first
// line says; a job with secrets is then refused rather than unmasked.
func slurmScript(s StepSpec, shim, init string) []byte {
	var b bytes.Buffer
	q := shellQuote
	fmt.Fprintf(&b, "#!/bin/sh\n# jobfs: job %s, run %d, step %s\n", q(s.Job), s.Run, q(s.Label))
	fmt.Fprintf(&b, "D=%s\nLOG=%s\n", q(s.ShimDir), q(s.LogPath))
	if init != "" {
		fmt.Fprintf(&b, "if [ -x %s ] && [ -x %s ]; then\n", q(shim), q(init))
	} else {
		fmt.Fprintf(&b, "if [ -x %s ]; then\n", q(shim))
	}
	b.WriteString("\texec 3<\"$D/" + slurmSpecFile + "\" 4>/dev/null 5>>\"$LOG\" || exit 125\n")
	b.WriteString("\trm -f \"$D/" + slurmSpecFile + "\"\n")
	fmt.Fprintf(&b, "\t%s %s \"$D\" &\n", q(shim), exec.ShimArg)
	// Slurm signals the batch script's own processes, not the step's
	// process group: the script tells the shim, through its ctl (a FIFO,
	// local to this node), to stop the step with its grace, or kill it.
	b.WriteString("\tpid=$!\n\texec 3<&- 4>&- 5>&-\n")
	b.WriteString("\ttrap 'kill -0 $pid 2>/dev/null && echo stop > \"$D/ctl\"' TERM INT\n")
	b.WriteString("\ttrap 'kill -0 $pid 2>/dev/null && echo kill > \"$D/ctl\"' USR2\n")
	b.WriteString("\twhile kill -0 $pid 2>/dev/null; do wait $pid; done\n\twait $pid\n\texit $?\nfi\n")
	b.WriteString("rm -f \"$D/" + slurmSpecFile + "\"\n: >\"$D/" + slurmPlainFile + "\"\n")
	what := shim
	if init != "" {
		what += " or " + init
	}
	missing := fmt.Sprintf("jobfs: %s is not installed on $(hostname)", dquoteEscape.Replace(what))
	refuse := ""
	switch {
	case len(s.Secrets) > 0:
		refuse = "the job has secrets (config/env), which only the shim masks"
	case init != "" && s.Owner != 0:
		refuse = fmt.Sprintf("the step runs as uid %d, which only jobfs-init does here", s.Owner)
	}
	if refuse != "" {
		fmt.Fprintf(&b, "echo \"%s: %s: the step is not run\" >>\"$LOG\"\nexit 125\n", missing, refuse)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "echo \"%s: the step runs plainly under Slurm's cgroup, without its shim (no masking, no exact timeout)\" >>\"$LOG\"\n", missing)
	fmt.Fprintf(&b, "cd %s || exit 125\nexec env -i", q(s.Dir))
	for _, kv := range s.Env {
		b.WriteString(" " + q(kv))
	}
	fmt.Fprintf(&b, " %s %s %s >>\"$LOG\" 2>&1\n", q(s.Program), q(s.Input), q(s.Output))
	return b.Bytes()
}

// dquoteEscape escapes what sh expands inside double quotes.
var dquoteEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")

// shellQuote quotes s for sh: single quotes, each ' as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// logFollower copies what a node appends to a step's log (on shared
// storage) to the tee and rings notify: the daemon's side of a log it does
// not write. It polls: a node's appends reach no local inotify.
type logFollower struct {
	path   string
	off    int64
	tee    io.Writer
	notify func()
	f      *os.File
	buf    []byte
}

func newLogFollower(path string, from int64, o exec.LogOptions) *logFollower {
	return &logFollower{path: path, off: from, tee: o.Tee, notify: o.Notify}
}

// read copies what was appended since the last read.
func (l *logFollower) read() {
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return // not made yet: the next read tries again
		}
		l.f, l.buf = f, make([]byte, 64<<10)
	}
	grew := false
	for {
		n, err := l.f.ReadAt(l.buf, l.off)
		if n > 0 {
			grew = true
			l.off += int64(n)
			if l.tee != nil {
				_, _ = l.tee.Write(l.buf[:n]) // a tee never fails a write (StepSpec.Log)
			}
		}
		if err != nil || n < len(l.buf) {
			break
		}
	}
	if grew && l.notify != nil {
		l.notify()
	}
}

func (l *logFollower) close() {
	if l.f != nil {
		_ = l.f.Close() // read only
	}
}
