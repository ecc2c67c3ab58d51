package exec

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"sync"
	"syscall"
	"time"
)

// pooledShimArg, in place of a shim's folder, starts a shim that waits for
// its step: it reads the spec on fd 3 and takes its folder, log and run log
// from it. Nothing is started until the spec arrives.
const pooledShimArg = "-"

// ShimPool keeps shims started ahead of the steps they will run, so that a
// step's start does not wait for a program's start (jobfs-shim about 4 ms,
// jobfs itself about 10 ms on a 2-core VM). An idle shim holds nothing but
// the read end of its spec pipe and the write end of its status pipe; it
// exits when the pool closes that pipe (Close, or the daemon's end).
type ShimPool struct {
	binary string
	size   int

	mu       sync.Mutex
	ahead    string    // InitAhead as JSON for the shims' argv; empty: none
	aheadKey InitAhead // what ahead says
	idle     []*shimProc
	starting int
	running  int // steps taken from the pool that have not ended (track)
	closed   bool
}

// NewShimPool returns a pool of up to size idle shims of binary; it starts
// them once the first one is asked for (take).
func NewShimPool(binary string, size int) *ShimPool {
	return &ShimPool{binary: binary, size: size}
}

// StartInitsAhead has each idle shim start the init of its coming step
// too, for steps isolated as k says (a step isolated otherwise gets an init
// of its own). Call it before the first step.
func (p *ShimPool) StartInitsAhead(k InitAhead) {
	b, err := json.Marshal(k)
	if err != nil {
		return // a struct of strings and bools: cannot fail
	}
	p.mu.Lock()
	p.ahead, p.aheadKey = string(b), k
	p.mu.Unlock()
}

// shimProc is a started shim: its process, the write end of its spec pipe
// (nil once the spec is sent) and the read end of its status pipe.
type shimProc struct {
	cmd    *osexec.Cmd
	spec   *os.File
	status *os.File
	reaped chan struct{} // closed once the process was waited for
	pool   *ShimPool     // the pool it was taken from; nil: started for its step
	held   bool          // the pool's refill waits for its step's end
}

// startShimProc starts binary as a shim with the given folder argument
// and extra descriptors after the spec and status pipes.
func startShimProc(binary string, args []string, extra ...*os.File) (*shimProc, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		closeUnused(specR, specW)
		return nil, err
	}
	cmd := &osexec.Cmd{
		Path: binary, Args: append([]string{binary, shimArg}, args...),
		// One P: the shim's goroutines wait on pipes, files and its step.
		// A second cost 4% of a trigger and of runs/s on a 2-core VM (the
		// runtime's extra threads and their wake-ups); the log's copy and
		// the stream kept their speed (CmpBigLog, CmpStream).
		Env:        []string{"GOMAXPROCS=1", "GORACE=atexit_sleep_ms=0"},
		ExtraFiles: append([]*os.File{specR, statusW}, extra...),
		// A session of its own: no terminal's ^C, no signal to the
		// daemon's group, and no Pdeathsig: it outlives the daemon.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	closeUnused(specR, statusW)
	if err != nil {
		closeUnused(specW, statusR)
		return nil, err
	}
	p := &shimProc{cmd: cmd, spec: specW, status: statusR, reaped: make(chan struct{})}
	pid := cmd.Process.Pid
	addOwnShim(pid)
	go func() {
		waitExited(pid)
		dropOwnShim(pid) // before the reap frees the pid for another process
		_ = cmd.Wait()   // its end is told by its lock and record
		close(p.reaped)
	}()
	return p, nil
}

// send writes the spec to the shim and closes the pipe.
func (p *shimProc) send(spec shimSpec) error {
	err := json.NewEncoder(p.spec).Encode(spec)
	if cerr := p.spec.Close(); err == nil {
		err = cerr
	}
	p.spec = nil
	return err
}

