package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// node is one planned step: a process to run and what it waits for.
type node struct {
	label  string
	path   string // the executable
	dir    string // working directory (the image folder, or the run's work/)
	after  []string
	fanOut bool
}

// errRunTimeout is the cancel cause when a run outlives config/timeout.
var errRunTimeout = errors.New("timed out")

// errDetach is the cancel cause of runs a stopping daemon leaves to their
// steps' shims: nothing of them is recorded, the next daemon resumes them.
var errDetach = fmt.Errorf("jobfs stopped; the run goes on: %w", exec.ErrDetach)

// detached reports whether the run was left to its shims (errDetach).
func detached(ctx context.Context) bool { return errors.Is(context.Cause(ctx), exec.ErrDetach) }

// shimFolder, in a run folder, holds one folder per step started under a
// shim (exec.Shim): its lock, ctl and exit.json. That folder existing is
// what says the step was started: a resumed run never starts it again.
const shimFolder = ".shim"

// pipeline executes the steps of one run as a DAG. Data flows as files: a
// first step reads the run's input/; a step after exactly one plain step
// reads that step's output/ directly; otherwise its input/ holds one
// hard-linked folder per predecessor (or, for a fan-out instance, the one
// file it got).
type pipeline struct {
	m      *Manager
	be     Backend // where the steps run: the job's config/backend
	k      runKey
	j      Job
	dir    string // the run folder
	nodes  []node
	single bool // one plain step: it writes the run's log and output/ directly
	// resume: a run an earlier daemon started (resumeRun); stored are its
	// steps as recorded then.
	resume bool
	stored map[string]Step
	tick   time.Time // Run.Tick: no step's program begins before it
	// attached: a step was followed under a shim an earlier daemon started
	// (a run that daemon never recorded RUNNING is not resume).
	attached atomic.Bool
	timeout  time.Duration
	limits   exec.Limits // config/limits of the run's snapshot
	runLog   *sharedLog  // multi-step: the run's log, lines prefixed [label]
	env      []string    // the job's secrets, as NAME=value lines
	secrets  [][]byte    // masked in every log

	mu    sync.Mutex
	state map[string]*nodeState
	// endLast, for a single step, records its end: the run's end commit
	// applies it (one commit fewer per run; until then the step's shim
	// record, exit.json, holds that end durably for a restart).
	endLast func(*Run)
}

type nodeState struct {
	status    Status
	outputs   []string // output folders: one, or one per fan-out instance
	instances []string // labels of the outputs, for folders named after them
	code      *int
	err       string
	ended     time.Time
	usage     *Usage       // from the step's cgroup; nil if unknown
	start     *StepStarted // its start, told with its end (StepResult.Start)
}

type stepResult struct {
	label string
	st    nodeState
}

// runPipeline runs the run's steps and returns its terminal record fields
// and, for a single step, its end to be recorded with them (nil if none).
func (m *Manager) runPipeline(ctx context.Context, k runKey) (Run, func(*Run)) {
	out, p := m.pipelineRun(ctx, k)
	if p == nil || out.Status == "" {
		if p != nil && p.endLast != nil {
			p.updateRun("the end of its step", p.endLast) // not the run's end: record it now
		}
		return out, nil
	}
	return out, p.endLast
}

