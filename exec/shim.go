package exec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A step's shim is a process of its own, started by the daemon in a new
// session with no tie to the daemon's life (no Pdeathsig), that runs the
// step as Run does in the daemon: it holds the step's output pipe, masks
// the secrets, appends to the step's log, enforces the timeout and writes
// the step's end to its folder (ShimRecord, exit.json) before it exits.
// So a step outlives a daemon that stops, crashes or is upgraded, and a
// later daemon re-attaches to it (Attach) or reads how it ended.
//
// The shim's folder (Shim.Dir) holds:
//   - lock: flocked by the shim for its whole life; a daemon that gets a
//     shared lock knows the shim is gone (pid reuse cannot fool a lock).
//     It holds the shim's protocol number (empty: protocol 1), there from
//     the moment the lock exists (written, locked, then linked in);
//   - ctl: a FIFO the shim reads lines from: stop, kill, pause, resume;
//   - exit.json: the ShimRecord, written (temp file, fsync, rename) last.

// ShimProtocol numbers what daemon and shim exchange: the spec on fd 3, the
// ctl lines, the lock's content and ShimRecord. A shim refuses a spec of a
// newer protocol; a daemon reads records of its own protocol and every
// older one, and lets a newer shim finish without reading its record.
//
//  1. the first (the lock is empty; the daemon copies the step's log to
//     the run's combined log, so a run log misses what was written while
//     no daemon ran).
//  2. the lock holds the number; the shim appends the step's lines,
//     prefixed, to the run's combined log itself (Shim.RunLog, fd 6).
const ShimProtocol = 2

// shimArg is argv[1] of the jobfs binary started as a step's shim.
const shimArg = "__jobfs_step_shim"

// Shim, set in Spec, runs the step under a shim (see above).
type Shim struct {
	Binary string // the jobfs binary (its main calls MaybeInit)
	Dir    string // the step's shim folder; made here if missing
	// RunLog, when set, is a combined log the shim appends each line of
	// the step's log to, after RunLogPrefix, in whole-line writes (so the
	// lines of steps running at once never mix): it then has every line
	// exactly once, whether a daemon was there or not. Spec.Tee is not
	// used then.
	RunLog       string
	RunLogPrefix string
	// Pool, when its binary is Binary, hands the step to an idle shim
	// started ahead (ShimPool); nil starts one for the step.
	Pool *ShimPool
}

// shimSpec is what the shim reads on fd 3; fd 4 is its status pipe, fd 5
// the step's log opened for appending, fd 6 the run log when RunLogPrefix
// is set.
type shimSpec struct {
	Protocol  int
	Dir       string
	Path      string
	Args      []string
	Env       []string
	WorkDir   string
	MaxLog    int64
	Secrets   [][]byte // on a pipe: never in argv, env or a file
	Timeout   time.Duration
	Grace     time.Duration
	Isolation *Isolation // Cgroups is nil on the wire: see UseCgroups
	// UseCgroups: the shim finds the hierarchy itself (DetectCgroups).
	UseCgroups bool
	// RunLog: fd 6 is the run's log; each line goes there after
	// RunLogPrefix.
	RunLog       bool   `json:",omitempty"`
	RunLogPrefix string `json:",omitempty"`
	// NotBefore is Spec.NotBefore.
	NotBefore time.Time `json:",omitzero"`
	// LogPath and RunLogPath, for a shim started ahead (pooledShimArg),
	// are the step's log and the run log, which it opens itself (another
	// shim gets them open, on fds 5 and 6).
	LogPath    string `json:",omitempty"`
	RunLogPath string `json:",omitempty"`
}

// ShimRecord is how a step ended, as its shim wrote it to exit.json.
type ShimRecord struct {
	Protocol int
	Outcome  Outcome
	ExitCode int
	Err      string `json:",omitempty"`
	OOM      bool
	Usage    Usage
	Ended    time.Time
	// Started is when the step's program began (zero: it never did, or
	// an older shim): a daemon that died before it recorded the start
	// records this one.
	Started time.Time `json:",omitzero"`
}

