package etcdstore

import (
	"context"
	"errors"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/jobfs/jobfs/jobs"
)

// progress/<job>/<n> carries the executing node's lease and is put again
// each time the run's log grew (the Manager rate-limits it): live readers
// on other nodes wake on its watch events instead of polling the file. It
// is one key per running run, deleted with the claim when the run ends
// (or by etcd with the lease).
func (s *Store) progressKey(id string, n uint64) string {
	return s.p + "progress/" + id + "/" + pad(n)
}

// Progress tells the other nodes that run n's log grew.
func (s *Store) Progress(id string, n uint64) error {
	if s.sess == nil {
		return errors.New("etcd: progress before Join")
	}
	ctx, cancel := s.op()
	defer cancel()
	if _, err := s.cli.Put(ctx, s.progressKey(id, n), "", clientv3.WithLease(s.sess.Lease())); err != nil {
		return storeErr("signal progress", err)
	}
	return nil
}

// WatchProgress returns the runs whose progress key was put, by any node,
// until ctx ends or the store closes; it closes early when it lags.
func (s *Store) WatchProgress(ctx context.Context) <-chan jobs.RunID {
	out := make(chan jobs.RunID, feedBuffer)
	dir := s.p + "progress/"
	wctx, stop := context.WithCancel(s.ctx)
	context.AfterFunc(ctx, stop)
	events := s.cli.Watch(clientv3.WithRequireLeader(wctx), dir, clientv3.WithPrefix(), clientv3.WithFilterDelete())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		for resp := range events {
			if resp.Err() != nil || resp.Canceled {
				return
			}
			for _, ev := range resp.Events {
				job, num, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), dir), "/")
				n, err := strconv.ParseUint(num, 10, 64)
				if !ok || err != nil {
					continue
				}
				select {
				case out <- jobs.RunID{JobID: job, ID: n}:
				default:
					return // fell behind: the reader watches anew
				}
			}
		}
	}()
	return out
}

var _ jobs.Cluster = (*Store)(nil)