// pipelineRun is runPipeline, with the pipeline once made (nil before).
func (m *Manager) pipelineRun(ctx context.Context, k runKey) (Run, *pipeline) {
	dir := m.RunDir(k.job, k.id)
	// One snapshot of the config: checked, then run; nothing below reads
	// the settings again.
	c, err := m.snapshot(k.job)
	if err != nil {
		return Run{Status: Failed, Error: err.Error()}, nil
	}
	if err := m.checkSigned(c); err != nil {
		m.appendRunLog(k.job, k.id, "jobfs: "+err.Error())
		return Run{Status: Failed, Error: err.Error()}, nil
	}
	env, secrets, err := m.openEnv(k.job, c.values["config/type"], c.envs)
	if err != nil {
		m.appendRunLog(k.job, k.id, "jobfs: "+err.Error())
		return Run{Status: Failed, Error: err.Error()}, nil
	}
	stored, resume := m.resumed(k)
	nodes, err := m.planRun(c, dir, resume)
	if err != nil {
		m.appendRunLog(k.job, k.id, "jobfs: "+err.Error())
		return Run{Status: Failed, Error: err.Error()}, nil
	}
	be, err := m.backendFor(c) // config/backend: backend_slurm.go
	if err != nil {
		m.appendRunLog(k.job, k.id, "jobfs: "+err.Error())
		return Run{Status: Failed, Error: err.Error()}, nil
	}
	timeout := c.timeout()
	clock := timeout
	if resume && timeout > 0 && !stored.StartedAt.IsZero() { // what is left of it; its steps' shims keep their own
		clock = max(timeout-m.now().Sub(stored.StartedAt)+pausedFor(dir, m.now()), time.Millisecond)
	}
	if wait := time.Until(stored.Tick); clock > 0 && !resume && wait > 0 {
		clock += wait // counted from the tick, when the steps begin (Run.Tick)
	}
	ctx, cancel := m.runDeadline(ctx, k, clock) // pause.go: the clock stops while paused
	defer cancel()
	p := &pipeline{m: m, k: k, j: c.job, dir: dir, nodes: nodes, timeout: timeout, limits: m.limits(c), be: be,
		state: map[string]*nodeState{}, env: env, secrets: secrets, resume: resume, stored: map[string]Step{}, tick: stored.Tick}
	for _, s := range stored.Steps {
		p.stored[s.Label] = s
	}
	p.single = len(nodes) == 1 && !nodes[0].fanOut
	if !resume {
		m.noteIsolation(k, be, p.limits)
	}
	if !p.single {
		if p.runLog, err = openSharedLog(m.RunLogPath(k.job, k.id), m.bellOf(k)); err != nil {
			return Run{Status: Failed, Error: err.Error()}, p
		}
		defer func() {
			if err := p.runLog.Close(); err != nil {
				m.slog.Warn(fmt.Sprintf("write run log: %v", err), m.runAttrs(k.job, k.id)...)
			}
		}()
		if len(stored.Steps) == 0 {
			p.recordPlan()
		}
	}
	p.run(ctx)
	if detached(ctx) && !p.allEnded() {
		return Run{}, p // no status: not recorded, the run goes on (execute)
	}
	out := p.outcome(ctx)
	if out.Status != Completed && out.Error != "" {
		m.appendRunLog(k.job, k.id, "jobfs: "+out.Error)
	}
	if !p.single && out.Status == Completed {
		if err := p.collectOutput(); err != nil {
			out = Run{Status: Failed, Error: "collect output: " + err.Error()}
		}
	}
	result, err := exec.Package(filepath.Join(dir, "output"), filepath.Join(dir, "result.zip"), m.opts.MaxResult)
	switch {
	case err != nil:
		if errors.Is(err, exec.ErrResultTooLarge) && !p.single {
			p.dropOutputs() // the files of the refused result go too
		}
		m.appendRunLog(k.job, k.id, "jobfs: "+trimSentinel(err))
		if out.Status == Completed {
			out.Status, out.Error, out.ExitCode = Failed, trimSentinel(err), nil
		}
	case result != "":
		out.Result, _ = filepath.Rel(dir, result)
	}
	if resume || p.attached.Load() { // its steps may have ended while no daemon ran: then it did too
		out.EndedAt = p.lastEnd()
	}
	return out, p
}

// lastEnd is when the last of the run's steps ended.
func (p *pipeline) lastEnd() time.Time {
	var last time.Time
	for _, st := range p.state {
		if st.ended.After(last) {
			last = st.ended
		}
	}
	return last
}

