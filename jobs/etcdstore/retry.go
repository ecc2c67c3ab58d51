package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A request to etcd can fail while the cluster stays healthy: the member
// the client talks to is killed or restarted, the leader changes, a
// proposal times out. Such an error is transient and the request is tried
// again, on another member if need be, for up to the store's timeout. A
// commit that failed so may have been applied nonetheless (etcd applied it,
// the reply was lost with the member): a commit that must not happen twice
// says how to tell (an applied check) before it is sent again. Without
// one, the commit is sent again as it was: its compares (mod revisions,
// absent keys) keep a second application from changing anything.

// transient reports whether err may pass when the request is tried again.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// firstWait and lastWait bound the pause between two tries.
const (
	firstWait = 50 * time.Millisecond
	lastWait  = time.Second
)

// retrier paces the tries of one request within the store's timeout.
type retrier struct {
	s        *Store
	deadline time.Time
	wait     time.Duration
}

func (s *Store) retrier() *retrier {
	return &retrier{s: s, deadline: time.Now().Add(s.timeout), wait: firstWait}
}

// again waits before another try of a request that failed with err; false
// when err is not transient, the time is up or the store closes.
func (r *retrier) again(err error) bool {
	if !transient(err) || time.Now().After(r.deadline) || r.s.ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(r.wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.s.ctx.Done():
		return false
	}
	r.wait = min(2*r.wait, lastWait)
	return true
}

// appliedCheck reports whether a commit whose reply was lost was applied.
type appliedCheck func() (bool, error)

// commit is txn for a commit that must not be applied twice: after a
// transient error it asks applied before sending the commit again, and
// answers a commit found applied with a response that Succeeded (and no
// Responses). A commit sent again whose compares fail is asked about once
// more: the first send may have been applied late (a proposal etcd timed
// out but committed after), which is what made the compares fail.
func (s *Store) commit(applied appliedCheck, cmps []clientv3.Cmp, then []clientv3.Op, orElse ...clientv3.Op) (*clientv3.TxnResponse, error) {
	rt := s.retrier()
	for resent := false; ; resent = true {
		r, err := s.txnOnce(cmps, then, orElse...)
		if err == nil && !r.Succeeded && resent {
			if ok, cerr := applied(); cerr == nil && ok {
				return &clientv3.TxnResponse{Succeeded: true}, nil
			} // else (unknown) the caller reads again, as after any lost compare
		}
		if err == nil || !rt.again(err) {
			return r, err
		}
		for { // was it applied? asked until etcd answers
			ok, cerr := applied()
			if cerr == nil && ok {
				return &clientv3.TxnResponse{Succeeded: true}, nil
			}
			if cerr == nil {
				break // not applied: send it again
			}
			if !rt.again(cerr) {
				return nil, err
			}
		}
	}
}

// nonce names one commit: a key it writes holds it, so that whoever sent
// the commit can tell after a lost reply whether it was applied.
func nonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// valueIs is an applied check: key holds want.
func (s *Store) valueIs(key, want string) appliedCheck {
	return func() (bool, error) {
		ctx, cancel := s.op()
		defer cancel()
		g, err := s.cli.Get(ctx, key)
		if err != nil {
			return false, err
		}
		return len(g.Kvs) == 1 && string(g.Kvs[0].Value) == want, nil
	}
}

// leaseIs is an applied check: key exists with lease.
func (s *Store) leaseIs(key string, lease clientv3.LeaseID) appliedCheck {
	return func() (bool, error) {
		ctx, cancel := s.op()
		defer cancel()
		g, err := s.cli.Get(ctx, key)
		if err != nil {
			return false, err
		}
		return len(g.Kvs) == 1 && g.Kvs[0].Lease == int64(lease), nil
	}
}
