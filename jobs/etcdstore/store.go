// Package etcdstore keeps jobfs's state in etcd: a jobs.Store whose every
// method is one etcd transaction, so that several daemons on several
// machines share one job tree (the store of a team that outgrew one
// machine; bbolt stays the embedded default).
//
// Keys live under a prefix (default /jobfs/), flat, by path:
//
//	names/<owner>/<name>           -> job id
//	jobs/<id>/meta                 -> jobs.Job (JSON)
//	jobs/<id>/set/<key>            -> a setting's value (key: config/...)
//	jobs/<id>/mtimes/<key>         -> when key last changed (8 bytes, ns)
//	jobs/<id>/runs/<n, 20 digits>  -> jobs.Run (JSON); padded so keys sort as ids
//	jobs/<id>/runseq               -> the last run id given (decimal)
//	jobs/<id>/req/<n, 20 digits>   -> the nonce of the commit that made run n
//	jobs/<id>/maker/<n, 20 digits> -> the node that made run n, with its lease, until the run ends
//	jobs/<id>/kv/<bucket>/<key>    -> env, shares, after
//	jobs/<id>/afterseq             -> bumped by each AfterDone (its compare)
//	active/r/<id>/<n, 20 digits>   -> "" while run n has not ended
//	active/s/<id>                  -> "" while job id has config/schedule
//
// A read-modify-write reads, then commits with its read keys' mod revisions
// compared, and tries again when another writer won: the compare, never a
// clock or a lock, decides. A job's keys are bounded (its runs are pruned by
// the Manager's retention); the history etcd keeps is its compaction
// policy's, which the operator sets (see the README).
package etcdstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/jobfs/jobfs/jobs"
)

// Config says where a Store keeps its keys.
type Config struct {
	// Client is the etcd client; the Store closes it when it owns it.
	Client    *clientv3.Client
	OwnClient bool
	// Prefix is prepended to every key; default /jobfs/.
	Prefix string
	// Instance names this daemon (its cgroups are named after it).
	Instance jobs.Instance
	// Timeout bounds each etcd request; default 10 s.
	Timeout time.Duration
	// Now dates mtimes; default time.Now.
	Now func() time.Time
}

// Store is a jobs.Store kept in etcd.
type Store struct {
	cli      *clientv3.Client
	own      bool
	p        string
	instance jobs.Instance
	timeout  time.Duration
	now      func() time.Time

	node      string               // Join's name, empty when not a node
	sess      *concurrency.Session // the node's lease, nil when not a node
	leaseGone atomic.Bool          // etcd said the lease is gone before sess did

	ctx    context.Context // ends at Close: every watch with it
	cancel context.CancelFunc
	wg     sync.WaitGroup // watch goroutines
	once   sync.Once
}

var _ jobs.Store = (*Store)(nil)

// maxTries bounds a compare-and-swap loop: past it the store is too
// contended to make progress and says so instead of spinning.
const maxTries = 1000

// feedBuffer is how far one watcher may fall behind (as boltstore's).
const feedBuffer = 1024

// New returns a Store on cfg.Client.
func New(cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = "/jobfs/"
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{cli: cfg.Client, own: cfg.OwnClient, p: cfg.Prefix, instance: cfg.Instance,
		timeout: cfg.Timeout, now: cfg.Now, ctx: ctx, cancel: cancel}
}

// Instance names the daemon that opened the store.
func (s *Store) Instance() jobs.Instance { return s.instance }

// Close ends every Watch and, when the Store owns it, the client.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		if s.sess != nil {
			// Revoking the lease ends the node's claims at once: the
			// Manager ended its runs before closing the store. A lease
			// already lost has nothing left to revoke.
			select {
			case <-s.sess.Done():
			default:
				err = s.sess.Close()
			}
		}
		s.cancel()
		s.wg.Wait()
		if s.own {
			err = errors.Join(err, s.cli.Close())
		}
	})
	return err
}

// --- keys