// trimSentinel drops the "result too large: " prefix of a wrapped sentinel.
func trimSentinel(err error) string {
	s := err.Error()
	if inner := errors.Unwrap(err); inner != nil && len(s) > len(inner.Error())+2 {
		return s[len(inner.Error())+2:]
	}
	return s
}

// paths of a step's log and output, relative to the run folder.
func (p *pipeline) stepPaths(label string) (log, output string) {
	if p.single {
		return "log", "output"
	}
	return filepath.Join("steps", label, "log"), filepath.Join("steps", label, "output")
}

// recordPlan stores every step as PENDING, so `ls steps` shows the plan.
func (p *pipeline) recordPlan() {
	p.updateRun("its plan", func(r *Run) {
		for _, n := range p.nodes {
			log, out := p.stepPaths(n.label)
			r.Steps = append(r.Steps, Step{Label: n.label, Status: Pending, Log: log, Output: out})
		}
	})
}

// run starts every node whose predecessors completed, skips those whose
// predecessors did not, and returns when every node is terminal.
func (p *pipeline) run(ctx context.Context) {
	for _, n := range p.nodes {
		p.state[n.label] = &nodeState{status: Pending}
	}
	results := make(chan stepResult)
	running := 0
	for {
		for i := range p.nodes {
			n := &p.nodes[i]
			if p.state[n.label].status != Pending {
				continue
			}
			ready, ok := p.predsDone(n)
			switch {
			case !ready || detached(ctx):
				continue // detached: the next daemon starts it
			case !ok || ctx.Err() != nil && !p.shimStarted(n.label):
				// A step whose shim was started (a resumed run's) is
				// followed even past the run's end: ctx's cause reaches it as
				// a stop, and its record says how and when it ended (a run
				// whose timeout passed while no daemon ran lost the end and
				// usage its step recorded).
				p.skip(n.label)
			default:
				p.setState(n.label, nodeState{status: Running})
				running++
				go func() { results <- stepResult{n.label, p.runNode(ctx, n)} }()
			}
		}
		if running == 0 {
			return
		}
		r := <-results
		running--
		p.setState(r.label, r.st)
	}
}

// predsDone reports whether n's predecessors are all terminal, and whether
// they all completed.
func (p *pipeline) predsDone(n *node) (ready, ok bool) {
	ok = true
	for _, q := range n.after {
		switch p.state[q].status {
		case Pending, Running:
			return false, false
		case Completed:
		default:
			ok = false
		}
	}
	return true, ok
}

func (p *pipeline) skip(label string) {
	now := p.m.now().UTC()
	p.setState(label, nodeState{status: Skipped, ended: now})
	if !p.single {
		p.updateRun("step "+label+" skipped", func(r *Run) {
			if s, ok := r.Step(label); ok {
				s.Status, s.EndedAt = Skipped, now
			}
		})
	}
}

// runNode runs a plain node, or every instance of a fan-out node.
func (p *pipeline) runNode(ctx context.Context, n *node) nodeState {
	if !n.fanOut {
		if p.shimStarted(n.label) { // resumed: its input was made when it started
			return p.runStep(ctx, n, n.label, "")
		}
		input, err := p.inputFor(n)
		if err != nil {
			return nodeState{status: Failed, err: fmt.Sprintf("step %s: prepare input: %v", n.label, err), ended: p.m.now()}
		}
		return p.runStep(ctx, n, n.label, input)
	}
	return p.fanOut(ctx, n)
}

// inputFor prepares a plain node's input folder.
func (p *pipeline) inputFor(n *node) (string, error) {
	switch {
	case len(n.after) == 0:
		return filepath.Join(p.dir, "input"), nil
	case len(n.after) == 1 && !p.nodeByLabel(n.after[0]).fanOut:
		return p.stateOf(n.after[0]).outputs[0], nil
	}
	in := filepath.Join(p.dir, "steps", n.label, "input")
	// Made even when no file comes in (a fan-out over nothing): the step
	// still gets its /input.
	if err := os.MkdirAll(in, 0o755); err != nil {
		return "", err
	}
	for _, q := range n.after {
		st := p.stateOf(q)
		for i, out := range st.outputs {
			if err := linkTree(out, filepath.Join(in, st.instances[i])); err != nil {
				return "", err
			}
		}
	}
	return in, nil
}

