package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/exec/stepinit"
)

// Spec says how to run one step.
type Spec struct {
	Path string   // executable
	Args []string // arguments after the program name
	Env  []string // the whole environment
	Dir  string   // working directory; never inside the mount
	// Log, when set, takes the step's stdout and stderr as they come (the
	// caller made it with OpenLog, or its own that never blocks) and
	// LogPath, MaxLog, Tee, Notify and Secrets are not used.
	Log     io.Writer
	LogPath string // stdout and stderr are appended here
	MaxLog  int64  // log cap in bytes; 0 = none
	// Tee, when set, also receives every byte appended to the log (a
	// multi-step run copies each step's lines into the run's log).
	Tee io.Writer
	// Notify is called after every append to the log, so live readers can
	// wake up; it must not block.
	Notify  func()
	Timeout time.Duration // 0: none (the caller may use ctx instead)
	Grace   time.Duration // between SIGTERM and SIGKILL on stop or timeout
	// Started is called with the process group id, its leader's start time
	// and when it began as soon as the process runs, so the caller can
	// record them durably; under a shim, on a goroutine of its own once the
	// step has run StartedGrace (over before Run returns), and not at all
	// for a step that ended sooner (Result.Start).
	Started func(pgid int, start uint64, at time.Time)
	// Secrets are masked as *** in everything the step writes (values of 4
	// bytes or more).
	Secrets [][]byte
	// Isolation, when set, runs the step in a cgroup and namespaces.
	Isolation *Isolation
	// NotBefore, when set, is when the step's program begins at the
	// earliest: its process, cgroup and namespaces are made at once and
	// its init holds the exec until then (a scheduled run's tick).
	NotBefore time.Time
	// ready, in a shim, is an init started ahead that matches Isolation:
	// the step is handed to it (its output pipe is the step's).
	ready *readyInit
	// Shim, when set, runs the step under a shim that outlives the daemon
	// (shim.go): it needs LogPath (Log is not used); MaxLog, Secrets,
	// Timeout and Grace go to the shim, Tee and Notify are served here.
	Shim *Shim
}

// Outcome says how a step ended.
type Outcome int

// Outcomes.
const (
	Exited     Outcome = iota // ran to its end; see ExitCode
	TimedOut                  // outlived Spec.Timeout
	Cancelled                 // ctx was cancelled (stop)
	NotStarted                // could not be started; see Err
)

// ErrKill, as the cancel cause of Run's ctx, skips the grace period:
// SIGKILL at once.
var ErrKill = errors.New("killed")

// killKey is the context key of a run's kill switch (see WithStop).
type killKey struct{}

// WithStop returns a context for Run and the function that stops what runs
// under it. A cause matching ErrKill SIGKILLs at once, also after an
// earlier stop, whose grace it cuts short (the context is already
// cancelled then, so only this switch can reach the waiting step); any
// other cause stops with the grace.
func WithStop(parent context.Context) (context.Context, context.CancelCauseFunc) {
	kill := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancelCause(context.WithValue(parent, killKey{}, (<-chan struct{})(kill)))
	return ctx, func(cause error) {
		cancel(cause)
		if errors.Is(cause, ErrKill) {
			once.Do(func() { close(kill) })
		}
	}
}

// Killed reports whether a kill was asked for through WithStop, also after
// an earlier stop (whose cause the context keeps).
func Killed(ctx context.Context) bool {
	select {
	case <-killSwitch(ctx):
		return true
	default:
		return false
	}
}

// killSwitch is closed once a kill is asked for through WithStop; nil (it
// never fires) for a context not made by it.
func killSwitch(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(killKey{}).(<-chan struct{})
	return ch
}

// Result is what Run reports.
type Result struct {
	Outcome  Outcome
	ExitCode int // 128+N for signal N, 124 on timeout
	Err      error
	OOM      bool // the kernel's OOM killer killed a process of the step
	// Usage is what the step used, from its cgroup; all unknown without one.
	Usage Usage
	// Start is the step's start when Spec.Started was not called for it: a
	// step under a shim that ended within StartedGrace. Its caller records
	// the start with the end, in one commit instead of two.
	Start *Start
	// killedAfter is the grace after which a stopped step, still running,
	// was killed (run says so in its log); 0 when it ended within it.
	killedAfter time.Duration
}

// Start is when a step's process began, and its process group.
type Start struct {
	Pgid      int
	PgidStart uint64
	At        time.Time
}

// StartedGrace is how long a step under a shim runs before Spec.Started
// is called: one that ends sooner reports its start in Result.Start
// instead. A step's start is told for what a later daemon needs (its
// group, to stop it): the shim's lock and record tell that too.
const StartedGrace = 10 * time.Millisecond

// startedGrace is StartedGrace; tests change it.
var startedGrace = StartedGrace