func (s *Store) nameKey(owner jobs.Owner, name string) string {
	return s.p + "names/" + strconv.FormatUint(uint64(owner), 10) + "/" + name
}
func (s *Store) namesOf(owner jobs.Owner) string {
	return s.p + "names/" + strconv.FormatUint(uint64(owner), 10) + "/"
}
func (s *Store) jobDir(id string) string           { return s.p + "jobs/" + id + "/" }
func (s *Store) metaKey(id string) string          { return s.jobDir(id) + "meta" }
func (s *Store) setKey(id, key string) string      { return s.jobDir(id) + "set/" + key }
func (s *Store) timeKey(id, key string) string     { return s.jobDir(id) + "mtimes/" + key }
func (s *Store) seqKey(id string) string           { return s.jobDir(id) + "runseq" }
func (s *Store) afterSeqKey(id string) string      { return s.jobDir(id) + "afterseq" }
func (s *Store) runsDir(id string) string          { return s.jobDir(id) + "runs/" }
func (s *Store) runKey(id string, n uint64) string { return s.runsDir(id) + pad(n) }
func (s *Store) reqKey(id string, n uint64) string { return s.jobDir(id) + "req/" + pad(n) }
func (s *Store) makerKey(id string, n uint64) string {
	return s.jobDir(id) + "maker/" + pad(n)
}
func (s *Store) kvDir(id, bucket string) string { return s.jobDir(id) + "kv/" + bucket + "/" }
func (s *Store) activeRun(id string, n uint64) string {
	return s.p + "active/r/" + id + "/" + pad(n)
}
func (s *Store) activeRunsOf(id string) string { return s.p + "active/r/" + id + "/" }
func (s *Store) schedKey(id string) string     { return s.p + "active/s/" + id }

// pad writes a run id so that keys sort as ids.
func pad(n uint64) string { return fmt.Sprintf("%020d", n) }

const bucketAfter = "after" // as jobs' config/after bucket

// --- errors

func notFound(format string, args ...any) error {
	return &jobs.Error{Kind: jobs.ErrNotFound, Reason: fmt.Sprintf(format, args...)}
}

func exists(name string) error {
	return &jobs.Error{Kind: jobs.ErrExists, Reason: fmt.Sprintf("job %q exists", name)}
}

// storeErr says which store failed: a person reads it in the job log.
func storeErr(what string, err error) error {
	return fmt.Errorf("etcd: %s: %w", what, err)
}

var errContended = errors.New("etcd: too many concurrent writers on one key; try again")

// --- requests

func (s *Store) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.timeout)
}

// txn commits ops when every cmp holds (the response says whether it
// did), sent again as it is after a transient error (retry.go): only for
// reads and for commits whose compares make a second application change
// nothing; the others use commit.
func (s *Store) txn(cmps []clientv3.Cmp, then []clientv3.Op, orElse ...clientv3.Op) (*clientv3.TxnResponse, error) {
	rt := s.retrier()
	for {
		r, err := s.txnOnce(cmps, then, orElse...)
		if err == nil || !rt.again(err) {
			return r, err
		}
	}
}

// txnOnce sends a transaction once.
func (s *Store) txnOnce(cmps []clientv3.Cmp, then []clientv3.Op, orElse ...clientv3.Op) (*clientv3.TxnResponse, error) {
	ctx, cancel := s.op()
	defer cancel()
	return s.cli.Txn(ctx).If(cmps...).Then(then...).Else(orElse...).Commit()
}

// read runs gets together at one revision.
func (s *Store) read(gets ...clientv3.Op) ([]*clientv3.GetResponse, int64, error) {
	r, err := s.txn(nil, gets)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*clientv3.GetResponse, len(r.Responses))
	for i, rr := range r.Responses {
		out[i] = (*clientv3.GetResponse)(rr.GetResponseRange())
	}
	return out, r.Header.Revision, nil
}

func exist(key string) clientv3.Cmp { return clientv3.Compare(clientv3.Version(key), ">", 0) }
func absent(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
}
func unchanged(key string, mod int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(key), "=", mod)
}

func modOf(r *clientv3.GetResponse) int64 {
	if len(r.Kvs) == 0 {
		return 0
	}
	return r.Kvs[0].ModRevision
}

func timeValue(t time.Time) string {
	return string(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())))
}

func putJSON(key string, v any) (clientv3.Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpPut(key, string(b)), nil
}

// --- jobs

// CreateJob stores j unless its owner has a job of that name.
func (s *Store) CreateJob(j jobs.Job) error {
	meta, err := putJSON(s.metaKey(j.ID), j)
	if err != nil {
		return err
	}
	r, err := s.commit(s.valueIs(s.nameKey(j.Owner, j.Name), j.ID), []clientv3.Cmp{absent(s.nameKey(j.Owner, j.Name))},
		[]clientv3.Op{clientv3.OpPut(s.nameKey(j.Owner, j.Name), j.ID), meta})
	if err != nil {
		return storeErr("create job", err)
	}
	if !r.Succeeded {
		return exists(j.Name)
	}
	return nil
}

