package jobs

import (
	"context"
	"errors"
	"time"
)

// Cluster is what a Manager needs of a store that several daemons share
// (package jobs/etcdstore implements it): a lease per daemon, runs claimed
// under it, the runs of a node whose lease is gone, schedule ticks fired
// once, and a progress signal for live log readers on other nodes.
//
// With Options.Cluster set, a trigger on any node stores the run PENDING
// and lays out its folder under the shared state folder; the nodes that
// execute learn of it from the store's Watch and one of them Claims it when
// it has a slot (Options.MaxActive is per node). Wait, status and streams
// of a run executing on another node follow the change feed and the
// progress signal. See cluster_run.go.
type Cluster interface {
	// Node is this daemon's name in the cluster.
	Node() string
	// Claim takes run n of job for this node: exactly one node wins, and
	// only a PENDING run nobody claimed.
	Claim(job string, n uint64) (bool, error)
	// Lost is closed when this node's lease is gone: it must stop every
	// step at once and write nothing more.
	Lost() <-chan struct{}
	// LostRuns lists the unended runs whose claimer lost its lease.
	LostRuns() ([]RunRef, error)
	// EndLost ends such a run with fn's change, once across the cluster.
	EndLost(job string, n uint64, fn func(*Run)) (bool, error)
	// MakerAlive reports whether the node that stored PENDING run n (and
	// lays out its folder) is alive.
	MakerAlive(job string, n uint64) (bool, error)
	// ClaimTick reports whether this node fires job's schedule tick at.
	ClaimTick(job string, at time.Time) (bool, error)
	// RelayCtl asks the node executing run n to do cmd (stop, kill,
	// pause, resume) and waits up to wait for its answer: why is its
	// refusal, acked false when none came in time (the command stays
	// recorded). ErrNotClaimed when no node executes the run.
	RelayCtl(job string, n uint64, cmd string, wait time.Duration) (node, why string, acked bool, err error)
	// WatchCtl returns the commands relayed to this node, until ctx ends
	// (it may close early when it lags: call it again).
	WatchCtl(ctx context.Context) <-chan CtlRequest
	// AnswerCtl records this node's answer to r (why empty: done).
	AnswerCtl(r CtlRequest, why string) error
	// Progress tells the other nodes that run n's log grew.
	Progress(job string, n uint64) error
	// WatchProgress returns the runs whose log grew on another node, until
	// ctx ends (then the channel closes; it may close early when it lags).
	WatchProgress(ctx context.Context) <-chan RunID
}

// CtlRequest is a ctl command relayed to the node executing run ID of job
// JobID: Cmd starts with the command's word (more may follow it).
type CtlRequest struct {
	JobID string
	ID    uint64
	Cmd   string
}

// ErrNotClaimed says no node executes the run (any more): it ended, or
// its node was lost.
var ErrNotClaimed = errors.New("the run is not executing on any node")
