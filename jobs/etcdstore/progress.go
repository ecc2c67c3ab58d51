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
	dir := s.p + "progress/"
	return pump(s, ctx, dir, func(evs []*clientv3.Event) []jobs.RunID {
		var ids []jobs.RunID
		for _, ev := range evs {
			job, num, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), dir), "/")
			if n, err := strconv.ParseUint(num, 10, 64); ok && err == nil {
				ids = append(ids, jobs.RunID{JobID: job, ID: n})
			}
		}
		return ids
	}, clientv3.WithFilterDelete())
}

var _ jobs.Cluster = (*Store)(nil)
