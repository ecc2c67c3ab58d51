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
	wctx, stop := context.WithCancel(s.ctx)
	context.AfterFunc(ctx, stop)
	events := s.cli.Watch(clientv3.WithRequireLeader(wctx), dir, clientv3.WithPrefix(), clientv3.WithRev(g.Header.Revision+1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		for resp := range events {
			if resp.Err() != nil || resp.Canceled {
				return
			}
			for _, c := range changes(dir, resp.Events) {
				select {
				case out <- c:
				default:
					return // fell behind: closed, as documented
				}
			}
		}
	}()
	return out
}

// changes turns a watch response's events into Changes as BoltStore names
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