// setState and stateOf guard state: the loop in run writes it while step
// goroutines read their predecessors'.
func (p *pipeline) setState(label string, st nodeState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state[label] = &st
}

func (p *pipeline) stateOf(label string) nodeState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.state[label]
}

func (p *pipeline) nodeByLabel(label string) *node {
	for i := range p.nodes {
		if p.nodes[i].label == label {
			return &p.nodes[i]
		}
	}
	return nil
}

// allEnded reports whether every step of the run is terminal.
func (p *pipeline) allEnded() bool {
	for _, st := range p.state {
		if !st.status.Terminal() {
			return false
		}
	}
	return true
}

// shimStarted reports whether a shim was started for the step (by this
// daemon or an earlier one).
func (p *pipeline) shimStarted(label string) bool {
	sb, ok := p.be.(shimBackend)
	return ok && sb.Shims() && stepSubmitted(filepath.Join(p.dir, shimFolder, label))
}

// fanOut runs one instance of n per output file of its predecessor, in
// parallel, as steps label.1, label.2 ...
func (p *pipeline) fanOut(ctx context.Context, n *node) nodeState {
	pred := p.stateOf(n.after[0])
	var files []string
	for _, out := range pred.outputs {
		fs, err := regularFiles(out)
		if err != nil {
			return nodeState{status: Failed, err: fmt.Sprintf("step %s: list input: %v", n.label, err), ended: p.m.now()}
		}
		files = append(files, fs...)
	}
	labels := make([]string, len(files))
	for i := range files {
		labels[i] = n.label + "." + strconv.Itoa(i+1)
	}
	p.updateRun("the instances of step "+n.label, func(r *Run) {
		var steps []Step
		for _, s := range r.Steps {
			if s.Label != n.label {
				steps = append(steps, s)
				continue
			}
			if len(labels) == 0 { // nothing to fan out over: done, and shown so
				now := p.m.now()
				s.Status, s.StartedAt, s.EndedAt = Completed, now, now
				steps = append(steps, s)
				continue
			}
			for _, l := range labels {
				log, out := p.stepPaths(l)
				steps = append(steps, Step{Label: l, Status: Pending, Log: log, Output: out})
			}
		}
		r.Steps = steps
	})
	if len(files) == 0 {
		logRel, outRel := p.stepPaths(n.label)
		if err := errors.Join(os.MkdirAll(filepath.Join(p.dir, outRel), 0o755),
			os.WriteFile(filepath.Join(p.dir, logRel), nil, 0o644)); err != nil {
			p.m.slog.Warn(fmt.Sprintf("step %s: make its empty log and output: %v", n.label, err), p.m.runAttrs(p.k.job, p.k.id)...)
		}
		p.m.appendRunLog(p.k.job, p.k.id, fmt.Sprintf("[%s] jobfs: %s wrote no file to fan out over: no instance ran", n.label, n.after[0]))
	}
	results := make([]nodeState, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := filepath.Join(p.dir, "steps", labels[i], "input")
			if p.shimStarted(labels[i]) { // resumed: its input was made when it started
				results[i] = p.runStep(ctx, n, labels[i], in)
				return
			}
			if err := linkTree(f, filepath.Join(in, filepath.Base(f))); err != nil {
				results[i] = nodeState{status: Failed, err: fmt.Sprintf("step %s: prepare input: %v", labels[i], err), ended: p.m.now()}
				return
			}
			results[i] = p.runStep(ctx, n, labels[i], in)
		}()
	}
	wg.Wait()
	st := nodeState{status: Completed, ended: p.m.now()}
	for i, r := range results {
		st.outputs = append(st.outputs, r.outputs...)
		st.instances = append(st.instances, r.instances...)
		if r.status != Completed && (st.status == Completed || r.ended.Before(st.ended)) {
			st.status, st.code, st.err, st.ended = r.status, r.code, r.err, r.ended
		}
		_ = i
	}
	return st
}