func decodeJob(v []byte) (jobs.Job, error) {
	var j jobs.Job
	if err := json.Unmarshal(v, &j); err != nil {
		return j, fmt.Errorf("decode job: %w", err)
	}
	return j, nil
}

// Job reads one job.
func (s *Store) Job(id string) (jobs.Job, error) {
	j, _, err := s.job(id)
	return j, err
}

// job reads one job and its meta's mod revision.
func (s *Store) job(id string) (jobs.Job, int64, error) {
	ctx, cancel := s.op()
	defer cancel()
	r, err := s.cli.Get(ctx, s.metaKey(id))
	if err != nil {
		return jobs.Job{}, 0, storeErr("read job", err)
	}
	if len(r.Kvs) == 0 {
		return jobs.Job{}, 0, notFound("no job %s", id)
	}
	j, err := decodeJob(r.Kvs[0].Value)
	return j, r.Kvs[0].ModRevision, err
}

// JobByName finds owner's job called name.
func (s *Store) JobByName(owner jobs.Owner, name string) (jobs.Job, error) {
	ctx, cancel := s.op()
	defer cancel()
	r, err := s.cli.Get(ctx, s.nameKey(owner, name))
	if err != nil {
		return jobs.Job{}, storeErr("find job", err)
	}
	if len(r.Kvs) == 0 {
		return jobs.Job{}, notFound("no job %q", name)
	}
	metas, err := s.metas([]string{string(r.Kvs[0].Value)}, r.Header.Revision)
	if err != nil {
		return jobs.Job{}, err
	}
	if len(metas) == 0 {
		return jobs.Job{}, notFound("no job %q", name)
	}
	return metas[0], nil
}

// metas reads the jobs of ids at revision rev, in order; ids without a
// record are left out.
func (s *Store) metas(ids []string, rev int64) ([]jobs.Job, error) {
	var out []jobs.Job
	for len(ids) > 0 {
		n := min(len(ids), 100) // etcd allows 128 ops per request
		var gets []clientv3.Op
		for _, id := range ids[:n] {
			gets = append(gets, clientv3.OpGet(s.metaKey(id), clientv3.WithRev(rev)))
		}
		rs, _, err := s.read(gets...)
		if err != nil {
			return nil, storeErr("read jobs", err)
		}
		for _, r := range rs {
			if len(r.Kvs) == 0 {
				continue
			}
			j, err := decodeJob(r.Kvs[0].Value)
			if err != nil {
				return nil, err
			}
			out = append(out, j)
		}
		ids = ids[n:]
	}
	return out, nil
}

// listed reads the values (job ids) under prefix and their jobs.
func (s *Store) listed(prefix string, idFromKey bool) ([]jobs.Job, error) {
	ctx, cancel := s.op()
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if idFromKey {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	r, err := s.cli.Get(ctx, prefix, opts...)
	if err != nil {
		return nil, storeErr("list jobs", err)
	}
	ids := make([]string, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		if idFromKey {
			ids = append(ids, strings.TrimPrefix(string(kv.Key), prefix))
		} else {
			ids = append(ids, string(kv.Value))
		}
	}
	return s.metas(ids, r.Header.Revision)
}

// Jobs lists owner's jobs sorted by name.
func (s *Store) Jobs(owner jobs.Owner) ([]jobs.Job, error) {
	return s.listed(s.namesOf(owner), false)
}

// AllJobs lists every job of every owner.
func (s *Store) AllJobs() ([]jobs.Job, error) { return s.listed(s.p+"names/", false) }

// ScheduledJobs lists the jobs with config/schedule stored.
func (s *Store) ScheduledJobs() ([]jobs.Job, error) { return s.listed(s.p+"active/s/", true) }

// RenameJob gives job id a new name unless its owner has a job of it.
func (s *Store) RenameJob(id, newName string) error {
	for range maxTries {
		j, mod, err := s.job(id)
		if err != nil {
			return err
		}
		old := j.Name
		j.Name = newName
		meta, err := putJSON(s.metaKey(id), j)
		if err != nil {
			return err
		}
		r, err := s.txn([]clientv3.Cmp{unchanged(s.metaKey(id), mod), absent(s.nameKey(j.Owner, newName))},
			[]clientv3.Op{clientv3.OpDelete(s.nameKey(j.Owner, old)), clientv3.OpPut(s.nameKey(j.Owner, newName), id), meta},
			clientv3.OpGet(s.nameKey(j.Owner, newName), clientv3.WithCountOnly()))
		if err != nil {
			return storeErr("rename job", err)
		}
		if r.Succeeded {
			return nil
		}
		if r.Responses[0].GetResponseRange().Count > 0 {
			return exists(newName)
		}
	}
	return errContended
}

// DeleteJob removes job id with its settings, runs and index entries.
func (s *Store) DeleteJob(id string) error {
	for range maxTries {
		j, mod, err := s.job(id)
		if err != nil {
			return err
		}
		r, err := s.txn([]clientv3.Cmp{unchanged(s.metaKey(id), mod)}, []clientv3.Op{
			clientv3.OpDelete(s.nameKey(j.Owner, j.Name)),
			clientv3.OpDelete(s.jobDir(id), clientv3.WithPrefix()),
			clientv3.OpDelete(s.schedKey(id)),
			clientv3.OpDelete(s.activeRunsOf(id), clientv3.WithPrefix()),
		})
		if err != nil {
			return storeErr("delete job", err)
		}
		if r.Succeeded {
			return nil
		}
	}
	return errContended
}

// --- settings

// Setting reads a stored setting; set is false when none is stored.
func (s *Store) Setting(id, key string) (string, bool, error) {
	rs, _, err := s.read(clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()), clientv3.OpGet(s.setKey(id, key)))
	if err != nil {
		return "", false, storeErr("read setting", err)
	}
	if rs[0].Count == 0 {
		return "", false, notFound("no job %s", id)
	}
	if len(rs[1].Kvs) == 0 {
		return "", false, nil
	}
	return string(rs[1].Kvs[0].Value), true, nil
}

