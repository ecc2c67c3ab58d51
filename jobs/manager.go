package jobs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/jobs/boltstore"
	"github.com/jobfs/jobfs/scheduler"
)

// Options configure a Manager.
type Options struct {
	StateDir  string        // holds jobfs.db and jobs/
	ReposDir  string        // repo images: <repos>/<owner>/<name>/entrypoint
	MaxActive int           // runs executing at once; default 2 x cores
	MaxResult int64         // result cap in bytes; default 100 MB
	Grace     time.Duration // SIGTERM to SIGKILL on stop and timeout; default 10s
	MaxLog    int64         // per-run log cap in bytes; default 1 GiB
	Logger    *log.Logger   // the daemon's log (stderr); default discards
	// Slog is the daemon's structured log (owner, job, run on each line);
	// default: lines through Logger.
	Slog *slog.Logger
	// MaxJobLog caps a job's event log in bytes: past it, log moves to
	// log.1 (one kept). Default 4 MiB.
	MaxJobLog int64
	// StopRunsOnExit runs steps inside the daemon, ending with it: Close
	// stops every active run (FAILED), a crash leaves them to be failed at
	// the next start. By default each step runs under a shim that outlives
	// the daemon: Close leaves the runs to them, the next start resumes
	// them (recover.go).
	StopRunsOnExit bool
	// Init is the jobfs binary, re-executed as each step's init; empty runs
	// steps as plain processes (tests of this package, embedding).
	Init string
	// Shim is the program each step's shim runs (jobfs-shim, or a binary
	// whose main calls exec.MaybeInit); "" is the daemon's own binary.
	Shim string
	// Cgroups gives every step a cgroup with the job's limits; nil means
	// limits cannot be enforced here, and NoLimits says why.
	Cgroups  exec.Cgroups
	NoLimits string
	// RequireLimits fails runs that cannot get their limits.
	RequireLimits bool
	// Namespaces gives every step its own namespaces and root; UserNS adds
	// a user namespace so that a normal user's daemon can (see exec.ProbeUserNS).
	Namespaces bool
	UserNS     bool
	// NoIsolation says why steps run without namespaces (a normal user
	// whose user namespaces are refused); RequireIsolation fails such runs.
	NoIsolation      string
	RequireIsolation bool
	// Sealer encrypts config/env values; nil refuses secrets.
	Sealer Sealer
	// TrustedKeys, when set, makes every run need a valid signature by one
	// of its keys over the job's current config; replaceable at run time.
	TrustedKeys *KeyRing
	Now         func() time.Time
	// Store keeps the jobs and runs; nil opens StateDir/jobfs.db (a
	// boltstore.Store). The Manager closes it.
	Store Store
	// Backend runs the steps; nil runs them on this machine (cgroups,
	// namespaces and the init of the options above).
	Backend Backend
	// Cluster makes this daemon one node of several sharing Store and
	// StateDir (cluster.go); nil is a single daemon. NoExecute makes the
	// node view and trigger only: it never claims a run.
	Cluster   Cluster
	NoExecute bool
	// Slurm, when set, lets jobs run their steps on Slurm
	// (config/backend slurm; backend_slurm.go).
	Slurm *SlurmOptions
}