// result turns the record into a Result.
func (r ShimRecord) result() Result {
	res := Result{Outcome: r.Outcome, ExitCode: r.ExitCode, OOM: r.OOM, Usage: r.Usage}
	if r.Err != "" {
		res.Err = errors.New(r.Err)
	}
	return res
}

// ErrDetach, as the cancel cause of Run's ctx for a step under a shim,
// leaves the step running: Run returns at once with the outcome Detached,
// and a later daemon re-attaches (Attach).
var ErrDetach = errors.New("detached: the step runs on without the daemon")

// Detached is the outcome of a step left to its shim (ErrDetach).
const Detached Outcome = 100

// errShimTimeout is the shim's cancel cause when the step outlived its time.
var errShimTimeout = errors.New("timed out")

// shim file names in its folder.
const (
	shimLock   = "lock"
	shimCtl    = "ctl"
	shimRecord = "exit.json"
)

// ShimState says what a step's shim folder tells: whether its shim runs
// (it holds the lock), and its record once it ended.
func ShimState(dir string) (alive bool, rec *ShimRecord, err error) {
	alive, err = shimAlive(dir)
	if err != nil || alive {
		return alive, nil, err
	}
	rec, err = readShimRecord(dir)
	return false, rec, err
}

// ShimStarted reports whether a shim was ever started in dir: its lock
// file exists (the shim makes and locks it first thing, before it reads
// its spec: a daemon killed at any moment leaves either no lock, or a lock
// whose shim runs or left its record).
func ShimStarted(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, shimLock))
	return err == nil
}

// ShimStartedAt is when the step of the shim in dir began, as near as the
// shim tells: its record's Started, else the time its lock was made (the
// shim's first act, a moment before the step's start); zero when neither
// says.
func ShimStartedAt(dir string) time.Time {
	if rec, err := readShimRecord(dir); err == nil && rec != nil && !rec.Started.IsZero() {
		return rec.Started
	}
	if st, err := os.Lstat(filepath.Join(dir, shimLock)); err == nil {
		return st.ModTime().UTC()
	}
	return time.Time{}
}

// shimAlive tries a shared lock: refused while the shim holds its own.
func shimAlive(dir string) (bool, error) {
	fd, err := unix.Open(filepath.Join(dir, shimLock), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	defer func() { _ = unix.Close(fd) }() // read only
	for {
		err = unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		return false, nil
	case unix.EWOULDBLOCK:
		return true, nil
	}
	return false, err
}

// shimEnded returns a channel closed once the lock of the shim in dir is
// free (the shim exited): a blocking shared lock, dropped as soon as it is
// taken, in a goroutine of its own. A flock cannot be interrupted, so the
// goroutine ends with the shim (or the daemon); a lock that cannot be
// opened closes the channel at once (the caller looks again).
func shimEnded(dir string) <-chan struct{} {
	ch := make(chan struct{})
	fd, err := unix.Open(filepath.Join(dir, shimLock), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		for unix.Flock(fd, unix.LOCK_SH) == unix.EINTR {
		}
		_ = unix.Close(fd) // read only; closing drops the lock at once
	}()
	return ch
}

// AwaitShimEnd waits, at most within, for the shim in dir to release its
// lock: the step's cgroup, which a shim removes after telling its daemon
// the step's end, is gone then. It reports whether the shim ended.
func AwaitShimEnd(dir string, within time.Duration) bool {
	if alive, err := shimAlive(dir); err != nil || !alive {
		return true
	}
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-shimEnded(dir):
		return true
	case <-t.C:
		return false // its wait goes on until the shim ends
	}
}