// SetSetting stores value under key, changed at t.
func (s *Store) SetSetting(id, key, value string, t time.Time) error {
	ops := []clientv3.Op{clientv3.OpPut(s.setKey(id, key), value), clientv3.OpPut(s.timeKey(id, key), timeValue(t))}
	if key == "config/schedule" {
		ops = append(ops, clientv3.OpPut(s.schedKey(id), ""))
	}
	return s.onJob(id, "store setting", ops)
}

// DeleteSetting removes key (it reads as its default), changed at t.
func (s *Store) DeleteSetting(id, key string, t time.Time) error {
	ops := []clientv3.Op{clientv3.OpDelete(s.setKey(id, key)), clientv3.OpPut(s.timeKey(id, key), timeValue(t))}
	if key == "config/schedule" {
		ops = append(ops, clientv3.OpDelete(s.schedKey(id)))
	}
	return s.onJob(id, "delete setting", ops)
}

// SetTime records that key changed at t, its value untouched.
func (s *Store) SetTime(id, key string, t time.Time) error {
	return s.onJob(id, "store a time", []clientv3.Op{clientv3.OpPut(s.timeKey(id, key), timeValue(t))})
}

// onJob commits ops when job id exists.
func (s *Store) onJob(id, what string, ops []clientv3.Op) error {
	r, err := s.txn([]clientv3.Cmp{exist(s.metaKey(id))}, ops)
	if err != nil {
		return storeErr(what, err)
	}
	if !r.Succeeded {
		return notFound("no job %s", id)
	}
	return nil
}

// Times reads when each recorded key of job id last changed.
func (s *Store) Times(id string) (map[string]time.Time, error) {
	dir := s.timeKey(id, "")
	rs, _, err := s.read(clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()), clientv3.OpGet(dir, clientv3.WithPrefix()))
	if err != nil {
		return nil, storeErr("read times", err)
	}
	if rs[0].Count == 0 {
		return nil, notFound("no job %s", id)
	}
	out := map[string]time.Time{}
	for _, kv := range rs[1].Kvs {
		if len(kv.Value) == 8 {
			out[strings.TrimPrefix(string(kv.Key), dir)] = time.Unix(0, int64(binary.BigEndian.Uint64(kv.Value)))
		}
	}
	return out, nil
}

// Snapshot reads a job, its settings and its env at one revision.
func (s *Store) Snapshot(id string) (jobs.JobSnapshot, error) {
	snap := jobs.JobSnapshot{Settings: map[string]string{}, Env: map[string][]byte{}}
	setDir, envDir := s.setKey(id, ""), s.kvDir(id, "env")
	rs, _, err := s.read(clientv3.OpGet(s.metaKey(id)), clientv3.OpGet(setDir, clientv3.WithPrefix()), clientv3.OpGet(envDir, clientv3.WithPrefix()))
	if err != nil {
		return snap, storeErr("read job", err)
	}
	if len(rs[0].Kvs) == 0 {
		return snap, notFound("no job %s", id)
	}
	if snap.Job, err = decodeJob(rs[0].Kvs[0].Value); err != nil {
		return snap, err
	}
	for _, kv := range rs[1].Kvs {
		snap.Settings[strings.TrimPrefix(string(kv.Key), setDir)] = string(kv.Value)
	}
	for _, kv := range rs[2].Kvs {
		snap.Env[strings.TrimPrefix(string(kv.Key), envDir)] = kv.Value
	}
	return snap, nil
}