// Manager owns the store and every run in flight.
//
// Lock order: triggerMu (only triggers wait on it), then mu, then logMu,
// then the small locks of what mu guards (a bell's, a reader budget's, the
// stage's, the bus's). mu guards only memory: it is never held across a
// store commit, a file's creation or removal, or a step; a change that
// needs both reserves under mu, commits outside it and publishes under it
// (trigger.go, DeleteJob, prune), so that stream reads (Follow), Busy and
// Wait never wait for an fsync.
type Manager struct {
	store     Store
	state     string
	repos     string
	opts      Options
	logger    *log.Logger
	now       func() time.Time
	opened    time.Time // m.now() at New: a start recorded later but before it happened while no jobfs ran
	baseCtx   context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // executing runs, triggers in flight, queued ticks' triggers
	closing   chan struct{}  // closed by BeginClose
	stepSlots chan struct{}  // one token per step process running, daemon-wide
	sealer    Sealer
	sched     *scheduler.Scheduler
	waiting   map[string]bool // jobs with a queued scheduled tick (overlap queue); guarded by mu
	firing    map[string]bool // jobs whose scheduled run is being started (schedule.go fire); guarded by mu
	catchups  []string        // jobs owed a catch-up run when Start is called; guarded by mu
	device    string          // disk of the state folder, where steps write
	deviceErr error           // why io cannot be limited
	backend   Backend         // runs the steps (backend.go)
	slurm     *slurmBackend   // nil without Options.Slurm
	closeOnce sync.Once

	triggerMu sync.Mutex // one trigger at a time (trigger.go); taken before mu, never under it

	mu       sync.Mutex
	stopping bool
	queue    []runKey              // PENDING runs waiting for a slot, in order
	running  int                   // runs executing now
	runsOf   map[Owner]int         // runs executing now by owner (fair.go)
	owners   sync.Map              // job id -> Owner, as the queue's runs are dispatched by it (fair.go)
	active   map[runKey]*activeRun // PENDING or RUNNING runs
	perJob   map[string]int        // active runs per job id, with those being committed
	idle     []string              // jobs whose backend folders are kept for a next run, oldest first (idleJob)
	// committing counts runs reserved but not yet published per job: they
	// may be in the store and not in active (prune waits for them).
	committing map[string]int
	deleting   map[string]bool // jobs whose deletion is being committed: no run may start
	logMu      sync.Mutex      // serialises appends to event logs
	stage      stageWriters    // staged files open for writing (stage.go)

	bus     bus             // .jobfs/events readers (bus.go)
	metrics *metrics        // Prometheus metrics (metrics.go)
	slog    *slog.Logger    // the daemon's structured log
	folds   map[string]fold // repeated events being counted per job; guarded by logMu
	mirrors mirrorGate      // each owner's share of the daemon's log (mirror.go)
	afters  afterIndex      // jobs with config/after (after.go)
	cluster *clusterState   // nil for a single daemon (cluster_run.go)
}

type runKey struct {
	job string
	id  uint64
}

type activeRun struct {
	cancel  context.CancelCauseFunc // set once the run executes
	done    chan struct{}           // closed when the run is terminal
	bell    *bell                   // rung at every append to the run's log
	readers *ReaderBudget           // shared by the live readers of its log
	timer   *time.Timer             // a pending retry's wait (retry.go); nil otherwise
	clock   *runClock               // config/timeout, stopped while paused (pause.go)
	paused  bool                    // frozen by ctl pause
	stopped bool                    // Stop ends it before it started: never queue it
	remote  bool                    // cluster: executes on another node, or waits for one
	claimed bool                    // cluster: this node claimed it to execute it
	// claimable: cluster: the feed last showed it PENDING, unclaimed and due.
	claimable bool
	// started: resumed after a restart while PENDING in the store with a
	// step started (recover.go's stepsStarted): resumed as a started run.
	started bool
}

// errShutdown is the cancel cause of runs stopped by Close.
var errShutdown = errors.New("jobfs stopped while the run was active")

