package domain

import "time"

// Owner is the Unix uid that owns a job. A single-user daemon has one owner;
// a shared mount gives every user a namespace of their own.
type Owner = uint32

// Job is the durable record of one job. Its ID is random, short and stable: it
// is the job's shortname and names its folder under the state directory, so a
// rename never moves files.
type Job struct {
	ID      string    `json:"id"`
	Owner   Owner     `json:"owner"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Status is the state of a run.
type Status string

// Run statuses, as Horus names them.
const (
	Pending   Status = "PENDING"
	Running   Status = "RUNNING"
	Completed Status = "COMPLETED"
	Failed    Status = "FAILED"
	Timeout   Status = "TIMEOUT"
	Cancelled Status = "CANCELLED"
	Skipped   Status = "SKIPPED" // a step whose predecessor did not complete
)

// Terminal reports whether a run in status s has ended.
func (s Status) Terminal() bool {
	return s == Completed || s == Failed || s == Timeout || s == Cancelled || s == Skipped
}

// Trigger says what started a run.
type Trigger string

// Triggers.
const (
	Manual   Trigger = "manual"
	Schedule Trigger = "schedule"
	Retry    Trigger = "retry" // config/retries, see retry.go
	Hook     Trigger = "hook"  // config/on_failure, on_success of another job
)

// Run is the durable record of one run of a job.
type Run struct {
	ID      uint64  `json:"id"`
	Status  Status  `json:"status"`
	Trigger Trigger `json:"trigger"`
	// TriggeredBy is who started the run: the writer's user name (or uid),
	// or "schedule"; empty in runs recorded before it was kept.
	TriggeredBy string    `json:"triggered_by,omitempty"`
	Queued      time.Time `json:"queued"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
	// ExitCode is nil until the run has ended with a code.
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
	// Result is the path of the result file relative to the run folder, or
	// empty when the run left no output.
	Result string `json:"result,omitempty"`
	// Pgid and PgidStart identify the run's process group (leader pid and its
	// start time in clock ticks), so a restart can kill what a crash left.
	Pgid      int    `json:"pgid,omitempty"`
	PgidStart uint64 `json:"pgid_start,omitempty"`
	// Steps are the run's steps in the order they were planned.
	Steps []Step `json:"steps,omitempty"`
	// Usage is what its steps used together, recorded at the run's end;
	// nil before (see TotalUsage).
	Usage *Usage `json:"usage,omitempty"`
	// RetryOf is the run this one retries (config/retries), Attempt its
	// number among the retries (1 for the first) and RetryAt when it may
	// start: while PENDING before it, the retry waits for its time.
	RetryOf uint64    `json:"retry_of,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Tick is a scheduled run's tick. The run is queued up to the
	// schedule's lead before it, and its steps' programs begin no earlier
	// than the tick: a tick's step starts on time, its setup done ahead.
	Tick time.Time `json:"tick,omitzero"`
	// Followup is set in the commit that ends the run when the job has a
	// workflow setting: its follow-ups (a retry, a hook) are still to be
	// made. FollowedUp lists those made, each in the commit that recorded
	// the run it started, so a crash in between neither loses nor doubles
	// one. HookDepth counts the hooks that led to this run.
	Followup   bool     `json:"followup,omitempty"`
	FollowedUp []string `json:"followed_up,omitempty"`
	HookDepth  int      `json:"hook_depth,omitempty"`
	// Node is the daemon that claimed the run to execute it, in a store
	// shared by several (etcd); empty in the embedded store.
	Node string `json:"node,omitempty"`
}

// Step is the record of one step of a run (a fan-out instance is a step
// of its own, label.1, label.2 ...).
type Step struct {
	Label     string    `json:"label"`
	Status    Status    `json:"status"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	ExitCode  *int      `json:"exit_code,omitempty"`
	Error     string    `json:"error,omitempty"`
	// Log and Output are paths relative to the run folder.
	Log       string `json:"log"`
	Output    string `json:"output"`
	Pgid      int    `json:"pgid,omitempty"`
	PgidStart uint64 `json:"pgid_start,omitempty"`
	// Usage is what the step used, read from its cgroup at its end; nil
	// while it runs, when it never ran, or without cgroups.
	Usage *Usage `json:"usage,omitempty"`
}

// Step returns the step labelled label, if the run has it.
func (r *Run) Step(label string) (*Step, bool) {
	for i := range r.Steps {
		if r.Steps[i].Label == label {
			return &r.Steps[i], true
		}
	}
	return nil, false
}

// Usage is what a step used (or a run's steps together), from the step's
// cgroup. A nil field is unknown (no cgroup, or no such counter): a reader
// must never take it for 0.
type Usage struct {
	CPUNanos   *uint64 `json:"cpu_ns,omitempty"`
	MemoryPeak *uint64 `json:"memory_peak_bytes,omitempty"`
	IORead     *uint64 `json:"io_read_bytes,omitempty"`
	IOWrite    *uint64 `json:"io_write_bytes,omitempty"`
	PidsPeak   *uint64 `json:"pids_peak,omitempty"`
}

// RunID names one run of one job.
type RunID struct {
	JobID string
	ID    uint64
}

// JobSnapshot is one consistent read of a job: its record, its stored
// settings (no defaults) and its env bucket (raw values).
type JobSnapshot struct {
	Job      Job
	Settings map[string]string
	Env      map[string][]byte
}

// AfterResult is what AfterDone did.
type AfterResult struct {
	Counted  bool              // the source run was counted now (not before)
	Complete bool              // every upstream of want has completed
	Have     int               // how many have
	Runs     map[string]uint64 // when complete: upstream id -> run id
	Run      Run               // when complete and next gave one: the new run
}

// Change is one committed change, named by its key below jobs/<Job>/.
type Change struct {
	Job string // the job's id
	// Key is the path below the job: "meta", "config/<key>",
	// "runs/<n>", "<bucket>/<key>", "after"; empty when the whole job
	// was created or deleted.
	Key     string
	Run     uint64 // n when Key is runs/<n>, else 0
	Deleted bool   // the key (or the job) is gone
}

// RunRef names one run of one job.
type RunRef struct {
	JobID string
	Run   Run
}