// runStep runs one step on the Backend: a plain step or a fan-out instance.
func (p *pipeline) runStep(ctx context.Context, n *node, label, input string) nodeState {
	logRel, outRel := p.stepPaths(label)
	output := filepath.Join(p.dir, outRel)
	if err := os.MkdirAll(output, 0o755); err != nil {
		return nodeState{status: Failed, err: fmt.Sprintf("step %s: %v", label, err), ended: p.m.now()}
	}
	sb, shims := p.be.(shimBackend)
	shims = shims && sb.Shims()
	shimDir := filepath.Join(p.dir, shimFolder, label)
	attach := shims && stepSubmitted(shimDir)
	if !attach && p.resume {
		if s, ok := p.stored[label]; ok && s.Status == Running {
			return p.endStep(label, nodeState{status: Failed, err: fmt.Sprintf("step %s: its process ended with the daemon that started it (it ran without a shim, or its shim never started): it is not started again", label)})
		}
	}
	if !attach { // an attached step holds no slot: it runs already
		release, err := p.m.acquireStepSlot(ctx)
		if err != nil {
			if detached(ctx) {
				return nodeState{status: Pending}
			}
			return p.endStep(label, nodeState{status: Skipped, ended: p.m.now()})
		}
		defer release()
		if _, holds := p.be.(tickHolder); !holds && !p.waitTick(ctx) {
			return p.endStep(label, nodeState{status: Skipped, ended: p.m.now()})
		}
	}
	o := exec.LogOptions{Max: p.m.opts.MaxLog, Notify: p.m.bellOf(p.k).ring, Secrets: p.secrets}
	if !p.single {
		w := p.runLog.Prefixed(label)
		defer func() { _ = w.Close() }() // never fails: the shared log keeps its write errors
		o.Tee = w
	}
	if shims {
		return p.runShimmed(ctx, n, label, input, output, shimDir, attach, o)
	}
	log, err := exec.OpenLog(filepath.Join(p.dir, logRel), o)
	if err != nil {
		return p.endStep(label, nodeState{status: Failed, err: fmt.Sprintf("step %s: %v", label, err)})
	}
	res := p.be.RunStep(ctx, StepSpec{
		Job: p.k.job, Run: p.k.id, Label: label, Owner: p.j.Owner,
		Program: n.path, Dir: n.dir, Input: input, Output: output,
		Env: append(p.m.stepEnv(p.j, p.k.id, label, ""), p.env...), Secrets: p.secrets,
		Limits: p.limits, Timeout: p.timeout, Grace: p.m.opts.Grace, Log: log, NotBefore: p.tick,
		Started: func(s StepStarted) {
			p.m.startedAt(p.k, Step{Label: label, Log: logRel, Output: outRel}, s.Pgid, s.PgidStart, p.m.clockAt(s.At))
		},
	})
	// Closed before the step's end is recorded: its last bytes are on disk
	// first. What it says the log lost is the daemon's to report; the log
	// itself says it when it can.
	if err := log.Close(); err != nil {
		p.m.slog.Warn(fmt.Sprintf("step %s: log: %v", label, err), p.m.runAttrs(p.k.job, p.k.id)...)
	}
	return p.stepEnded(ctx, label, output, res)
}

// waitTick waits for the run's tick (Run.Tick) before a step goes to a
// backend that does not wait for it itself; false when ctx ended first.
func (p *pipeline) waitTick(ctx context.Context) bool {
	wait := time.Until(p.tick) // the scheduler's clock: the wall's
	if p.tick.IsZero() || wait <= 0 {
		return true
	}
	return sleepCtx(ctx, wait)
}

