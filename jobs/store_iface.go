package jobs

import (
	"context"
	"time"
)

// Store is where the Manager keeps jobs, their settings and their runs:
// the seam between the Manager and its storage (DESIGN.md section 10).
// boltstore.Store, one bbolt file, is the embedded default; a store kept in etcd
// implements the same methods in another package and passes the same
// contract suite (package jobs/storetest).
//
// Keys are paths, the same in every store (bbolt nests buckets along them,
// etcd keeps them flat under a prefix):
//
//	names/<owner>/<name>       -> job id
//	jobs/<id>/meta             -> Job (JSON)
//	jobs/<id>/config/<key>     -> a setting's value
//	jobs/<id>/mtimes/<key>     -> when <key> last changed
//	jobs/<id>/runs/<n>         -> Run (JSON)
//	jobs/<id>/runseq           -> the last run id given (bbolt: the runs bucket's sequence)
//	jobs/<id>/<bucket>/<key>   -> small key/value buckets: env, shares
//	jobs/<id>/after/<upstream> -> an upstream's completed run, for config/after
//	active/r/<id>/<n>          -> run n has not ended (the index of active runs)
//	active/s/<id>              -> job id has config/schedule stored
//
// Every method is ONE atomic transaction: it reads, compares and writes the
// keys its comment names together or not at all (an etcd Txn whose If
// compares the read keys' mod revisions, retried on conflict; a bbolt
// Update). A write that returns nil is durable. A job missing is
// ErrNotFound, a name taken ErrExists.
type Store interface {
	// Instance says which state folder (or node) opened the store, and
	// whether another one opened it before: see Instance.
	Instance() Instance
	// Close ends every Watch and releases the store.
	Close() error
	// Watch returns the changes committed from now on, each once its
	// commit is durable, until ctx ends or the store closes (then the
	// channel closes). A Change names what changed, not its value: read it
	// again (changes of racing commits may arrive in either order). A watcher
	// that falls behind by more than a bounded number of changes has its
	// channel closed early (as an etcd watch compacted away): it reads
	// again what it keeps and watches anew.
	Watch(ctx context.Context) <-chan Change

	// CreateJob stores j. Compares names/<owner>/<name> absent (else
	// ErrExists); writes it and jobs/<id>/meta.
	CreateJob(j Job) error
	// Job reads jobs/<id>/meta.
	Job(id string) (Job, error)
	// JobByName reads names/<owner>/<name>, then jobs/<id>/meta.
	JobByName(owner Owner, name string) (Job, error)
	// Jobs lists owner's jobs sorted by name: names/<owner>/ and their
	// jobs/<id>/meta.
	Jobs(owner Owner) ([]Job, error)
	// AllJobs lists every job of every owner: jobs/*/meta.
	AllJobs() ([]Job, error)
	// ScheduledJobs lists the jobs named in active/s/ (those with
	// config/schedule stored), so the scheduler's start reads no other.
	ScheduledJobs() ([]Job, error)
	// RenameJob reads jobs/<id>/meta, compares names/<owner>/<newName>
	// absent (else ErrExists), deletes names/<owner>/<old>, writes
	// names/<owner>/<newName> and jobs/<id>/meta.
	RenameJob(id, newName string) error
	// DeleteJob reads jobs/<id>/meta and deletes names/<owner>/<name>,
	// everything under jobs/<id>/ and active/*/<id>.
	DeleteJob(id string) error

	// Setting reads jobs/<id>/config/<key>; set is false when none is
	// stored (the setting reads as its default).
	Setting(id, key string) (value string, set bool, err error)
	// SetSetting compares jobs/<id>/meta present; writes
	// jobs/<id>/config/<key>, jobs/<id>/mtimes/<key> = t and, for
	// config/schedule, active/s/<id>.
	SetSetting(id, key, value string, t time.Time) error
	// DeleteSetting compares jobs/<id>/meta present; deletes
	// jobs/<id>/config/<key> (and active/s/<id> for config/schedule);
	// writes jobs/<id>/mtimes/<key> = t.
	DeleteSetting(id, key string, t time.Time) error
	// SetTime compares jobs/<id>/meta present; writes
	// jobs/<id>/mtimes/<key> = t (a setting's time set by touch, rsync).
	SetTime(id, key string, t time.Time) error
	// Times reads jobs/<id>/mtimes/: when each recorded key last changed
	// (settings, and the folders of TimeRuns, TimeShares, TimeEnv).
	Times(id string) (map[string]time.Time, error)
	// Snapshot reads jobs/<id>/meta, jobs/<id>/config/ and jobs/<id>/env/
	// at one revision: what a run executes, checked and run from one copy.
	Snapshot(id string) (JobSnapshot, error)

	// PutKV writes jobs/<id>/<bucket>/<key> = value, unless replace is
	// false and the key exists (compared absent): stored says whether it
	// wrote. Writes jobs/<id>/mtimes/ of the key (and of the bucket when
	// the key is new): see TimeShares, TimeEnv.
	PutKV(id, bucket, key string, value []byte, replace bool) (stored bool, err error)
	// DeleteKV deletes jobs/<id>/<bucket>/<key> and writes the bucket's
	// mtime; found is false (and nothing written) when it was absent.
	DeleteKV(id, bucket, key string) (found bool, err error)
	// ListKV reads jobs/<id>/<bucket>/ (empty when none).
	ListKV(id, bucket string) (map[string][]byte, error)

	// CreateRun stores r as job id's next run and returns it with its id:
	// reads and increments jobs/<id>/runseq (ids are dense from 1 and
	// never reused, however many callers race), writes jobs/<id>/runs/<n>
	// and active/r/<id>/<n> unless r has ended.
	CreateRun(id string, r Run) (Run, error)
	// UpdateRun reads jobs/<id>/runs/<n>, applies fn and writes the result,
	// compared unchanged since the read; active/r/<id>/<n> follows its
	// status. fn may be called again when another writer won (etcd): it
	// only changes the Run it is given.
	UpdateRun(id string, n uint64, fn func(*Run)) (Run, error)
	// Run reads jobs/<id>/runs/<n>.
	Run(id string, n uint64) (Run, error)
	// RunIDs lists the keys of jobs/<id>/runs/, oldest first.
	RunIDs(id string) ([]uint64, error)
	// LatestRun is the newest key of jobs/<id>/runs/, 0 when none.
	LatestRun(id string) (uint64, error)
	// DeleteRun compares jobs/<id>/runs/<n> present (else ErrNotFound);
	// deletes it and active/r/<id>/<n>; writes jobs/<id>/mtimes/runs/.
	DeleteRun(id string, n uint64) error
	// ActiveRuns reads active/r/ and the runs it names: every run of any
	// job that has not ended, oldest first per job, without reading ended
	// runs (a daemon's start takes no longer with a longer history).
	ActiveRuns() ([]RunRef, error)

	// FollowUp makes a follow-up run exactly once: it reads
	// jobs/<src.JobID>/runs/<src.ID> and, unless that run is not a Followup
	// or holds action in FollowedUp already (made is false then), stores
	// next as dstJob's next run (as CreateRun) and adds action to the
	// source run's FollowedUp, in one commit.
	FollowUp(src RunID, action, dstJob string, next Run) (r Run, made bool, err error)
	// AfterDone counts src's completion for dstJob's config/after once:
	// unless the source run holds action already (Counted is false then)
	// it adds action to it and writes jobs/<dstJob>/after/<src.JobID> =
	// src.ID. When every job of want has a run there it deletes
	// jobs/<dstJob>/after/ and, when next gives a run for the runs counted,
	// stores it as dstJob's next run. next may be called again (etcd).
	AfterDone(src RunID, action, dstJob string, want []string, next func(runs map[string]uint64) (Run, bool)) (AfterResult, error)
	// FollowupRuns lists the ended runs whose follow-ups may still be due
	// (Followup set), among each job's newest runs: what a crash between a
	// run's end and its follow-ups left.
	FollowupRuns() ([]RunRef, error)
}
