package etcdstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/jobfs/jobfs/jobs"
)

// A node is one daemon of a cluster sharing the store: it holds a lease
// that etcd keeps while the node renews it, and every run it executes is
// claimed under that lease:
//
//	nodes/<name>          -> "" with the node's lease: the node is alive
//	claims/<job>/<n>      -> node name, with the claimer's lease
//	ticks/<job>           -> the newest schedule tick fired (RFC 3339 ns) and its node
//	cluster/key           -> the master key's fingerprint
//
// The claim is the fence: a node writes a run it executes only while the
// claim key still carries its lease (compared in the same transaction), so
// a node that was partitioned or stopped past its lease cannot write over
// what happened meanwhile. Nothing here compares clocks.

// ErrFenced says this node's claim on a run is gone: its lease expired
// (the node was cut off or stopped too long) and another node may have
// ended the run.
var ErrFenced = errors.New("this node's claim on the run is gone (its etcd lease expired)")

// ErrNodeTaken says another live daemon uses the node name.
var ErrNodeTaken = errors.New("another live jobfs daemon uses this node name")

func (s *Store) nodeKey(name string) string { return s.p + "nodes/" + name }
func (s *Store) claimKey(id string, n uint64) string {
	return s.p + "claims/" + id + "/" + pad(n)
}
func (s *Store) tickKey(id string) string { return s.p + "ticks/" + id }

// Join makes the store act as node name with a lease of ttl: runs it
// claims, and the writes of those runs, carry that lease. It fails when a
// live node has the name. Lost is closed when the lease is gone.
func (s *Store) Join(name string, ttl time.Duration) error {
	secs := max(int(ttl/time.Second), 1)
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(secs), concurrency.WithContext(s.ctx))
	if err != nil {
		return storeErr("start a lease", err)
	}
	r, err := s.commit(s.leaseIs(s.nodeKey(name), sess.Lease()), []clientv3.Cmp{absent(s.nodeKey(name))},
		[]clientv3.Op{clientv3.OpPut(s.nodeKey(name), "", clientv3.WithLease(sess.Lease()))})
	if err != nil || !r.Succeeded {
		_ = sess.Close() // the join failed: its lease is of no use
		if err != nil {
			return storeErr("register node", err)
		}
		return fmt.Errorf("node %s: %w", name, ErrNodeTaken)
	}
	s.node, s.sess = name, sess
	return nil
}

// Node is the name this store acts as, empty before Join.
func (s *Store) Node() string { return s.node }

// Lost is closed when this node's lease is gone: every step it runs must
// stop, as another node may act on its runs once etcd expires the lease.
// Before Join it is never closed.
func (s *Store) Lost() <-chan struct{} {
	if s.sess == nil {
		return nil
	}
	return s.sess.Done()
}

// Claim takes run n of job id for this node to execute: exactly one node
// wins however many race, and only a PENDING, unclaimed run is taken. The
// run record names the node (Run.Node) in the same commit.
func (s *Store) Claim(id string, n uint64) (bool, error) {
	if s.sess == nil {
		return false, errors.New("etcd: claim before Join")
	}
	for range maxTries {
		r, mod, err := s.readRun(id, n)
		if err != nil {
			return false, err
		}
		if r.Status != jobs.Pending || r.Node != "" {
			return false, nil
		}
		r.Node = s.node
		put, err := putJSON(s.runKey(id, n), r)
		if err != nil {
			return false, err
		}
		t, err := s.commit(s.leaseIs(s.claimKey(id, n), s.sess.Lease()), []clientv3.Cmp{unchanged(s.runKey(id, n), mod), absent(s.claimKey(id, n))},
			[]clientv3.Op{put, clientv3.OpPut(s.claimKey(id, n), s.node, clientv3.WithLease(s.sess.Lease()))})
		if err != nil {
			return false, storeErr("claim run", err)
		}
		if t.Succeeded {
			return true, nil
		}
	}
	return false, errContended
}

// fence is the compare that a write of a run this node claimed carries.
func (s *Store) fence(id string, n uint64) clientv3.Cmp {
	return clientv3.Compare(clientv3.LeaseValue(s.claimKey(id, n)), "=", int64(s.sess.Lease()))
}

// LostRuns lists the runs that a node claimed and that have not ended,
// whose claim is gone: their node lost its lease.
func (s *Store) LostRuns() ([]jobs.RunRef, error) {
	active, err := s.ActiveRuns()
	if err != nil {
		return nil, err
	}
	var out []jobs.RunRef
	for _, a := range active {
		if a.Run.Node == "" {
			continue
		}
		ctx, cancel := s.op()
		g, err := s.cli.Get(ctx, s.claimKey(a.JobID, a.Run.ID), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			return nil, storeErr("read claim", err)
		}
		if g.Count == 0 {
			out = append(out, a)
		}
	}
	return out, nil
}