// runShimmed runs (or, attach, re-attaches to) a step under a shim that
// writes its log and outlives the daemon.
func (p *pipeline) runShimmed(ctx context.Context, n *node, label, input, output, shimDir string, attach bool, o exec.LogOptions) nodeState {
	logRel, outRel := p.stepPaths(label)
	spec := StepSpec{
		Job: p.k.job, Run: p.k.id, Label: label, Owner: p.j.Owner,
		Program: n.path, Dir: n.dir, Input: input, Output: output,
		Env: append(p.m.stepEnv(p.j, p.k.id, label, ""), p.env...), Secrets: p.secrets,
		Limits: p.limits, Timeout: p.timeout, Grace: p.m.opts.Grace, NotBefore: p.tick,
		LogPath: filepath.Join(p.dir, logRel), LogOptions: o, ShimDir: shimDir,
		Started: func(s StepStarted) {
			p.m.startedAt(p.k, Step{Label: label, Log: logRel, Output: outRel}, s.Pgid, s.PgidStart, p.m.clockAt(s.At))
		},
	}
	if err := os.MkdirAll(filepath.Dir(shimDir), 0o700); err != nil {
		return p.endStep(label, nodeState{status: Failed, err: fmt.Sprintf("step %s: %v", label, err)})
	}
	sb := p.be.(shimBackend) // checked by runStep
	var res StepResult
	if attach {
		p.noteNewerShim(label, shimDir)
		if st, ok := p.stored[label]; (!ok || st.Status == Pending) && exec.ShimStarted(shimDir) { // a Slurm step may wait in its queue
			// Its daemon ended before it recorded the start: recorded
			// now, with the time its shim gives (no process group: its
			// shim holds the step).
			p.m.startedAt(p.k, Step{Label: label, Log: logRel, Output: outRel}, 0, 0, exec.ShimStartedAt(shimDir))
		}
		p.attached.Store(true)
		res = sb.AttachStep(ctx, spec)
	} else {
		res = sb.RunStep(ctx, spec)
	}
	if res.Outcome == exec.Detached {
		return nodeState{status: Running} // not recorded: it runs on
	}
	return p.stepEndedAt(ctx, label, output, res, shimEnded(shimDir))
}

// noteNewerShim says in the run log that a step runs under a shim newer
// than this jobfs (an upgrade undone): it is let finish, unread.
func (p *pipeline) noteNewerShim(label, shimDir string) {
	if v, err := exec.ShimProtocolOf(shimDir); err == nil && v > exec.ShimProtocol {
		p.m.appendRunLog(p.k.job, p.k.id, fmt.Sprintf("jobfs: step %s runs under a shim of protocol %d, newer than this jobfs knows (%d): it is let finish, but how it ended cannot be read here", label, v, exec.ShimProtocol))
	}
}

// shimEnded is when the step ended, as its shim recorded it (it may have
// been while no daemon ran); zero without a record. A shim this daemon
// follows may still be removing its step's cgroup: its record is there.
func shimEnded(dir string) time.Time {
	if rec, err := exec.ReadShimRecord(dir); err == nil && rec != nil {
		return rec.Ended
	}
	return time.Time{}
}

// stepEnded records how a step's process ended.
func (p *pipeline) stepEnded(ctx context.Context, label, output string, res StepResult) nodeState {
	return p.stepEndedAt(ctx, label, output, res, time.Time{})
}

