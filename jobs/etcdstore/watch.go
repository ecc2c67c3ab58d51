package etcdstore

import (
	"context"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
)

// Watch returns the changes committed from now on, by any daemon, until
// ctx ends or the store closes. It watches from the revision a read gives
// plus one, so nothing committed after the call is missed. A watcher that
// falls feedBuffer changes behind, or whose history etcd compacted away,
// has its channel closed: it reads again and watches anew.
func (s *Store) Watch(ctx context.Context) <-chan jobs.Change {
	out := make(chan jobs.Change, feedBuffer)
	dir := s.p + "jobs/"
	rctx, cancel := s.op()
	g, err := s.cli.Get(rctx, dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err != nil || s.ctx.Err() != nil {
		close(out) // the caller reads again and watches anew, as after a lag
		return out
	}
	return pump(s, ctx, dir, func(evs []*clientv3.Event) []jobs.Change { return changes(dir, evs) },
		clientv3.WithRev(g.Header.Revision+1))
}

// pump watches the keys under dir until ctx ends or the store closes and
// hands what translate makes of each response's events to the returned
// channel, closed early when its reader falls feedBuffer items behind or
// the watch fails (compacted, no leader): the reader reads again and
// watches anew.
func pump[T any](s *Store, ctx context.Context, dir string, translate func([]*clientv3.Event) []T, opts ...clientv3.OpOption) <-chan T {
	out := make(chan T, feedBuffer)
	wctx, stop := context.WithCancel(s.ctx)
	unhook := context.AfterFunc(ctx, stop)
	events := s.cli.Watch(clientv3.WithRequireLeader(wctx), dir, append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer unhook()
		defer stop()
		for resp := range events {
			if resp.Err() != nil || resp.Canceled {
				return
			}
			for _, v := range translate(resp.Events) {
				select {
				case out <- v:
				default:
					return // fell behind: closed, as documented
				}
			}
		}
	}()
	return out
}

// changes turns a watch response's events into Changes as boltstore names
// them: one per key the tree shows (not the index, sequence or time keys),
// one for a job created or deleted whole, one "after" per commit.
func changes(dir string, evs []*clientv3.Event) []jobs.Change {
	// A job deleted in a revision shows as that alone, not as each key.
	gone := map[int64]map[string]bool{}
	for _, ev := range evs {
		job, rest, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), dir), "/")
		if ok && rest == "meta" && ev.Type == mvccpb.DELETE {
			if gone[ev.Kv.ModRevision] == nil {
				gone[ev.Kv.ModRevision] = map[string]bool{}
			}
			gone[ev.Kv.ModRevision][job] = true
		}
	}
	var out []jobs.Change
	after := map[int64]map[string]bool{}
	for _, ev := range evs {
		job, rest, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), dir), "/")
		if !ok {
			continue
		}
		del := ev.Type == mvccpb.DELETE
		if gone[ev.Kv.ModRevision][job] && rest != "meta" {
			continue
		}
		switch {
		case rest == "meta":
			switch {
			case del:
				out = append(out, jobs.Change{Job: job, Deleted: true})
			case ev.IsCreate():
				out = append(out, jobs.Change{Job: job})
			default:
				out = append(out, jobs.Change{Job: job, Key: "meta"})
			}
		case strings.HasPrefix(rest, "set/"):
			out = append(out, jobs.Change{Job: job, Key: strings.TrimPrefix(rest, "set/"), Deleted: del})
		case strings.HasPrefix(rest, "runs/"):
			n, err := strconv.ParseUint(strings.TrimPrefix(rest, "runs/"), 10, 64)
			if err == nil {
				out = append(out, jobs.Change{Job: job, Key: "runs/" + strconv.FormatUint(n, 10), Run: n, Deleted: del})
			}
		case strings.HasPrefix(rest, "kv/"+bucketAfter+"/"):
			if after[ev.Kv.ModRevision] == nil {
				after[ev.Kv.ModRevision] = map[string]bool{}
			}
			if !after[ev.Kv.ModRevision][job] {
				after[ev.Kv.ModRevision][job] = true
				out = append(out, jobs.Change{Job: job, Key: bucketAfter})
			}
		case strings.HasPrefix(rest, "kv/"):
			out = append(out, jobs.Change{Job: job, Key: strings.TrimPrefix(rest, "kv/"), Deleted: del})
		}
	}
	return out
}