// Run runs the step to its end. Cancelling ctx stops it (SIGTERM, grace,
// SIGKILL) with the outcome Cancelled.
func Run(ctx context.Context, s Spec) (res Result) {
	if s.Shim != nil {
		return runShimmed(ctx, s)
	}
	log := s.Log
	if log == nil {
		l, err := OpenLog(s.LogPath, LogOptions{Max: s.MaxLog, Tee: s.Tee, Notify: s.Notify, Secrets: s.Secrets})
		if err != nil {
			return Result{Outcome: NotStarted, ExitCode: -1, Err: err}
		}
		log = l
		defer func() {
			// Closed before Run returns: the final bytes are on disk before
			// the caller records a terminal status.
			if err := l.Close(); err != nil && res.Err == nil {
				res.Err = err
			}
		}()
	}
	res, release := run(ctx, s, log)
	release()
	return res
}

// run runs the step with its output copied into log. release removes the
// step's cgroup: a shim records the step's end first (its init may still
// be in it, exiting), then releases.
func run(ctx context.Context, s Spec, log io.Writer) (res Result, release func()) {
	var pr, pw *os.File
	if s.ready != nil {
		pr, pw = s.ready.outR, s.ready.outW
	} else {
		var err error
		if pr, pw, err = os.Pipe(); err != nil {
			return Result{Outcome: NotStarted, ExitCode: -1, Err: fmt.Errorf("log pipe: %w", err)}, func() {}
		}
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// The log takes everything (a full disk is counted, not returned),
		// so the pipe is drained until the step's last writer is gone.
		// A read error means pr was closed under a step that escaped.
		_, _ = io.Copy(log, pr)
	}()
	p, err := start(s, pw)
	_ = pw.Close() // only the step's copy is needed: nothing buffered
	release = func() {}
	if err != nil {
		res = Result{Outcome: NotStarted, ExitCode: -1, Err: err}
	} else {
		release = p.removeGroup
		if s.Started != nil {
			s.Started(p.pgid, ProcessStart(p.pgid), time.Now())
		}
		res = wait(ctx, p, s)
		// The main process is gone: end what it left behind so the pipe
		// closes. A process that escaped both its group and (without
		// isolation) any cgroup can still hold the pipe: do not wait forever.
		p.killAll()
		res.OOM, res.Usage = p.usage()
	}
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	_ = pr.Close() // the read end: nothing to flush; ends a copy still waiting
	<-copied
	if res.killedAfter > 0 { // after the step's own lines: the copy is done
		markLog(log, fmt.Sprintf("jobfs: the step had not ended %s after SIGTERM: it was killed (SIGKILL)\n", res.killedAfter))
	}
	return res, release
}

// markLog appends jobfs's own line to a step's log: through Log.Mark (its
// own line, past the cap) where the log is one, as written otherwise.
func markLog(log io.Writer, line string) {
	if l, ok := log.(*Log); ok {
		l.Mark(line)
		return
	}
	_, _ = io.WriteString(log, line) // a caller's writer: its failures are its own to report
}

func startError(path string, err error) error { return stepinit.StartError(path, err) }

// wait waits for the main process, enforcing the timeout and ctx.
func wait(ctx context.Context, p *process, s Spec) Result {
	done := make(chan error, 1)
	go func() {
		done <- p.cmd.Wait()
		close(p.reaped)
	}()
	var expired <-chan time.Time // no timeout when s.Timeout is 0
	if s.Timeout > 0 {
		timer := time.NewTimer(s.Timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case err := <-done:
		return Result{Outcome: Exited, ExitCode: exitCode(p.cmd, err)}
	case code := <-p.exited: // the init told it, and ends (nil for a plain process: never)
		p.told = true
		return Result{Outcome: Exited, ExitCode: code}
	case <-expired:
		killed, _ := stopStep(ctx, p, s.Grace, done) // a timeout's exit code is 124 however it ended
		return Result{Outcome: TimedOut, ExitCode: 124, killedAfter: killed}
	case <-ctx.Done():
		grace := s.Grace
		if errors.Is(context.Cause(ctx), ErrKill) {
			grace = 0
		}
		killed, err := stopStep(ctx, p, grace, done)
		return Result{Outcome: Cancelled, ExitCode: exitCode(p.cmd, err), killedAfter: killed}
	}
}

// stopStep stops the step with grace, cutting the grace short when a kill
// is asked for meanwhile (kill after stop, or after a timeout). killed is
// the grace when the step outlived it and was killed (see process.stop).
func stopStep(ctx context.Context, p *process, grace time.Duration, done <-chan error) (killed time.Duration, err error) {
	kill := killSwitch(ctx)
	select {
	case <-kill:
		grace = 0
	default:
	}
	if grace == 0 || kill == nil {
		return p.stop(grace, done)
	}
	quit, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-kill:
			p.killAll()
		case <-quit:
		}
	}()
	killed, err = p.stop(grace, done)
	close(quit)
	<-watched // no kill of the group once the caller goes on to delete it
	return killed, err
}

func exitCode(cmd *osexec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		return -1
	}
	st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		if err != nil {
			return -1
		}
		return 0
	}
	if st.Signaled() {
		return 128 + int(st.Signal())
	}
	return st.ExitStatus()
}