// stepEndedAt is stepEnded for a step that ended at ended (zero: now).
func (p *pipeline) stepEndedAt(ctx context.Context, label, output string, res StepResult, ended time.Time) nodeState {
	st := p.stepOutcome(ctx, label, res)
	st.ended = ended
	st.usage, st.start = res.Usage, res.Start
	if res.OOM {
		st.status = Failed
		st.err = fmt.Sprintf("step %s: out of memory (limit %d MiB)", label, p.limits.MemoryMiB)
		if st.code == nil || *st.code == 0 {
			// The OOM killer's SIGKILL ended a child and the step's own
			// process exited 0: a FAILED run's exit_code is never 0.
			killed := 128 + int(syscall.SIGKILL)
			st.code = &killed
		}
	}
	st.outputs, st.instances = []string{output}, []string{label}
	return p.endStep(label, st)
}

// updateRun records a change to the run's steps. A failure leaves the
// stored run behind what happened, so it is logged (the run's own end is
// recorded apart, by finish).
func (p *pipeline) updateRun(what string, fn func(*Run)) {
	if _, err := p.m.store.UpdateRun(p.k.job, p.k.id, fn); err != nil {
		p.m.slog.Warn(fmt.Sprintf("record %s: %v", what, err), p.m.runAttrs(p.k.job, p.k.id)...)
	}
}

// endStep records a step's end: at st.ended, or now.
func (p *pipeline) endStep(label string, st nodeState) nodeState {
	if st.ended.IsZero() {
		st.ended = p.m.now()
	}
	st.ended = st.ended.UTC()
	var startedAt time.Time
	if st.start != nil {
		startedAt = p.m.clockAt(st.start.At)
	}
	first := false // the run's start, told once committed (toldStarted)
	record := func(r *Run) {
		s, ok := r.Step(label)
		if !ok {
			log, out := p.stepPaths(label)
			r.Steps = append(r.Steps, Step{Label: label, Log: log, Output: out})
			s = &r.Steps[len(r.Steps)-1]
		}
		first = st.start != nil && recordStart(r, s, startedAt, *st.start)
		s.Status, s.ExitCode, s.Error, s.EndedAt, s.Usage = st.status, st.code, st.err, st.ended, st.usage
	}
	if p.single {
		p.endLast = record // the run ends with it: recorded in the run's end commit (finishWith tells its start)
		return st
	}
	r, err := p.m.store.UpdateRun(p.k.job, p.k.id, record)
	if err != nil {
		p.m.slog.Warn(fmt.Sprintf("record the end of step %s: %v", label, err), p.m.runAttrs(p.k.job, p.k.id)...)
	} else if first {
		p.m.toldStarted(p.k, r)
	}
	return st
}

// stepOutcome maps how a step's process ended onto its status.
func (p *pipeline) stepOutcome(ctx context.Context, label string, res StepResult) nodeState {
	code := res.ExitCode
	switch res.Outcome {
	case exec.NotStarted:
		return nodeState{status: Failed, err: fmt.Sprintf("step %s: %v", label, res.Err)}
	case exec.TimedOut:
		return nodeState{status: Timeout, code: &code, err: fmt.Sprintf("step %s timed out", label)}
	case exec.Cancelled:
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errRunTimeout):
			code = 124
			return nodeState{status: Timeout, code: &code, err: fmt.Sprintf("timed out after %s (config/timeout)", p.timeout)}
		case errors.Is(cause, errShutdown):
			return nodeState{status: Failed, code: &code, err: errShutdown.Error()}
		default:
			if cause == nil { // stopped outside jobfs (scancel): the backend says so
				cause = res.Err
			}
			return nodeState{status: Cancelled, code: &code, err: stopReason(ctx, cause)}
		}
	}
	switch {
	case code == 0:
		return nodeState{status: Completed, code: &code}
	case code > 128:
		return nodeState{status: Failed, code: &code, err: fmt.Sprintf("step %s was killed by signal %d (%v)", label, code-128, syscall.Signal(code-128))}
	default:
		return nodeState{status: Failed, code: &code, err: fmt.Sprintf("step %s exited with code %d", label, code)}
	}
}