// ShimProtocolOf is the protocol of the shim started in dir, as its lock
// says: 1 for an empty lock (a shim of protocol 1 writes nothing there).
func ShimProtocolOf(dir string) (int, error) {
	fd, err := unix.Open(filepath.Join(dir, shimLock), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer func() { _ = unix.Close(fd) }() // read only
	buf := make([]byte, 16)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return 0, err
	}
	text := strings.TrimSpace(string(buf[:max(n, 0)]))
	if text == "" {
		return 1, nil
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%s holds %q, not a shim protocol number", filepath.Join(dir, shimLock), text)
	}
	return v, nil
}

// ErrNewerShim is why a step under a shim of a newer protocol than this
// jobfs's ends without a status: it was let finish, but its record is
// not one this jobfs can read.
var ErrNewerShim = errors.New("its shim speaks a newer protocol than this jobfs")

// newerShim says so for a shim of protocol v.
func newerShim(dir string, v int) error {
	return fmt.Errorf("%w (protocol %d; this jobfs knows up to %d): it was let finish, but how it ended cannot be read here (see the step's log and %s; a jobfs as new as the one that started it can)",
		ErrNewerShim, v, ShimProtocol, filepath.Join(dir, shimRecord))
}

// readShimRecord reads exit.json; nil without one.
func readShimRecord(dir string) (*ShimRecord, error) {
	fd, err := unix.Open(filepath.Join(dir, shimRecord), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), shimRecord)
	defer func() { _ = f.Close() }() // read only
	var rec ShimRecord
	if err := json.NewDecoder(f).Decode(&rec); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if rec.Protocol > ShimProtocol {
		return nil, newerShim(dir, rec.Protocol)
	}
	return &rec, nil
}

// runShimmed starts the step's shim and waits for it (see waitShim).
func runShimmed(ctx context.Context, s Spec) Result {
	notStarted := func(err error) Result { return Result{Outcome: NotStarted, ExitCode: -1, Err: err} }
	dir := s.Shim.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return notStarted(fmt.Errorf("make the step's shim folder: %w", err))
	}
	if ShimStarted(dir) {
		return notStarted(fmt.Errorf("a shim was started in %s already: the step is not started twice", dir))
	}
	if err := unix.Mkfifo(filepath.Join(dir, shimCtl), 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return notStarted(fmt.Errorf("make the step's ctl: %w", err))
	}
	logf, err := os.OpenFile(s.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return notStarted(fmt.Errorf("open log: %w", err))
	}
	var from int64
	if st, err := logf.Stat(); err == nil {
		from = st.Size()
	}
	var runLog *os.File
	if s.Shim.RunLog != "" {
		if runLog, err = os.OpenFile(s.Shim.RunLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o644); err != nil {
			_ = logf.Close() // nothing written here
			return notStarted(fmt.Errorf("open the run's log: %w", err))
		}
	}
	proc, err := startShim(s, logf, runLog)
	closeUnused(logf, runLog) // the shim has its own copies; nothing written here
	if err != nil {
		return notStarted(err)
	}
	started, ended := proc.track()
	defer ended()
	cmd, status, reaped := proc.cmd, proc.status, proc.reaped
	statusLines := bufio.NewReader(status)
	line, _ := statusLines.ReadString('\n')
	started()
	line = strings.TrimSpace(line)
	if reason, ok := strings.CutPrefix(line, "error: "); ok {
		_ = status.Close() // read end: nothing to flush
		<-reaped
		return notStarted(errors.New(reason))
	}
	// The shim says "ended" once its record is there, before it removes
	// the step's cgroup and releases its lock (the lock stays the end for
	// a daemon that attaches to it later).
	recorded := make(chan struct{})
	go func() {
		defer func() { _ = status.Close() }() // read end: nothing to flush
		if l, _ := statusLines.ReadString('\n'); l == "ended\n" {
			close(recorded)
		}
	}()
	// Started (the daemon's commit of the step's start) is called once
	// the step has run StartedGrace, while it runs: a step that ends sooner
	// has its start told with its end (Result.Start), which its caller
	// records in the end's commit. Either is over before Run returns.
	startedDone, over := make(chan struct{}), make(chan struct{})
	var untold *Start
	if f := strings.Fields(line); len(f) >= 3 && f[0] == "ok" {
		pgid, _ := strconv.Atoi(f[1])
		start, _ := strconv.ParseUint(f[2], 10, 64)
		// When the shim saw the step start, by which it also times the
		// step's end (its record's Ended); an older shim does not say.
		began := time.Now()
		if len(f) > 3 {
			if ns, err := strconv.ParseInt(f[3], 10, 64); err == nil && ns > 0 {
				began = time.Unix(0, ns)
			}
		}
		go func() {
			defer close(startedDone)
			t := time.NewTimer(startedGrace)
			defer t.Stop()
			select {
			case <-t.C:
				if s.Started != nil {
					s.Started(pgid, start, began)
				}
			case <-over:
				untold = &Start{Pgid: pgid, PgidStart: start, At: began}
			}
		}()
	} else {
		<-reaped
		if rec, err := readShimRecord(dir); err == nil && rec != nil {
			return rec.result()
		}
		return notStarted(fmt.Errorf("the step's shim %s ended before starting the step (%s)", s.Shim.Binary, cmd.ProcessState))
	}
	a := AttachSpec{Dir: dir, LogPath: s.LogPath, Tee: s.Tee, Notify: s.Notify, RunLog: s.Shim.RunLog, recorded: recorded}
	if a.RunLog != "" {
		a.Tee = nil // the shim writes the run log itself
	}
	res := waitShim(ctx, a, from)
	close(over)
	<-startedDone
	if res.Outcome != NotStarted {
		res.Start = untold
	}
	return res
}