// --- key/value buckets

// PutKV stores key in bucket, replacing a stored value only when replace
// is set; stored says whether it wrote.
func (s *Store) PutKV(id, bucket, key string, value []byte, replace bool) (bool, error) {
	k := s.kvDir(id, bucket) + key
	for range maxTries {
		rs, _, err := s.read(clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()), clientv3.OpGet(k, clientv3.WithKeysOnly()))
		if err != nil {
			return false, storeErr("read "+bucket, err)
		}
		if rs[0].Count == 0 {
			return false, notFound("no job %s", id)
		}
		added := len(rs[1].Kvs) == 0
		if !replace && !added {
			return false, nil
		}
		now := timeValue(s.now())
		ops := []clientv3.Op{clientv3.OpPut(k, string(value)), clientv3.OpPut(s.timeKey(id, jobs.KVTimeKey(bucket, key)), now)}
		if added { // the folder gains an entry
			ops = append(ops, clientv3.OpPut(s.timeKey(id, jobs.KVTimeKey(bucket, "")), now))
		}
		r, err := s.txn([]clientv3.Cmp{exist(s.metaKey(id)), unchanged(k, modOf(rs[1]))}, ops)
		if err != nil {
			return false, storeErr("store "+bucket, err)
		}
		if r.Succeeded {
			return true, nil
		}
	}
	return false, errContended
}

// DeleteKV removes key from bucket; found says whether it was there.
func (s *Store) DeleteKV(id, bucket, key string) (bool, error) {
	k := s.kvDir(id, bucket) + key
	r, err := s.txn([]clientv3.Cmp{exist(s.metaKey(id)), exist(k)},
		[]clientv3.Op{clientv3.OpDelete(k), clientv3.OpPut(s.timeKey(id, jobs.KVTimeKey(bucket, "")), timeValue(s.now()))},
		clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()))
	if err != nil {
		return false, storeErr("delete from "+bucket, err)
	}
	if r.Succeeded {
		return true, nil
	}
	if r.Responses[0].GetResponseRange().Count == 0 {
		return false, notFound("no job %s", id)
	}
	return false, nil
}

// ListKV reads a bucket (empty when none).
func (s *Store) ListKV(id, bucket string) (map[string][]byte, error) {
	dir := s.kvDir(id, bucket)
	rs, _, err := s.read(clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()), clientv3.OpGet(dir, clientv3.WithPrefix()))
	if err != nil {
		return nil, storeErr("read "+bucket, err)
	}
	if rs[0].Count == 0 {
		return nil, notFound("no job %s", id)
	}
	out := map[string][]byte{}
	for _, kv := range rs[1].Kvs {
		out[strings.TrimPrefix(string(kv.Key), dir)] = kv.Value
	}
	return out, nil
}

// --- runs

func decodeRun(v []byte) (jobs.Run, error) {
	var r jobs.Run
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("decode run: %w", err)
	}
	return r, nil
}

// runOps writes run r of job id with its active index entry.
func (s *Store) runOps(id string, r jobs.Run) ([]clientv3.Op, error) {
	put, err := putJSON(s.runKey(id, r.ID), r)
	if err != nil {
		return nil, err
	}
	if r.Status.Terminal() {
		return []clientv3.Op{put, clientv3.OpDelete(s.activeRun(id, r.ID)), clientv3.OpDelete(s.makerKey(id, r.ID))}, nil
	}
	return []clientv3.Op{put, clientv3.OpPut(s.activeRun(id, r.ID), "")}, nil
}

// nextRun reads what adding a run to job id compares: the job exists and
// its sequence; n is the id the new run gets.
func (s *Store) nextRun(id string) (n uint64, cmps []clientv3.Cmp, err error) {
	rs, _, err := s.read(clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()), clientv3.OpGet(s.seqKey(id)))
	if err != nil {
		return 0, nil, storeErr("read run sequence", err)
	}
	if rs[0].Count == 0 {
		return 0, nil, notFound("no job %s", id)
	}
	var last uint64
	if len(rs[1].Kvs) > 0 {
		if last, err = strconv.ParseUint(string(rs[1].Kvs[0].Value), 10, 64); err != nil {
			return 0, nil, fmt.Errorf("etcd: job %s: damaged run sequence %q", id, rs[1].Kvs[0].Value)
		}
	}
	return last + 1, []clientv3.Cmp{exist(s.metaKey(id)), unchanged(s.seqKey(id), modOf(rs[1]))}, nil
}

