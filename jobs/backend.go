package jobs

import (
	"context"
	"io"
	"time"

	"github.com/jobfs/jobfs/exec"
)

// Backend runs the steps of runs where steps run. The pipeline plans a run,
// makes each step's input and output folders and its log, and hands the
// step over as a StepSpec; the Backend runs it and says how it ended. It
// holds every decision that depends on where steps run: the local backend
// (backend_local.go, the default) runs a step as a process on this machine
// in a cgroup and namespaces; a batch scheduler (Slurm) would submit it.
//
// A Backend is called from many runs' goroutines at once.
type Backend interface {
	// Gaps says what of the isolation and limits a run with lim would run
	// without here, and why: one line each, written at the top of the
	// run's log. None when it gets everything.
	Gaps(lim exec.Limits) []string
	// RunStep runs one step to its end. Cancelling ctx stops it: with the
	// spec's grace, or at once when the cause matches exec.ErrKill (also
	// while an earlier stop waits out its grace; see exec.WithStop). The
	// run's config/timeout arrives the same way, as the cause
	// errRunTimeout: the run's clock, which stops while it is paused, is
	// the jobs side's.
	RunStep(ctx context.Context, s StepSpec) StepResult
	// CanFreeze says why runs cannot be paused here; nil when they can.
	CanFreeze() error
	// Freeze freezes every step of a run that runs (frozen), or thaws them;
	// a step that starts or ends meanwhile is left alone.
	Freeze(job string, run uint64, frozen bool) error
	// EndRun frees what the backend kept for a run once it is over.
	EndRun(job string, run uint64) error
	// EndJob frees what the backend kept for a job no run of which is
	// active. It is called under Manager.mu (so no run of the job can
	// start meanwhile) and must be quick.
	EndJob(job string)
}

// StepSpec is one step as a Backend gets it: nothing in it is tied to this
// machine but the folders, which the jobs side made under the run folder.
type StepSpec struct {
	Job   string // the job's id
	Run   uint64 // the run's id
	Label string // the step's label; a fan-out instance's is label.N
	Owner Owner  // the step runs as the job's owner
	// Program is the executable (the image's entrypoint, or the script),
	// Dir its folder and working directory (the image's, or the run's app/).
	Program string
	Dir     string
	// Input and Output are the step's two arguments: the folder it reads
	// and the one it writes.
	Input, Output string
	// Env is the whole environment (PATH, HOME as the owner's home folder,
	// JOBFS_*, the job's secrets); nothing of the daemon's.
	Env []string
	// Secrets are the values masked in the step's output. Log masks them
	// already; a backend that keeps output of its own masks them there.
	Secrets [][]byte
	Limits  exec.Limits   // config/limits and config/network
	Timeout time.Duration // the run's config/timeout, for a scheduler that must be told; see RunStep
	Grace   time.Duration // between SIGTERM and SIGKILL on a stop or a timeout
	// Log takes the step's stdout and stderr as they come. It never blocks
	// and never fails a write (a full disk, the cap and the masking are
	// the jobs side's, exec.Log); the backend does not close it.
	Log io.Writer
	// Started is called once the step runs, with what finds its processes
	// again after a crash, so the jobs side can record it durably.
	Started func(StepStarted)
	// A backend whose steps outlive the daemon (shimBackend) writes the
	// log itself: it gets LogPath and LogOptions (Notify and Tee are
	// served by the daemon) instead of Log, and keeps the step's shim in
	// ShimDir.
	LogPath    string
	LogOptions exec.LogOptions
	ShimDir    string
	// NotBefore, when set, is a scheduled run's tick: a tickHolder sets
	// the step up at once and begins its program no earlier.
	NotBefore time.Time
}

// tickHolder is a Backend that holds a step's program until
// StepSpec.NotBefore itself, its setup done ahead. The pipeline waits for
// the tick before it hands a step to any other Backend.
type tickHolder interface {
	Backend
	HoldsToTick()
}

// shimBackend is a Backend whose steps outlive the daemon: each runs under
// a shim (exec.Shim) that writes its log and its end into ShimDir, so a
// later daemon re-attaches to it (AttachStep) or reads how it ended.
type shimBackend interface {
	Backend
	// Shims reports whether steps run under shims here.
	Shims() bool
	// AttachStep follows a step whose shim was started (by this daemon or
	// an earlier one) to its end, as RunStep does.
	AttachStep(ctx context.Context, s StepSpec) StepResult
}

// StepStarted says where a started step runs.
type StepStarted struct {
	// Pgid is the local step's process group, PgidStart its leader's start
	// time (exec.KillGroup); zero for a step that does not run here.
	Pgid      int
	PgidStart uint64
	At        time.Time // when it began, by the machine's clock; zero: now
}

// StepResult says how a step ended.
type StepResult struct {
	Outcome  exec.Outcome // Exited, TimedOut, Cancelled or NotStarted
	ExitCode int          // 128+N for signal N
	Err      error        // NotStarted: why (the step fails with it)
	OOM      bool         // the kernel's OOM killer killed a process of the step
	Usage    *Usage       // what the step used; nil when unknown
	// Start is the step's start when Started was not called for it (a
	// shimmed step that ended within exec.StartedGrace): it is recorded
	// with the step's end.
	Start *StepStarted
}