// startShim starts the step's shim, or hands the step to an idle one of
// the pool, with the spec on a pipe; runLog, when not nil, is the run's
// log.
func startShim(s Spec, logf, runLog *os.File) (*shimProc, error) {
	spec := newShimSpec(s)
	spec.RunLog, spec.RunLogPrefix = runLog != nil, s.Shim.RunLogPrefix
	if s.Shim.Pool != nil && s.Shim.Pool.binary == s.Shim.Binary {
		var k *InitAhead
		if s.Isolation != nil {
			key := aheadKey(s.Isolation)
			k = &key
		}
		if p := s.Shim.Pool.take(k); p != nil {
			pooled := spec
			pooled.LogPath = logf.Name()
			if runLog != nil {
				pooled.RunLogPath = runLog.Name()
			}
			if err := p.send(pooled); err == nil {
				return p, nil
			}
			closeUnused(p.status) // it died idle: a shim of its own, below
			_, ended := p.track()
			ended() // and the pool refilled now
		}
	}
	extra := []*os.File{logf}
	if runLog != nil {
		extra = append(extra, runLog)
	}
	p, err := startShimProc(s.Shim.Binary, []string{s.Shim.Dir}, extra...)
	if err != nil {
		return nil, fmt.Errorf("start the step's shim %s: %w", s.Shim.Binary, err)
	}
	_ = p.send(spec) // a shim that could not read its spec says so on its status pipe
	return p, nil
}

// ShimSpecJSON is the spec a shim reads on fd 3, for a shim that another
// program starts (a Slurm batch script on a compute node): s with its
// timeout, its secrets (keep the bytes owner-only) and its isolation but no
// cgroup (the scheduler's holds the step there).
func ShimSpecJSON(s Spec) ([]byte, error) {
	spec := newShimSpec(s)
	spec.UseCgroups = false
	return json.Marshal(spec)
}

// newShimSpec is the spec of s's shim: its isolation without the cgroups
// (not on the wire: UseCgroups has the shim find them).
func newShimSpec(s Spec) shimSpec {
	spec := shimSpec{Protocol: ShimProtocol, Dir: s.Shim.Dir, Path: s.Path, Args: s.Args, Env: s.Env, WorkDir: s.Dir,
		MaxLog: s.MaxLog, Secrets: s.Secrets, Timeout: s.Timeout, Grace: s.Grace, NotBefore: s.NotBefore}
	if s.Isolation != nil {
		iso := *s.Isolation
		spec.UseCgroups, iso.Cgroups = iso.Cgroups != nil, nil
		spec.Isolation = &iso
	}
	return spec
}