// EndLost ends run n of job id, whose claimer lost its lease, with fn's
// change (FAILED with the reason, or a retry), unless its claim came back
// or it ended meanwhile: ended says whether this call did it.
func (s *Store) EndLost(id string, n uint64, fn func(*jobs.Run)) (ended bool, err error) {
	for range maxTries {
		r, mod, err := s.readRun(id, n)
		if err != nil {
			return false, err
		}
		if r.Status.Terminal() || r.Node == "" {
			return false, nil
		}
		fn(&r)
		r.ID = n
		ops, err := s.runOps(id, r)
		if err != nil {
			return false, err
		}
		b, err := json.Marshal(r) // as runOps wrote it: the applied check compares it
		if err != nil {
			return false, err
		}
		t, err := s.commit(s.valueIs(s.runKey(id, n), string(b)), []clientv3.Cmp{unchanged(s.runKey(id, n), mod), absent(s.claimKey(id, n))}, ops)
		if err != nil {
			return false, storeErr("end a lost run", err)
		}
		if t.Succeeded {
			return true, nil
		}
		g, _, err := s.read(clientv3.OpGet(s.claimKey(id, n), clientv3.WithCountOnly()))
		if err == nil && g[0].Count > 0 {
			return false, nil // claimed again (its node is back): not lost
		}
	}
	return false, errContended
}

// ClaimTick fires job id's schedule tick at once across the cluster: the
// first node to record a tick newer than the last fired wins it. The value
// names the node too, so that a node whose reply was lost can tell its own
// commit from another's of the same tick.
func (s *Store) ClaimTick(id string, at time.Time) (bool, error) {
	v := at.UTC().Format(time.RFC3339Nano) + " " + s.node
	for range maxTries {
		rs, _, err := s.read(clientv3.OpGet(s.tickKey(id)))
		if err != nil {
			return false, storeErr("read schedule tick", err)
		}
		if len(rs[0].Kvs) > 0 {
			stamp, _, _ := strings.Cut(string(rs[0].Kvs[0].Value), " ")
			last, err := time.Parse(time.RFC3339Nano, stamp)
			if err == nil && !at.After(last) {
				return false, nil // fired by another node
			}
		}
		t, err := s.commit(s.valueIs(s.tickKey(id), v), []clientv3.Cmp{unchanged(s.tickKey(id), modOf(rs[0]))}, []clientv3.Op{clientv3.OpPut(s.tickKey(id), v)})
		if err != nil {
			return false, storeErr("claim schedule tick", err)
		}
		if t.Succeeded {
			return true, nil
		}
	}
	return false, errContended
}

// CheckKeyFingerprint records fp, the master key's fingerprint, as the
// cluster's when none is, and refuses a different one: a node with another
// key could not open the others' secrets.
func (s *Store) CheckKeyFingerprint(fp string) error {
	key := s.p + "cluster/key"
	r, err := s.txn([]clientv3.Cmp{absent(key)}, []clientv3.Op{clientv3.OpPut(key, fp)}, clientv3.OpGet(key))
	if err != nil {
		return storeErr("compare the master key", err)
	}
	if r.Succeeded {
		return nil
	}
	kvs := r.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 1 && string(kvs[0].Value) == fp {
		return nil
	}
	return fmt.Errorf("this node's master key (fingerprint %s) is not the cluster's: copy the master key every node uses to this one", fp)
}

// MakerAlive reports whether the node that made run n of job id (the
// trigger's node, which lays out the run's folder after the commit) is
// alive, for a run not ended: its maker key carries that node's lease. A
// run not laid out whose maker is gone never will be.
func (s *Store) MakerAlive(id string, n uint64) (bool, error) {
	rs, _, err := s.read(clientv3.OpGet(s.makerKey(id, n), clientv3.WithCountOnly()))
	if err != nil {
		return false, storeErr("read the run's maker", err)
	}
	return rs[0].Count > 0, nil
}

// makerOp records this node as the maker of run n of job id, with its
// lease. A node that lost its lease is fenced from the runs it executed,
// yet still stores the triggers made through its mount (the other nodes
// run them): their maker key has no lease then, and goes when the run
// ends.
func (s *Store) makerOp(id string, n uint64) clientv3.Op {
	select {
	case <-s.sess.Done():
	default:
		if !s.leaseGone.Load() {
			return clientv3.OpPut(s.makerKey(id, n), s.node, clientv3.WithLease(s.sess.Lease()))
		}
	}
	return clientv3.OpPut(s.makerKey(id, n), s.node)
}