// take returns an idle shim, or nil when none is ready (the caller starts
// one itself); either way the pool starts what it lacks, at once or, for
// a step alone, once it has ended (see track). k, when set, is
// how the taking step is isolated: when it differs from what the inits
// started ahead expect (config/network none, say) but uses the same init,
// the shims started from now on start inits like its, so that the next
// steps of such jobs find theirs ready too.
func (p *ShimPool) take(k *InitAhead) *shimProc {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k != nil && p.ahead != "" && k.Init == p.aheadKey.Init && *k != p.aheadKey {
		if b, err := json.Marshal(k); err == nil { // a struct of strings and bools: cannot fail
			p.ahead, p.aheadKey = string(b), *k
		}
	}
	for len(p.idle) > 0 {
		s := p.idle[0]
		p.idle = p.idle[1:]
		select {
		case <-s.reaped: // killed while idle: its pipes go with it
			closeUnused(s.spec, s.status)
			continue
		default:
		}
		// Alone, with an idle shim left for a second trigger, the step
		// holds the refill back until it has ended (or for refillAfter):
		// a shim's and its init's start (about 5 ms of CPU on a 2-core VM)
		// would otherwise share the cores with its own start and end.
		// Measured there (tmpfs state, triggers 60 ms apart, alternating
		// daemons): trigger p50 11.2-11.9 -> 9.2-9.7 ms; runs/s alike
		// (medians 123 and 121 of five rounds). Beside other steps it does
		// not hold it: the pool would be empty for the next ones.
		s.pool, s.held = p, len(p.idle) > 0 && p.running == 0
		p.running++
		if !s.held {
			p.refillLocked()
		}
		return s
	}
	p.refillLocked()
	return nil
}

// refillAfter bounds how long a step holds back the pool's refill (see
// take): a trivial step's run has recorded its end well before.
var refillAfter = 100 * time.Millisecond

// Refill starts the shims the pool lacks, a refill held for a step (see
// take) included. The daemon calls it once a run has recorded its end:
// until then the step's shim, its end and the run's last commit and
// answer to its waiters are on the trigger's path, and a shim's and its
// init's start (about 5 ms of CPU on a 2-core VM) would share the cores
// with them.
func (p *ShimPool) Refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refillLocked()
}

// track returns the calls a step taken from a pool makes: started once its
// start is known (begun or failed), ended once it has ended. The pool
// counts it running until it ended; a refill held for it (see take) is
// made by Refill once its run has recorded its end, or refillAfter after
// its start at the latest (a long step; a caller that never calls Refill),
// or at once when it ends without having started. No-ops for a shim not
// so taken.
func (s *shimProc) track() (started, ended func()) {
	p := s.pool
	if p == nil {
		return func() {}, func() {}
	}
	var once sync.Once
	refill := func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.refillLocked()
		})
	}
	var mu sync.Mutex // started and ended may race: a step that never said it started
	var timer *time.Timer
	started = func() {
		mu.Lock()
		defer mu.Unlock()
		if s.held && timer == nil {
			timer = time.AfterFunc(refillAfter, refill)
		}
	}
	ended = func() {
		mu.Lock()
		armed := timer != nil // else it never started: nothing of it is recorded
		mu.Unlock()
		if s.held && !armed {
			refill()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.running--
	}
	return started, ended
}

// refillLocked starts shims until size are idle or starting.
func (p *ShimPool) refillLocked() {
	for !p.closed && len(p.idle)+p.starting < p.size {
		p.starting++
		args := []string{pooledShimArg}
		if p.ahead != "" {
			args = append(args, p.ahead)
		}
		go p.startOne(args)
	}
}

func (p *ShimPool) startOne(args []string) {
	s, err := startShimProc(p.binary, args)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starting--
	if err != nil {
		return // steps start their shims themselves, which reports the error
	}
	if p.closed {
		closeIdle(s) // it exits by itself; Close may be past waiting
		return
	}
	p.idle = append(p.idle, s)
}

// closeIdle ends an idle shim: at the end of its spec pipe it exits.
func closeIdle(s *shimProc) {
	closeUnused(s.spec, s.status)
}

// Close ends the idle shims and waits up to closeWait for them to exit
// (a daemon that stops leaves no idle shim behind). The shims taken for
// steps are not waited for: they outlive the daemon with their steps. (It
// waited for every shim the pool had started, so a stop with a step of one
// still running took the whole two seconds.)
func (p *ShimPool) Close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		closeIdle(s)
	}
	deadline := time.NewTimer(closeWait)
	defer deadline.Stop()
	for _, s := range idle {
		select {
		case <-s.reaped:
		case <-deadline.C:
			for _, s := range idle {
				_ = s.cmd.Process.Kill() // an idle shim holds no step: nothing is lost
			}
			return
		}
	}
}

// closeWait bounds how long Close waits for the idle shims to exit.
var closeWait = 2 * time.Second