// addOps stores r as run n of job id, made by the commit named req (its
// nonce: whether a commit whose reply was lost made the run).
func (s *Store) addOps(id string, n uint64, r jobs.Run, req string) (jobs.Run, []clientv3.Op, error) {
	r.ID = n
	ops, err := s.runOps(id, r)
	if err != nil {
		return r, nil, err
	}
	ops = append(ops, clientv3.OpPut(s.seqKey(id), strconv.FormatUint(n, 10)), clientv3.OpPut(s.reqKey(id, n), req))
	if s.sess != nil && !r.Status.Terminal() {
		ops = append(ops, s.makerOp(id, n))
	}
	return r, ops, nil
}

// CreateRun stores r as job id's next run: ids are dense from 1 and never
// reused, however many daemons race.
func (s *Store) CreateRun(id string, r jobs.Run) (jobs.Run, error) {
	for range maxTries {
		n, cmps, err := s.nextRun(id)
		if err != nil {
			return r, err
		}
		req := nonce()
		nr, ops, err := s.addOps(id, n, r, req)
		if err != nil {
			return r, err
		}
		t, err := s.commit(s.valueIs(s.reqKey(id, n), req), cmps, ops)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && s.sess != nil && !s.leaseGone.Swap(true) {
			continue // this node's lease expired before it learned so: made again without it
		}
		if err != nil {
			return r, storeErr("create run", err)
		}
		if t.Succeeded {
			return nr, nil
		}
	}
	return r, errContended
}

// readRun reads run n of job id with its mod revision.
func (s *Store) readRun(id string, n uint64) (jobs.Run, int64, error) {
	ctx, cancel := s.op()
	defer cancel()
	g, err := s.cli.Get(ctx, s.runKey(id, n))
	if err != nil {
		return jobs.Run{}, 0, storeErr("read run", err)
	}
	if len(g.Kvs) == 0 {
		return jobs.Run{}, 0, notFound("no run %d", n)
	}
	r, err := decodeRun(g.Kvs[0].Value)
	return r, g.Kvs[0].ModRevision, err
}

// UpdateRun applies fn to run n and stores the result; fn runs again when
// another writer changed the run meanwhile.
func (s *Store) UpdateRun(id string, n uint64, fn func(*jobs.Run)) (jobs.Run, error) {
	for range maxTries {
		r, mod, err := s.readRun(id, n)
		if err != nil {
			return r, err
		}
		fn(&r)
		r.ID = n
		ops, err := s.runOps(id, r)
		if err != nil {
			return r, err
		}
		cmps := []clientv3.Cmp{unchanged(s.runKey(id, n), mod)}
		mine := s.sess != nil && r.Node == s.node
		if mine { // fenced: only while this node's claim holds
			cmps = append(cmps, s.fence(id, n))
			if r.Status.Terminal() {
				ops = append(ops, clientv3.OpDelete(s.claimKey(id, n)), clientv3.OpDelete(s.progressKey(id, n)),
					clientv3.OpDelete(s.ctlKey(s.node, id, n)))
			}
		}
		b, err := json.Marshal(r) // as runOps wrote it: the applied check compares it
		if err != nil {
			return r, err
		}
		t, err := s.commit(s.valueIs(s.runKey(id, n), string(b)), cmps, ops, clientv3.OpGet(s.claimKey(id, n)))
		if err != nil {
			return r, storeErr("update run", err)
		}
		if t.Succeeded {
			return r, nil
		}
		if claim := t.Responses[0].GetResponseRange().Kvs; mine && (len(claim) == 0 || claim[0].Lease != int64(s.sess.Lease())) {
			return r, fmt.Errorf("run %d: %w", n, ErrFenced)
		}
	}
	return jobs.Run{}, errContended
}

// Run reads run n of job id.
func (s *Store) Run(id string, n uint64) (jobs.Run, error) {
	r, _, err := s.readRun(id, n)
	return r, err
}