// New opens the state directory and recovers from an earlier stop: runs
// that were active are marked FAILED and processes they left are killed.
func New(opts Options) (*Manager, error) {
	if opts.MaxActive <= 0 {
		opts.MaxActive = 2 * runtime.NumCPU()
	}
	if opts.MaxResult <= 0 {
		opts.MaxResult = 100_000_000
	}
	if opts.MaxLog <= 0 {
		opts.MaxLog = 1 << 30
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = log.New(discard{}, "", 0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Slog == nil {
		opts.Slog = slog.New(NewLineHandler(opts.Logger))
	}
	if opts.MaxJobLog <= 0 {
		opts.MaxJobLog = DefaultMaxJobLog
	}
	if opts.ReposDir == "" {
		opts.ReposDir = filepath.Join(opts.StateDir, "repos")
	}
	if err := prepareStateDirs(opts.StateDir, opts.ReposDir); err != nil {
		return nil, err
	}
	go removeSharedSnapshots(filepath.Join(opts.StateDir, "images")) // best effort, meanwhile
	store, err := openStore(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		store: store, state: opts.StateDir, repos: opts.ReposDir, opts: opts,
		logger: opts.Logger, now: opts.Now, baseCtx: ctx, cancel: cancel,
		active: map[runKey]*activeRun{}, perJob: map[string]int{}, runsOf: map[Owner]int{},
		committing: map[string]int{}, deleting: map[string]bool{},
		closing: make(chan struct{}), stepSlots: make(chan struct{}, opts.MaxActive),
		sealer: opts.Sealer, waiting: map[string]bool{}, firing: map[string]bool{},
		slog: opts.Slog, folds: map[string]fold{}, cluster: newClusterState(opts.Cluster),
	}
	m.opened = m.now()
	m.metrics = newMetrics(m)
	if err := m.cleanCgroups(); err != nil {
		m.logger.Printf("clean cgroups left by an earlier daemon: %v", err)
	} else if opts.Cgroups != nil {
		// With runs to resume, cleanCgroups keeps every folder: the jobs'
		// folders a killed daemon kept for their next runs go (a job's with
		// a run still in it is not empty and stays).
		opts.Cgroups.PruneBelow(m.cgroupParent())
	}
	if m.device, err = exec.DeviceOf(opts.StateDir); err != nil {
		m.device, m.deviceErr = "", err
	}
	if m.backend = opts.Backend; m.backend == nil {
		m.backend = m.localBackend()
	}
	if opts.Slurm != nil {
		m.slurm = newSlurmBackend(*opts.Slurm, opts.Init)
	}
	if err := m.recover(); err != nil {
		_ = store.Close() // the recover error is the one to report
		cancel()
		return nil, err
	}
	if err := m.startScheduler(); err != nil {
		_ = store.Close() // the scheduler's error is the one to report
		cancel()
		return nil, err
	}
	m.startCluster() // cluster_run.go
	return m, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Store gives tests and tools read access to the store.
func (m *Manager) Store() Store { return m.store }

// openStore is opts.Store, or else the bbolt store of the state folder.
func openStore(opts Options) (Store, error) {
	if opts.Store != nil {
		return opts.Store, nil
	}
	return boltstore.Open(filepath.Join(opts.StateDir, "jobfs.db"))
}

// ReposDir is where images are looked up.
func (m *Manager) ReposDir() string { return m.repos }

// recover ends the runs a previous daemon left active.
func (m *Manager) recover() error {
	if m.cluster != nil { // the runs of a node gone are ended by endLostRuns
		m.recoverFollowups()
		return nil
	}
	refs, err := m.store.ActiveRuns()
	if err != nil {
		return fmt.Errorf("recover runs: %w", err)
	}
	for _, ref := range refs {
		// A trigger's folder laid out ahead, if its daemon was killed mid-way.
		m.dropLaid(ref.JobID)
		if pendingRetry(ref.Run) { // stored to outlive a restart: wait on
			m.armRetry(ref.JobID, ref.Run)
			continue
		}
		if m.resumeRun(ref) { // recover.go: its steps' shims ran on
			continue
		}
		m.killLeftovers(ref)
		m.cancelSlurmSteps(ref) // backend_slurm.go
		now := m.now().UTC()
		r, err := m.store.UpdateRun(ref.JobID, ref.Run.ID, func(r *Run) {
			r.Status = Failed
			r.Error = errShutdown.Error()
			r.EndedAt = now
			for i := range r.Steps {
				switch r.Steps[i].Status {
				case Running:
					r.Steps[i].Status, r.Steps[i].Error, r.Steps[i].EndedAt = Failed, errShutdown.Error(), now
				case Pending:
					r.Steps[i].Status, r.Steps[i].EndedAt = Skipped, now
				}
			}
		})
		if err != nil {
			return fmt.Errorf("recover run %d of job %s: %w", ref.Run.ID, ref.JobID, err)
		}
		m.appendRunLog(ref.JobID, r.ID, "jobfs: "+r.Error)
		m.event(ref.JobID, "run %d FAILED: %s", r.ID, r.Error)
	}
	m.recoverFollowups() // workflow.go
	return nil
}

// EndRuns ends the active runs before a stop, where they do not outlive
// the daemon (--stop-runs-on-exit): the queued ones FAILED at once, the
// executing ones cancelled, and it waits until each has recorded its end,
// so that their wait readers, still served, read FAILED instead of the
// stop's ESHUTDOWN. Where runs outlive the daemon it does nothing. New
// triggers are refused from now on; Close does the rest.
func (m *Manager) EndRuns() {
	if m.detachOnClose() {
		return
	}
	queued, ending := m.stopRuns(errShutdown)
	for _, k := range queued {
		m.finish(k, Run{Status: Failed, Error: errShutdown.Error()})
	}
	for _, done := range ending {
		<-done // a step's grace (--grace) at most after its cancel, then SIGKILL
	}
}

// stopRuns marks the daemon stopping, takes the queued runs off the queue
// (cluster: those this node claimed; the others stay PENDING), stops the
// timers of pending retries (they stay PENDING in the store) and cancels
// the executing runs with cause. It returns the queued runs, for the
// caller to end, and the done channels of the cancelled ones.
func (m *Manager) stopRuns(cause error) (queued []runKey, ending []<-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopping = true
	queued = m.claimedOnlyLocked(m.queue)
	m.queue = nil
	for _, a := range m.active {
		a.stopTimerLocked()
		if a.cancel != nil {
			a.cancel(cause)
			ending = append(ending, a.done)
		}
	}
	return queued, ending
}

// Close stops every active run (they end FAILED, as after a crash, but
// without leaving processes) and closes the store.
func (m *Manager) Close() error {
	m.BeginClose()
	cause := errShutdown
	if m.detachOnClose() { // recover.go: the runs go on
		cause = errDetach
	}
	queued, _ := m.stopRuns(cause)
	if cause == errDetach {
		queued = nil // they stay PENDING for the next start
	}
	for _, k := range queued {
		m.finish(k, Run{Status: Failed, Error: errShutdown.Error()})
	}
	m.cancel() // ends the scheduler; runs were cancelled with errShutdown above
	m.wg.Wait()
	m.closePool()
	m.flushFolds()
	if cause == errDetach {
		if m.opts.Cgroups != nil {
			// The steps still running keep their cgroups (a folder in use
			// is not removed); the folders of jobs kept for a next run and
			// an instance folder nothing uses go.
			m.opts.Cgroups.PruneBelow(m.cgroupParent())
			m.opts.Cgroups.Prune(m.cgroupParent())
			m.opts.Cgroups.Prune(cgroupRoot)
		}
		return m.store.Close()
	}
	if err := m.cleanCgroups(); err != nil { // the jobs' folders: nothing is left
		m.logger.Printf("remove the jobs' cgroups: %v", err)
	}
	if m.opts.Cgroups != nil {
		// The machine's jobfs folder, once no daemon has a folder in it. A
		// daemon starting meanwhile makes it again with its first step's
		// cgroup (every Create makes the folders above it).
		m.opts.Cgroups.Prune(cgroupRoot)
	}
	return m.store.Close()
}

// newID returns a random job id of 8 lower-case letters and digits.
func newID() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (m *Manager) jobDir(id string) string { return filepath.Join(m.state, "jobs", id) }

// makeRunDir lays out a new run's folder dir of job id: input/, output/,
// work/ and an empty log. A missing job folder (a cluster node meets a job
// another node created) is made 0700 first: the MkdirAll of the run
// folder would make it 0755, open to every user until the next start.
func (m *Manager) makeRunDir(id, dir string) error {
	if err := os.Mkdir(m.jobDir(id), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create run folder: %w", err)
	}
	return layRunDir(dir)
}

// layRunDir makes a run's folder dir (and the folders above it, but the
// job's: makeRunDir): input/, output/, work/ and an empty log.
func layRunDir(dir string) error {
	for _, d := range []string{"input", "output", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create run folder: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "log"), nil, 0o644); err != nil {
		return fmt.Errorf("create run log: %w", err)
	}
	return nil
}

// JobLogPath is the job's event log file.
func (m *Manager) JobLogPath(id string) string { return filepath.Join(m.jobDir(id), "log") }

// StageDir holds the files staged for the job's next run.
func (m *Manager) StageDir(id string) string { return filepath.Join(m.jobDir(id), "input") }

// RunDir is the folder of one run.
func (m *Manager) RunDir(id string, run uint64) string {
	return filepath.Join(m.jobDir(id), "runs", fmt.Sprint(run))
}

// RunLogPath is the log file of one run.
func (m *Manager) RunLogPath(id string, run uint64) string {
	return filepath.Join(m.RunDir(id, run), "log")
}

// StateDir is the folder holding all of jobfs's state.
func (m *Manager) StateDir() string { return m.state }

// prepareStateDirs creates the state folders with modes that keep every
// user's runs out of reach of every other user: jobs/ (payloads, logs,
// outputs, staged files) and images/ (exported git commits) are 0700, the
// state folder itself 0711 so that a repos folder inside it (the default)
// stays reachable while nothing in the state folder can be listed. Folders
// an older jobfs made 0755 are tightened, and so is each job's folder
// (0700): a Slurm step's owner may be let through jobs/ to its own job
// (backend_slurm.go grant). A folder whose group bits are only x (an ACL's
// traverse-only mask) is left as it is: a chmod would reset the mask.
func prepareStateDirs(state, repos string) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{state, 0o711},
		{filepath.Join(state, "jobs"), 0o700},
		{filepath.Join(state, "images"), 0o700},
		{repos, 0o755},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
		if d.path == repos {
			continue // the administrator's folder: its mode is theirs to choose
		}
		if err := tighten(d.path, d.mode); err != nil {
			return err
		}
	}
	// Job folders are made 0700 (makeJobDir); those of a jobfs from before
	// are tightened once, then a marker says so: the sweep lists every job
	// folder, which at 100,000 jobs was most of a mount's time (660 ms).
	marker := filepath.Join(state, jobDirsTightened)
	if _, err := os.Lstat(marker); err == nil {
		return nil
	}
	jobs, err := os.ReadDir(filepath.Join(state, "jobs"))
	if err != nil {
		return fmt.Errorf("list %s: %w", filepath.Join(state, "jobs"), err)
	}
	for _, j := range jobs {
		if j.IsDir() {
			if err := tighten(filepath.Join(state, "jobs", j.Name()), 0o700); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("mark the job folders tightened: %w", err)
	}
	return f.Close() // empty: nothing to flush
}

// jobDirsTightened, in the state folder, says every job folder was made
// 0700 (prepareStateDirs); a later start does not list them again.
const jobDirsTightened = ".job-folders-0700"

// tighten sets a folder's mode unless it has it already, or has it with a
// traverse-only ACL mask in its group bits.
func tighten(path string, mode os.FileMode) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("restrict %s to mode %o: %w", path, mode, err)
	}
	if p := st.Mode().Perm(); p == mode || p == mode|0o010 {
		return nil
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("restrict %s to mode %o: %w", path, mode, err)
	}
	return nil
}