// KillSwitch is closed once a kill is asked for through WithStop (also
// after a stop), for a backend that stops steps itself; nil otherwise.
func KillSwitch(ctx context.Context) <-chan struct{} { return killSwitch(ctx) }

// ShimArg is argv[1] of the jobfs binary started as a step's shim.
const ShimArg = shimArg

// ReadShimRecord reads a shim's exit.json in dir; nil without one.
func ReadShimRecord(dir string) (*ShimRecord, error) { return readShimRecord(dir) }

// Result turns the record into a Result.
func (r ShimRecord) Result() Result { return r.result() }

// AttachSpec says how to follow a step that runs under a shim.
type AttachSpec struct {
	Dir     string // the shim's folder
	LogPath string // the step's log, which the shim appends to
	// Tee also gets every byte appended from here on; may be nil.
	Tee    io.Writer
	Notify func() // called after appends; may be nil
	// RunLog is the run log the shim was told to write (Shim.RunLog), if
	// any. A shim of protocol 2 or later writes it itself: Tee is not
	// used, and Notify is called when it grows too. One of protocol 1
	// never does: Tee is its run log's copy.
	RunLog string
	// recorded, for a shim this daemon started, is closed when the shim
	// says its record is there: the step's end, before its lock's release.
	recorded <-chan struct{}
}

// Attach follows the step of a shim started earlier (by this daemon or
// another) to its end, like Run: ctx stops it the same way, and ErrDetach
// leaves it running. A shim already gone gives its record, or NotStarted
// with the reason when it left none.
func Attach(ctx context.Context, a AttachSpec) Result {
	var from int64
	if st, err := os.Lstat(a.LogPath); err == nil {
		from = st.Size()
	}
	return waitShim(ctx, a, from)
}

// waitShim follows the shim until its lock is free: appends to the log
// from offset from go to the tee and ring notify; ctx's cancel is sent to
// the shim as stop or kill. The shim's record is the result.
func waitShim(ctx context.Context, a AttachSpec, from int64) Result {
	if proto, err := ShimProtocolOf(a.Dir); err == nil && proto >= 2 && a.RunLog != "" {
		a.Tee = nil // it writes the run log itself
	}
	t := newTail(a.LogPath, from, a.Tee, a.Notify, a.RunLog)
	defer t.close()
	// The shim's end is seen when its lock is released (ended); the tick
	// is only a fallback. Polling every 50 ms cost a step 25 ms on average.
	ended := shimEnded(a.Dir)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done, kill, recorded := ctx.Done(), killSwitch(ctx), a.recorded
	for {
		alive, err := shimAlive(a.Dir)
		if err != nil || !alive {
			break
		}
		if recorded == nil && a.recorded != nil {
			break // told the record is there
		}
		select {
		case <-done:
			cause := context.Cause(ctx)
			if errors.Is(cause, ErrDetach) {
				t.drain()
				return Result{Outcome: Detached, ExitCode: -1, Err: cause}
			}
			cmd := "stop"
			if errors.Is(cause, ErrKill) {
				cmd = "kill"
			}
			sendShim(a.Dir, cmd)
			done = nil
		case <-kill:
			sendShim(a.Dir, "kill")
			kill = nil
		case <-t.events:
			t.event()
		case <-ended:
			ended = nil // looked at again at the top: a released lock is an ended shim
		case <-recorded:
			recorded = nil // as ended
		case <-tick.C:
		}
	}
	t.drain()
	rec, err := readShimRecord(a.Dir)
	if err != nil {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: err}
	}
	if rec == nil {
		return Result{Outcome: NotStarted, ExitCode: -1, Err: errors.New("the step's shim ended without recording how the step ended (killed, or out of disk)")}
	}
	return rec.result()
}