// runIDs reads the ids of job id's runs, in key order, at most limit (0:
// all), newest first when desc.
func (s *Store) runIDs(id string, limit int64, desc bool) ([]uint64, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(limit)}
	if desc {
		opts = append(opts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	}
	rs, _, err := s.read(clientv3.OpGet(s.metaKey(id), clientv3.WithCountOnly()), clientv3.OpGet(s.runsDir(id), opts...))
	if err != nil {
		return nil, storeErr("list runs", err)
	}
	if rs[0].Count == 0 {
		return nil, notFound("no job %s", id)
	}
	var ids []uint64
	for _, kv := range rs[1].Kvs {
		if n, err := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), s.runsDir(id)), 10, 64); err == nil {
			ids = append(ids, n)
		} // else not a run key: none is written
	}
	return ids, nil
}

// RunIDs lists the ids of job id's runs, oldest first.
func (s *Store) RunIDs(id string) ([]uint64, error) { return s.runIDs(id, 0, false) }

// LatestRun is the id of job id's newest run, 0 when none.
func (s *Store) LatestRun(id string) (uint64, error) {
	ids, err := s.runIDs(id, 1, true)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return ids[0], nil
}

// DeleteRun removes run n of job id.
func (s *Store) DeleteRun(id string, n uint64) error {
	r, err := s.txn([]clientv3.Cmp{exist(s.runKey(id, n))}, []clientv3.Op{
		clientv3.OpDelete(s.runKey(id, n)), clientv3.OpDelete(s.activeRun(id, n)), clientv3.OpDelete(s.reqKey(id, n)),
		clientv3.OpDelete(s.makerKey(id, n)), clientv3.OpPut(s.timeKey(id, jobs.TimeRuns), timeValue(s.now())),
	})
	if err != nil {
		return storeErr("delete run", err)
	}
	if !r.Succeeded {
		return notFound("no run %d", n)
	}
	return nil
}

// ActiveRuns lists every run that has not ended, oldest first, from the
// index of active runs: no ended run is read.
func (s *Store) ActiveRuns() ([]jobs.RunRef, error) {
	ctx, cancel := s.op()
	defer cancel()
	dir := s.p + "active/r/"
	g, err := s.cli.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, storeErr("list active runs", err)
	}
	type ref struct {
		job string
		n   uint64
	}
	var refs []ref
	for _, kv := range g.Kvs {
		job, num, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), dir), "/")
		n, err := strconv.ParseUint(num, 10, 64)
		if ok && err == nil {
			refs = append(refs, ref{job, n})
		}
	}
	var out []jobs.RunRef
	for len(refs) > 0 {
		k := min(len(refs), 100)
		var gets []clientv3.Op
		for _, r := range refs[:k] {
			gets = append(gets, clientv3.OpGet(s.runKey(r.job, r.n), clientv3.WithRev(g.Header.Revision)))
		}
		rs, _, err := s.read(gets...)
		if err != nil {
			return nil, storeErr("read active runs", err)
		}
		for i, r := range rs {
			if len(r.Kvs) == 0 {
				continue // the index and the runs are written together: not seen
			}
			run, err := decodeRun(r.Kvs[0].Value)
			if err != nil {
				return nil, err
			}
			out = append(out, jobs.RunRef{JobID: refs[i].job, Run: run})
		}
		refs = refs[k:]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Run.Queued.Before(out[j].Run.Queued) })
	return out, nil
}

// --- follow-ups

// followupScan is how many of each job's newest runs FollowupRuns reads,
// as boltstore's.
const followupScan = 64

// followupDue reads run src and whether action is still to be made for it.
func (s *Store) followupDue(src jobs.RunID, action string) (jobs.Run, int64, bool, error) {
	r, mod, err := s.readRun(src.JobID, src.ID)
	if err != nil {
		return r, 0, false, err
	}
	return r, mod, r.Followup && !slices.Contains(r.FollowedUp, action), nil
}

// FollowUp makes run next of dstJob and marks action on run src in one
// commit, unless src has made that action already: exactly once.
func (s *Store) FollowUp(src jobs.RunID, action, dstJob string, next jobs.Run) (jobs.Run, bool, error) {
	for range maxTries {
		r, mod, due, err := s.followupDue(src, action)
		if err != nil || !due {
			return next, false, err
		}
		n, cmps, err := s.nextRun(dstJob)
		if err != nil {
			return next, false, err
		}
		nr, ops, err := s.addOps(dstJob, n, next, nonce())
		if err != nil {
			return next, false, err
		}
		r.FollowedUp = append(r.FollowedUp, action)
		mark, err := putJSON(s.runKey(src.JobID, src.ID), r)
		if err != nil {
			return next, false, err
		}
		t, err := s.txn(append(cmps, unchanged(s.runKey(src.JobID, src.ID), mod)), append(ops, mark))
		if err != nil {
			return next, false, storeErr("record follow-up", err)
		}
		if t.Succeeded {
			return nr, true, nil
		}
	}
	return next, false, errContended
}