// outcome decides the run's status from its steps: the run-level cause
// (timeout, stop, shutdown) first, then the first step that failed.
func (p *pipeline) outcome(ctx context.Context) Run {
	var first *nodeState
	for _, n := range p.nodes {
		st := p.state[n.label]
		if st.status != Completed && st.status != Skipped && (first == nil || st.ended.Before(first.ended)) {
			first = st
		}
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errRunTimeout):
		code := 124
		return Run{Status: Timeout, ExitCode: &code, Error: fmt.Sprintf("timed out after %s (config/timeout)", p.timeout)}
	case errors.Is(cause, errShutdown):
		return Run{Status: Failed, Error: errShutdown.Error(), ExitCode: codeOf(first)}
	case cause != nil:
		return Run{Status: Cancelled, Error: stopReason(ctx, cause), ExitCode: codeOf(first)}
	}
	if first != nil {
		return Run{Status: first.status, ExitCode: first.code, Error: first.err}
	}
	zero := 0
	return Run{Status: Completed, ExitCode: &zero}
}

// stopReason says why a run was cancelled: its first cause, and a kill
// that cut a stop's grace short (the context keeps the first cause only).
func stopReason(ctx context.Context, cause error) string {
	if errors.Is(cause, errStop) && exec.Killed(ctx) {
		return errStop.Error() + ", then killed (ctl) within its grace"
	}
	return cause.Error()
}

func codeOf(st *nodeState) *int {
	if st == nil {
		return nil
	}
	return st.code
}

// collectOutput links the final steps' outputs into the run's output/: a
// single plain final step flat, otherwise one folder per final step (or
// fan-out instance).
func (p *pipeline) collectOutput() error {
	finals := p.finals()
	out := filepath.Join(p.dir, "output")
	if len(finals) == 1 && !p.nodeByLabel(finals[0]).fanOut {
		return linkTree(p.state[finals[0]].outputs[0], out)
	}
	for _, f := range finals {
		st := p.state[f]
		for i, o := range st.outputs {
			if err := linkTree(o, filepath.Join(out, st.instances[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropOutputs empties every step's output folder after a result over the
// cap: no output of the run is kept (the cap bounds a run's disk use).
func (p *pipeline) dropOutputs() {
	for _, n := range p.nodes {
		st := p.state[n.label]
		if st == nil {
			continue
		}
		for _, o := range st.outputs {
			if ents, err := os.ReadDir(o); err == nil {
				for _, e := range ents {
					if err := os.RemoveAll(filepath.Join(o, e.Name())); err != nil {
						p.m.slog.Warn(fmt.Sprintf("drop output over the cap: %v", err), p.m.runAttrs(p.k.job, p.k.id)...)
					}
				}
			}
		}
	}
}

// finals are the labels of the steps no other step comes after.
func (p *pipeline) finals() []string {
	used := map[string]bool{}
	for _, n := range p.nodes {
		for _, q := range n.after {
			used[q] = true
		}
	}
	var finals []string
	for _, n := range p.nodes {
		if !used[n.label] {
			finals = append(finals, n.label)
		}
	}
	return finals
}

// acquireStepSlot waits for one of the daemon-wide step slots.
func (m *Manager) acquireStepSlot(ctx context.Context) (func(), error) {
	select {
	case m.stepSlots <- struct{}{}:
		return func() { <-m.stepSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// regularFiles lists the regular files below dir, or dir itself when it is
// a file.
func regularFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// linkTree makes dst a copy of src (a file or a folder) made of hard links:
// no data is copied. It falls back to copying across file systems.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Link(p, target); err != nil {
				if !errors.Is(err, syscall.EXDEV) {
					return err
				}
				return copyFile(p, target)
			}
		}
		return nil
	})
}

// copyFile copies the regular file src to a new file dst, following no
// symlink at either end: src is what a step left, dst a folder it may have
// written too.
func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read only: nothing to flush
	if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy error is the one to report
		return err
	}
	return out.Close()
}
