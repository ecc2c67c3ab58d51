package etcdstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
)

// A ctl command (stop, kill, pause, resume) written on one node for a run
// another node executes is relayed through etcd:
//
//	ctl/<node>/<job>/<n> -> "<cmd>" (a request), then "=ok" or "=<why not>"
//
// The key carries the claim's lease, so it goes with the executing node,
// and it is deleted when the run ends: one key per run at most. The
// executing node watches its own ctl/<node>/ keys, acts, and writes its
// answer in the same key; the writer waits for it, within a bound.

func (s *Store) ctlDir(node string) string { return s.p + "ctl/" + node + "/" }
func (s *Store) ctlKey(node, id string, n uint64) string {
	return s.ctlDir(node) + id + "/" + pad(n)
}

// ErrNotClaimed says the run has no executing node (any more): it ended,
// or its node was lost.
var ErrNotClaimed = jobs.ErrNotClaimed

// RelayCtl asks the node executing run n of job id to do cmd and waits
// up to wait for its answer: acked says whether it came (why is the
// node's refusal, empty when it did it). Without an answer in time the
// command stays recorded for that node.
func (s *Store) RelayCtl(id string, n uint64, cmd string, wait time.Duration) (node, why string, acked bool, err error) {
	rs, _, err := s.read(clientv3.OpGet(s.claimKey(id, n)))
	if err != nil {
		return "", "", false, storeErr("read the run's claim", err)
	}
	if len(rs[0].Kvs) == 0 {
		return "", "", false, ErrNotClaimed
	}
	node, lease := string(rs[0].Kvs[0].Value), clientv3.LeaseID(rs[0].Kvs[0].Lease)
	key := s.ctlKey(node, id, n)
	req := cmd + " " + nonce() // a request is never equal to another: its put is an event
	t, err := s.commit(s.valueIs(key, req),
		[]clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(s.claimKey(id, n)), "=", int64(lease))},
		[]clientv3.Op{clientv3.OpPut(key, req, clientv3.WithLease(lease))})
	if err != nil {
		return node, "", false, storeErr("record the ctl command", err)
	}
	if !t.Succeeded {
		return node, "", false, ErrNotClaimed
	}
	ctx, cancel := context.WithTimeout(s.ctx, wait)
	defer cancel()
	why, acked = s.awaitAnswer(ctx, key, req)
	return node, why, acked, nil
}

// awaitAnswer waits for the answer to request req in key: a value "=..."
// or the key's deletion (the run ended).
func (s *Store) awaitAnswer(ctx context.Context, key, req string) (string, bool) {
	for ctx.Err() == nil {
		g, err := s.cli.Get(ctx, key)
		if err != nil { // a member lost: tried again until ctx ends
			sleepCtx(ctx, firstWait)
			continue
		}
		if len(g.Kvs) == 0 {
			return "", true // the run ended
		}
		if v := string(g.Kvs[0].Value); v != req {
			if why, ok := strings.CutPrefix(v, "="); ok {
				if why == "ok" {
					why = ""
				}
				return why, true
			}
			return "", false // another request replaced this one: its answer is its writer's
		}
		s.awaitChange(ctx, key, g.Header.Revision+1)
	}
	return "", false
}

// awaitChange returns when key changes from revision rev on, the watch
// fails or ctx ends.
func (s *Store) awaitChange(ctx context.Context, key string, rev int64) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	for resp := range s.cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		if resp.Err() != nil || len(resp.Events) > 0 {
			return
		}
	}
}

// sleepCtx waits d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// WatchCtl returns the ctl commands recorded for the runs this node
// executes, those recorded before the call first, until ctx ends or the
// store closes; it closes early when it lags (call it again).
func (s *Store) WatchCtl(ctx context.Context) <-chan jobs.CtlRequest {
	dir := s.ctlDir(s.node)
	rctx, cancel := s.op()
	g, err := s.cli.Get(rctx, dir, clientv3.WithPrefix())
	cancel()
	if err != nil || s.node == "" {
		out := make(chan jobs.CtlRequest)
		close(out)
		return out
	}
	var before []jobs.CtlRequest
	for _, kv := range g.Kvs {
		if r, ok := ctlRequest(dir, kv); ok {
			before = append(before, r)
		}
	}
	feed := pump(s, ctx, dir, func(evs []*clientv3.Event) []jobs.CtlRequest {
		var out []jobs.CtlRequest
		for _, ev := range evs {
			if r, ok := ctlRequest(dir, ev.Kv); ok && ev.Type == mvccpb.PUT {
				out = append(out, r)
			}
		}
		return out
	}, clientv3.WithRev(g.Header.Revision+1))
	if len(before) == 0 {
		return feed
	}
	out := make(chan jobs.CtlRequest, len(before)+feedBuffer)
	for _, r := range before {
		out <- r
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for r := range feed {
			select {
			case out <- r:
			default:
				return // fell behind: closed, as documented
			}
		}
	}()
	return out
}

// ctlRequest reads a request (not an answer) from a ctl key.
func ctlRequest(dir string, kv *mvccpb.KeyValue) (jobs.CtlRequest, bool) {
	job, num, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), dir), "/")
	n, err := strconv.ParseUint(num, 10, 64)
	v := string(kv.Value)
	if !ok || err != nil || strings.HasPrefix(v, "=") {
		return jobs.CtlRequest{}, false
	}
	return jobs.CtlRequest{JobID: job, ID: n, Cmd: v}, true
}

// AnswerCtl records this node's answer to request r (why empty: done),
// unless the request was replaced or the run ended meanwhile.
func (s *Store) AnswerCtl(r jobs.CtlRequest, why string) error {
	if why == "" {
		why = "ok"
	}
	key := s.ctlKey(s.node, r.JobID, r.ID)
	_, err := s.txn([]clientv3.Cmp{clientv3.Compare(clientv3.Value(key), "=", r.Cmd)},
		[]clientv3.Op{clientv3.OpPut(key, "="+why, clientv3.WithIgnoreLease())})
	if err != nil {
		return storeErr(fmt.Sprintf("answer the ctl command of run %d", r.ID), err)
	}
	return nil
}