// AfterDone counts src's completion for dstJob's config/after once, and
// when every job of want has a run counted, empties the set and stores the
// run next gives: see jobs.Store.
func (s *Store) AfterDone(src jobs.RunID, action, dstJob string, want []string, next func(map[string]uint64) (jobs.Run, bool)) (jobs.AfterResult, error) {
	dir := s.kvDir(dstJob, bucketAfter)
	for range maxTries {
		r, mod, due, err := s.followupDue(src, action)
		if err != nil || !due {
			return jobs.AfterResult{}, err
		}
		rs, _, err := s.read(clientv3.OpGet(s.metaKey(dstJob), clientv3.WithCountOnly()),
			clientv3.OpGet(dir, clientv3.WithPrefix()), clientv3.OpGet(s.afterSeqKey(dstJob)))
		if err != nil {
			return jobs.AfterResult{}, storeErr("read config/after", err)
		}
		if rs[0].Count == 0 {
			return jobs.AfterResult{}, notFound("no job %s", dstJob)
		}
		have := map[string]uint64{src.JobID: src.ID}
		for _, kv := range rs[1].Kvs {
			up := strings.TrimPrefix(string(kv.Key), dir)
			if n, err := strconv.ParseUint(string(kv.Value), 10, 64); err == nil && up != src.JobID {
				have[up] = n
			} // else unreadable: counted as not yet completed
		}
		res := jobs.AfterResult{Counted: true, Runs: map[string]uint64{}}
		for _, id := range want {
			if n, ok := have[id]; ok {
				res.Runs[id] = n
			}
		}
		res.Have = len(res.Runs)
		seq := strconv.FormatInt(rs[2].Header.Revision, 10) // any new value: its mod revision is what compares
		cmps := []clientv3.Cmp{exist(s.metaKey(dstJob)), unchanged(s.runKey(src.JobID, src.ID), mod), unchanged(s.afterSeqKey(dstJob), modOf(rs[2]))}
		r.FollowedUp = append(r.FollowedUp, action)
		mark, err := putJSON(s.runKey(src.JobID, src.ID), r)
		if err != nil {
			return res, err
		}
		ops := []clientv3.Op{mark, clientv3.OpPut(s.afterSeqKey(dstJob), seq)}
		if res.Have < len(want) {
			res.Runs = nil
			ops = append(ops, clientv3.OpPut(dir+src.JobID, strconv.FormatUint(src.ID, 10)))
		} else {
			res.Complete = true
			ops = append(ops, clientv3.OpDelete(dir, clientv3.WithPrefix()))
			if nr, ok := next(res.Runs); ok {
				n, more, err := s.nextRun(dstJob)
				if err != nil {
					return jobs.AfterResult{}, err
				}
				var add []clientv3.Op
				if res.Run, add, err = s.addOps(dstJob, n, nr, nonce()); err != nil {
					return jobs.AfterResult{}, err
				}
				cmps, ops = append(cmps, more...), append(ops, add...)
			}
		}
		t, err := s.txn(cmps, ops)
		if err != nil {
			return jobs.AfterResult{}, storeErr("record config/after", err)
		}
		if t.Succeeded {
			return res, nil
		}
	}
	return jobs.AfterResult{}, errContended
}

// FollowupRuns lists the ended runs whose follow-ups may still be due,
// among each job's newest followupScan runs.
func (s *Store) FollowupRuns() ([]jobs.RunRef, error) {
	all, err := s.AllJobs()
	if err != nil {
		return nil, err
	}
	var out []jobs.RunRef
	for _, j := range all {
		ctx, cancel := s.op()
		g, err := s.cli.Get(ctx, s.runsDir(j.ID), clientv3.WithPrefix(), clientv3.WithLimit(followupScan),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
		cancel()
		if err != nil {
			return nil, storeErr("read runs", err)
		}
		for _, kv := range g.Kvs {
			if !strings.Contains(string(kv.Value), `"followup":true`) {
				continue // most runs: not decoded at all
			}
			r, err := decodeRun(kv.Value)
			if err != nil {
				return nil, err
			}
			if r.Followup && r.Status.Terminal() {
				out = append(out, jobs.RunRef{JobID: j.ID, Run: r})
			}
		}
	}
	return out, nil
}