// SendShim tells a live shim stop, kill, pause or resume; a shim gone
// (nobody reads its ctl) makes it a no-op.
func SendShim(dir, cmd string) { sendShim(dir, cmd) }

func sendShim(dir, cmd string) {
	fd, err := unix.Open(filepath.Join(dir, shimCtl), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return // ENXIO: no reader, the shim is gone
	}
	_, _ = unix.Write(fd, []byte(cmd+"\n")) // a short line into an empty FIFO: atomic
	_ = unix.Close(fd)
}

// ---- the shim's side ----

// shimMain runs as the shim: it returns the process's exit code.
// ShimMain is the main of a program that is only a shim (cmd/jobfs-shim):
// it runs the shim when started as one and returns its exit code; started
// any other way it says what it is and returns 2.
func ShimMain() int {
	if len(os.Args) >= 2 && os.Args[1] == shimArg {
		return shimMain()
	}
	fmt.Fprintf(os.Stderr, "%s: the shim jobfs starts for each step; not for use by hand\n", filepath.Base(os.Args[0]))
	return 2
}

func shimMain() int {
	// Caught, not ignored: an ignored signal would stay ignored in the step.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	for fd := 3; fd <= 6; fd++ {
		syscall.CloseOnExec(fd) // the step must not inherit the spec, status or logs; EBADF for no fd 6
	}
	status := os.NewFile(4, "status")
	if len(os.Args) < 3 {
		say(status, "error: jobfs shim: no folder given\n")
		return 125
	}
	dir := os.Args[2]
	pooled := dir == pooledShimArg
	var spec shimSpec
	var cg Cgroups
	var cgErr error
	var ready *readyInit // an init started ahead, until the step takes it
	defer func() {
		if ready != nil {
			ready.discard()
		}
	}()
	if pooled { // started ahead: the step, its folder and its logs come with the spec
		// Work that does not depend on the step is done while idle: the
		// cgroup hierarchy (and v1's read of mountinfo), os's one-time pidfd
		// check (a fork) and, when the pool says how steps are isolated,
		// the step's init.
		cg, cgErr = DetectCgroups()
		warmCgroups(cg)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Release() // only the check was wanted
		}
		var ahead InitAhead
		if len(os.Args) > 3 && json.Unmarshal([]byte(os.Args[3]), &ahead) == nil && ahead.Init != "" && canStartAhead(cg) {
			ready, _ = startReadyInit(ahead, cg) // none: the step starts its init itself, which reports the error
		}
		warmShimDecoder()
		if err := json.NewDecoder(os.NewFile(3, "spec")).Decode(&spec); err != nil {
			return 0 // the pool closed (or the daemon ended) before handing a step over
		}
		if dir = spec.Dir; !filepath.IsAbs(dir) {
			say(status, "error: jobfs shim: the spec names no folder\n")
			return 125
		}
	}
	lock, err := holdLock(dir)
	if err != nil {
		say(status, "error: jobfs shim: %v\n", err)
		return 125
	}
	defer func() { _ = lock.Close() }() // released at exit anyway
	refuse := func(format string, args ...any) int {
		reason := fmt.Sprintf(format, args...)
		say(status, "error: %s\n", reason)
		_ = writeRecord(dir, ShimRecord{Protocol: ShimProtocol, Outcome: NotStarted, ExitCode: -1, Err: reason, Ended: time.Now().UTC()}) // else: no record, said so too
		return 125
	}
	if !pooled {
		if err := json.NewDecoder(os.NewFile(3, "spec")).Decode(&spec); err != nil {
			return refuse("jobfs shim: read its spec (the daemon ended before handing the step over?): %v", err)
		}
	}
	if spec.Protocol > ShimProtocol {
		return refuse("jobfs shim: the spec is of protocol %d, this shim (%s) knows %d: rebuild both", spec.Protocol, os.Args[0], ShimProtocol)
	}
	spec.Dir = dir
	var logFile, runLogFile *os.File
	if !pooled {
		logFile = os.NewFile(5, "log")
		if spec.RunLog { // else fd 6 is not open: a File for it would close a later one's fd 6
			runLogFile = os.NewFile(6, "runlog")
		}
	} else {
		if logFile, err = openAppend(spec.LogPath); err != nil {
			return refuse("jobfs shim: open the step's log: %v", err)
		}
		if spec.RunLog {
			if runLogFile, err = openAppend(spec.RunLogPath); err != nil {
				return refuse("jobfs shim: open the run's log: %v", err)
			}
		}
	}
	ctx, stop := WithStop(context.Background())
	timeout := spec.Timeout
	if timeout > 0 { // counted from the step's start, not from its setup ahead of it
		timeout += max(time.Until(spec.NotBefore), 0)
	}
	clock := newShimClock(timeout, func() { stop(errShimTimeout) })
	go readCtl(spec.Dir, stop, clock)
	s := Spec{Path: spec.Path, Args: spec.Args, Env: spec.Env, Dir: spec.WorkDir, Grace: spec.Grace, Isolation: spec.Isolation, NotBefore: spec.NotBefore}
	if s.Isolation != nil && spec.UseCgroups {
		if !pooled {
			cg, cgErr = DetectCgroups()
		}
		if cgErr != nil {
			say(status, "error: jobfs shim: cannot apply the limits: %v\n", cgErr)
			return 125
		}
		s.Isolation.Cgroups = cg
	}
	if ready != nil && s.Isolation != nil && aheadKey(s.Isolation) == ready.key {
		s.ready, ready = ready, nil // the step's now
	} else if ready != nil { // isolated otherwise: not kept while the step runs
		ready.discard()
		ready = nil
	}
	var started time.Time
	s.Started = func(pgid int, start uint64, at time.Time) {
		started = at.UTC()
		say(status, "ok %d %d %d\n", pgid, start, at.UnixNano())
	}
	o := LogOptions{Max: spec.MaxLog, Secrets: spec.Secrets}
	var runLog *linePrefixer
	if spec.RunLog {
		runLog = newLinePrefixer(runLogFile, spec.RunLogPrefix)
		o.Tee = runLog
	}
	log := newLog(logFile, o)
	res, release := run(ctx, s, log)
	release = sync.OnceFunc(release)
	clock.stop()
	if res.Outcome == Cancelled && errors.Is(context.Cause(ctx), errShimTimeout) {
		res.Outcome, res.ExitCode = TimedOut, 124
	}
	if err := log.Close(); err != nil && res.Err == nil {
		res.Err = err
	}
	if runLog != nil {
		runLog.Close() // after the log's last bytes and markers
	}
	rec := ShimRecord{Protocol: ShimProtocol, Outcome: res.Outcome, ExitCode: res.ExitCode, OOM: res.OOM, Usage: res.Usage, Ended: time.Now().UTC(), Started: started}
	if res.Err != nil {
		rec.Err = res.Err.Error()
	}
	if res.Outcome == NotStarted {
		say(status, "error: %s\n", rec.Err)
	}
	// The daemon that started this shim reads the record once told it is
	// there ("ended"); the step's cgroup, which the init may still be
	// leaving, is removed before the lock is released (a daemon that
	// follows the shim by its lock, and the run's folder's recycling, see
	// it gone).
	recorded := func() {
		say(status, "ended\n")
		_ = status.Close() // a pipe: nothing buffered
		release()
	}
	if err := writeRecordAndRelease(spec.Dir, rec, lock, recorded); err != nil {
		release()
		return 125 // the daemon says the shim left no record
	}
	return 0
}

// warmShimDecoder decodes a shimSpec once, so that the first decode of the
// type (encoding/json's cache of its fields, 0.1-0.25 ms of a fresh shim on a
// 2-core VM, traced) is done while a pooled shim waits for its step.
func warmShimDecoder() {
	warm := shimSpec{Args: []string{""}, Env: []string{""}, Secrets: [][]byte{{0}}, NotBefore: time.Unix(1, 0),
		Isolation: &Isolation{Groups: []uint32{0}}}
	if b, err := json.Marshal(warm); err == nil {
		_ = json.Unmarshal(b, new(shimSpec)) // what it just encoded: nothing to report
	}
}

// openAppend opens a log the daemon made (the last component is never
// followed) for appending.
func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
}

func say(w *os.File, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }

// holdLock makes the shim's lock and takes it for the process's life. The
// lock is made under a name of its own, locked, given the protocol, and
// only then linked in as lock: a daemon never sees the lock unlocked while
// the shim runs, nor without its protocol.
func holdLock(dir string) (*os.File, error) {
	tmp := filepath.Join(dir, fmt.Sprintf("%s.%d", shimLock, os.Getpid()))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("make its lock: %w", err)
	}
	defer func() { _ = os.Remove(tmp) }() // a second name; the lock stays as lock
	if err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		_, err = fmt.Fprintf(f, "%d\n", ShimProtocol)
	}
	if err == nil {
		if err = os.Link(tmp, filepath.Join(dir, shimLock)); err != nil {
			err = fmt.Errorf("another shim was started in %s: %w", dir, err)
		}
	}
	if err != nil {
		_ = f.Close() // the error is the one to report
		return nil, fmt.Errorf("take its lock: %w", err)
	}
	return f, nil
}

// writeRecord writes exit.json durably (see writeRecordAndRelease), for
// a shim that holds no lock to release.
func writeRecord(dir string, rec ShimRecord) error { return writeRecordAndRelease(dir, rec, nil, nil) }

// writeRecordAndRelease writes exit.json, calls recorded (when not nil),
// then releases lock (when not nil: the daemon following the step reads
// the record from the page cache and commits it durably itself), and only
// then makes the record durable for a daemon that reads it later: the two
// fsyncs (1.5-2 ms on a VM's disk) are off the path from the step's end to
// its recorded end. recorded is not called when the record is not there.
func writeRecordAndRelease(dir string, rec ShimRecord, lock *os.File, recorded func()) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, shimRecord+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // synced below; a failed sync is the error
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, shimRecord)); err != nil {
		return err
	}
	if recorded != nil {
		recorded()
	}
	if lock != nil {
		_ = lock.Close() // releases the lock, which tells the step's end (the caller's own Close then does nothing)
	}
	if err = f.Sync(); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // read only
	return d.Sync()
}

// readCtl serves the ctl FIFO: stop and kill end the step (as Run's ctx
// would), pause and resume stop and start its clock.
func readCtl(dir string, stop context.CancelCauseFunc, clock *shimClock) {
	// Read-write: the FIFO never reports EOF when a writer goes.
	f, err := os.OpenFile(filepath.Join(dir, shimCtl), os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return // no ctl: the step runs to its end or its timeout
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch sc.Text() {
		case "stop":
			stop(errors.New("stopped"))
		case "kill":
			stop(ErrKill)
		case "pause":
			clock.pause()
		case "resume":
			clock.resume()
		}
	}
}

// shimClock is the step's timeout, stopped while paused.
type shimClock struct {
	mu     sync.Mutex
	left   time.Duration
	since  time.Time
	timer  *time.Timer // nil: no timeout
	fire   func()
	paused bool
}

func newShimClock(d time.Duration, fire func()) *shimClock {
	c := &shimClock{left: d, since: time.Now(), fire: fire}
	if d > 0 {
		c.timer = time.AfterFunc(d, fire)
	}
	return c
}

func (c *shimClock) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer == nil || c.paused || !c.timer.Stop() {
		return
	}
	c.left -= time.Since(c.since)
	c.paused = true
}

func (c *shimClock) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		return
	}
	c.paused, c.since = false, time.Now()
	c.timer = time.AfterFunc(max(c.left, 0), c.fire)
}

func (c *shimClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.paused = true
}
