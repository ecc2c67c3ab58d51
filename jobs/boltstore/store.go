package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Store is the embedded Store: jobs, their settings and their run
// records in one bbolt file, its buckets nested along the paths of Store
// (a run's key is its id as 8 big-endian bytes; the runs bucket's sequence
// is jobs/<id>/runseq).
//
// Every write is one fsync'd transaction, so what a caller was told succeeded
// survives a crash; the change feed publishes it after the commit.
type Store struct {
	db       boltDB
	path     string
	instance Instance
	reserve  *reserve // nil until the store is open
	jobs     jobList  // each owner's jobs once listed (index_jobs.go)
	feed     feed     // Watch (feed.go)
}

// boltDB is the store's bbolt file. A transaction after Close (a reader of
// a lazily detached mount still asking while the daemon stops) fails with
// domain.ErrStopped, which the tree answers as ESHUTDOWN, not as an
// unexpected error.
type boltDB struct{ *bolt.DB }

func (d boltDB) View(fn func(*bolt.Tx) error) error   { return stopped(d.DB.View(fn)) }
func (d boltDB) Update(fn func(*bolt.Tx) error) error { return stopped(d.DB.Update(fn)) }

func stopped(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w (%w)", domain.ErrStopped, err)
	}
	return err
}

var (
	bucketNames = []byte("names")
	bucketJobs  = []byte("jobs")
	bucketCfg   = []byte("config")
	bucketRuns  = []byte("runs")
	bucketTimes = []byte("mtimes") // jobs/<id>/mtimes/<k>: when setting k last changed
	keyMeta     = []byte("meta")
	// daemon/instance: the Instance id of the folder that last opened it.
	bucketDaemon = []byte("daemon")
	keyInstance  = []byte("instance")
)

// recordStatus reads the status of an encoded Run without decoding the
// rest: rebuilding the index looks at every run of every job. It walks the
// record's top-level keys as tokens and stops at "status" (the second
// field as Run is encoded, so a few tokens), whatever order the fields are
// in and whatever a step's status says.
func recordStatus(v []byte) (Status, bool) {
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", false
		}
		if key == "status" {
			st, err := dec.Token()
			s, ok := st.(string)
			return Status(s), err == nil && ok
		}
		var skip json.RawMessage // a value that is not the status: passed over whole
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// DB is the bbolt file, for tests and tools that look inside it; the
// daemon goes through the methods.
func (s *Store) DB() *bolt.DB { return s.db.DB }

// SetNoSync makes commits skip fsync (true) or fsync again (false), for
// bulk loads such as a benchmark's seed state; a daemon never uses it.
func (s *Store) SetNoSync(noSync bool) { s.db.NoSync = noSync }

// Open opens (or creates) the store at path. It fails at once when
// another daemon holds the file, and with ErrDamaged (never a panic) when
// the file is damaged. It records which state folder opened it: see
// Instance.
func Open(path string) (*Store, error) {
	id, err := domain.FolderID(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	s := &Store{path: path}
	err = s.guard(func() error {
		if err := s.checkNotEmptied(); err != nil {
			return err
		}
		var err error
		s.db.DB, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("open %s: in use by another jobfs daemon%s", path, lockHolder(path))
		}
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
			return s.damaged(err.Error())
		}
		if err != nil {
			return fmt.Errorf("open store %s: %w", path, err)
		}
		if err := s.checkSize(); err != nil {
			return err
		}
		return s.init(id)
	})
	if err != nil {
		if s.db.DB != nil {
			_ = s.db.Close() // the open error is the one to report
		}
		return nil, err
	}
	s.reserve = newReserve(filepath.Join(filepath.Dir(path), "jobfs.reserve"))
	return s, nil
}

// init creates the top buckets and claims the store for folder id.
func (s *Store) init(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketNames, bucketJobs} { // bucketListing: ensureListing
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		d, err := tx.CreateBucketIfNotExists(bucketDaemon)
		if err != nil {
			return err
		}
		prev := d.Get(keyInstance)
		s.instance = Instance{ID: id, Copied: prev != nil && string(prev) != id, Legacy: prev == nil}
		if err := ensureIndex(tx); err != nil { // index.go
			return err
		}
		if err := ensureFollowups(tx); err != nil { // index.go
			return err
		}
		if err := ensureListing(tx); err != nil { // index_list.go
			return err
		}
		if string(prev) == id {
			return nil
		}
		return d.Put(keyInstance, []byte(id))
	})
	if err != nil {
		return fmt.Errorf("init store %s: %w", s.path, err)
	}
	return nil
}

// Instance says which state folder opened the store, and whether the
// previous opener was another one (the folder is a copy).
func (s *Store) Instance() Instance { return s.instance }

// Close ends every Watch and closes the database file.
func (s *Store) Close() error {
	s.feed.close()
	s.reserve.close()
	return s.db.Close()
}

// update commits fn and then publishes what it changed: changes, and
// what fn added to *more (known only inside the transaction).
func (s *Store) update(fn func(tx *bolt.Tx, more *[]Change) error, changes ...Change) error {
	return s.publishAfter(s.db.Update, fn, changes)
}

// publishAfter runs fn in commit (db.Update or updateFreeing) and
// publishes the changes once it committed.
func (s *Store) publishAfter(commit func(func(*bolt.Tx) error) error, fn func(*bolt.Tx, *[]Change) error, changes []Change) error {
	var more []Change
	err := commit(func(tx *bolt.Tx) error {
		more = more[:0] // a retried commit (updateFreeing) starts again
		return fn(tx, &more)
	})
	if err == nil {
		s.feed.publish(append(changes, more...))
	}
	return err
}

// Check runs bbolt's consistency check and returns the first problem found.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
}

func nameKey(owner Owner, name string) []byte {
	return []byte(strconv.FormatUint(uint64(owner), 10) + "/" + name)
}

func runIDKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, id)
}

// jobBucket returns the bucket of job id or domain.ErrNotFound.
func jobBucket(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	b := tx.Bucket(bucketJobs).Bucket([]byte(id))
	if b == nil {
		return nil, domain.Errorf(domain.ErrNotFound, "no job %s", id)
	}
	return b, nil
}

func readJob(b *bolt.Bucket) (Job, error) {
	var j Job
	if err := json.Unmarshal(b.Get(keyMeta), &j); err != nil {
		return j, fmt.Errorf("decode job: %w", err)
	}
	return j, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

// CreateJob stores a new job; domain.ErrExists when its owner has one of that name.
func (s *Store) CreateJob(j Job) error {
	defer s.jobs.changed()
	return s.update(func(tx *bolt.Tx, _ *[]Change) error {
		names := tx.Bucket(bucketNames)
		if names.Get(nameKey(j.Owner, j.Name)) != nil {
			return domain.Errorf(domain.ErrExists, "job %q exists", j.Name)
		}
		b, err := tx.Bucket(bucketJobs).CreateBucket([]byte(j.ID))
		if err != nil {
			return fmt.Errorf("create job %s: %w", j.ID, err)
		}
		for _, sub := range [][]byte{bucketCfg, bucketRuns} {
			if _, err := b.CreateBucket(sub); err != nil {
				return err
			}
		}
		if err := putJSON(b, keyMeta, j); err != nil {
			return err
		}
		if err := listJob(tx, j, true); err != nil {
			return err
		}
		return names.Put(nameKey(j.Owner, j.Name), []byte(j.ID))
	}, Change{Job: j.ID})
}

// JobByName finds owner's job called name.
func (s *Store) JobByName(owner Owner, name string) (Job, error) {
	if j, found, ok := s.keptJob(owner, name); ok {
		if !found {
			return j, domain.Errorf(domain.ErrNotFound, "no job %q", name)
		}
		return j, nil
	}
	var j Job
	err := s.db.View(func(tx *bolt.Tx) error {
		k := nameKey(owner, name)
		v := tx.Bucket(bucketListing).Get(k)
		if v == nil {
			return domain.Errorf(domain.ErrNotFound, "no job %q", name)
		}
		var err error
		j, err = readListEntry(owner, k, v)
		return err
	})
	return j, err
}

// Job returns the job with the given id.
func (s *Store) Job(id string) (Job, error) {
	if j, ok := s.jobs.job(id); ok { // index_jobs.go
		return j, nil
	}
	var j Job
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		j, err = readJob(b)
		return err
	})
	return j, err
}

// Jobs lists owner's jobs sorted by name.
func (s *Store) Jobs(owner Owner) ([]Job, error) { return s.jobsOf(owner) }

// readJobs is Jobs from the listing (index_list.go); size is how many
// jobs the owner had at the last read. The jobs' ids and names are cut
// from one string: a list of 100,000 is two allocations, not 200,000.
func (s *Store) readJobs(owner Owner, size int) ([]Job, error) {
	out := make([]Job, 0, size+size/8)
	text := make([]byte, 0, 20*cap(out)) // every id and name, in order
	cuts := make([][3]int, 0, cap(out))  // where job i's id and name are in text
	prefix := nameKey(owner, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketListing).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			id, t, ok := bytes.Cut(v, []byte{0})
			if !ok {
				return fmt.Errorf("decode listing of job %q: no id", k)
			}
			j := Job{Owner: owner}
			if err := decodeCreated(&j.Created, k, t); err != nil {
				return err
			}
			start := len(text)
			text = append(text, id...)
			mid := len(text)
			text = append(text, k[len(prefix):]...)
			cuts = append(cuts, [3]int{start, mid, len(text)})
			out = append(out, j)
		}
		return nil
	})
	all := string(text)
	for i, c := range cuts {
		out[i].ID, out[i].Name = all[c[0]:c[1]], all[c[1]:c[2]]
	}
	return out, err
}

// AllJobs lists every job of every owner.
func (s *Store) AllJobs() ([]Job, error) {
	var out []Job
	err := s.guard(func() error { // read at start: where a damaged file shows
		return s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketJobs).ForEachBucket(func(k []byte) error {
				j, err := readJob(tx.Bucket(bucketJobs).Bucket(k))
				out = append(out, j)
				return err
			})
		})
	})
	return out, err
}

func hasPrefix(k, p []byte) bool {
	return len(k) >= len(p) && string(k[:len(p)]) == string(p)
}

// RenameJob gives job id a new name; domain.ErrExists when the owner has one.
func (s *Store) RenameJob(id, newName string) error {
	defer s.jobs.changed()
	return s.update(func(tx *bolt.Tx, _ *[]Change) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		j, err := readJob(b)
		if err != nil {
			return err
		}
		names := tx.Bucket(bucketNames)
		if names.Get(nameKey(j.Owner, newName)) != nil {
			return domain.Errorf(domain.ErrExists, "job %q exists", newName)
		}
		if err := names.Delete(nameKey(j.Owner, j.Name)); err != nil {
			return err
		}
		if err := unlistJob(tx, j, false); err != nil {
			return err
		}
		j.Name = newName
		if err := putJSON(b, keyMeta, j); err != nil {
			return err
		}
		if err := listJob(tx, j, false); err != nil {
			return err
		}
		return names.Put(nameKey(j.Owner, newName), []byte(id))
	}, Change{Job: id, Key: "meta"})
}

// DeleteJob removes job id with its settings and run records.
func (s *Store) DeleteJob(id string) error {
	defer s.jobs.changed()
	return s.publishAfter(s.updateFreeing, func(tx *bolt.Tx, _ *[]Change) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		j, err := readJob(b)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketNames).Delete(nameKey(j.Owner, j.Name)); err != nil {
			return err
		}
		if err := unlistJob(tx, j, true); err != nil {
			return err
		}
		if err := unindexJob(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketJobs).DeleteBucket([]byte(id))
	}, []Change{{Job: id, Deleted: true}})
}

// Setting returns the stored value of key and whether one is stored.
func (s *Store) Setting(id, key string) (string, bool, error) {
	var v string
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		raw := b.Bucket(bucketCfg).Get([]byte(key))
		found, v = raw != nil, string(raw) // string() copies out of the mmap
		return nil
	})
	return v, found, err
}

// SetSetting stores value under key, changed at t.
func (s *Store) SetSetting(id, key, value string, t time.Time) error {
	return s.update(func(tx *bolt.Tx, _ *[]Change) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		if err := b.Bucket(bucketCfg).Put([]byte(key), []byte(value)); err != nil {
			return err
		}
		if key == keySchedule {
			if err := indexSchedule(tx, id, true); err != nil {
				return err
			}
		}
		return putTime(b, key, t)
	}, Change{Job: id, Key: key})
}

// DeleteSetting removes key, so it reads as its default again (changed at t).
func (s *Store) DeleteSetting(id, key string, t time.Time) error {
	return s.update(func(tx *bolt.Tx, _ *[]Change) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		if err := b.Bucket(bucketCfg).Delete([]byte(key)); err != nil {
			return err
		}
		if key == keySchedule {
			if err := indexSchedule(tx, id, false); err != nil {
				return err
			}
		}
		return putTime(b, key, t)
	}, Change{Job: id, Key: key, Deleted: true})
}

// SetTime records that key changed at t, its value untouched.
func (s *Store) SetTime(id, key string, t time.Time) error {
	return s.update(func(tx *bolt.Tx, _ *[]Change) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		return putTime(b, key, t)
	}, Change{Job: id, Key: key})
}

func putTime(job *bolt.Bucket, key string, t time.Time) error {
	times, err := job.CreateBucketIfNotExists(bucketTimes)
	if err != nil {
		return err
	}
	return times.Put([]byte(key), binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())))
}

// Times returns when each recorded key of job id last changed.
func (s *Store) Times(id string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, id)
		if err != nil {
			return err
		}
		times := b.Bucket(bucketTimes)
		if times == nil {
			return nil
		}
		return times.ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			}
			return nil
		})
	})
	return out, err
}

// CreateRun stores r as the job's next run and returns it with its id. Ids
// count up from 1 per job and are never reused.
func (s *Store) CreateRun(jobID string, r Run) (Run, error) {
	err := s.update(func(tx *bolt.Tx, more *[]Change) error {
		var err error
		r, err = addRun(tx, jobID, r)
		*more = append(*more, runChange(jobID, r.ID, false))
		return err
	})
	return r, err
}

// addRun stores r as job jobID's next run, with its index entry.
func addRun(tx *bolt.Tx, jobID string, r Run) (Run, error) {
	runs, err := runsBucketIndexed(tx, jobID)
	if err != nil {
		return r, err
	}
	if r.ID, err = runs.NextSequence(); err != nil {
		return r, err
	}
	if err := indexRun(tx, jobID, r); err != nil {
		return r, err
	}
	return r, putJSON(runs, runIDKey(r.ID), r)
}

// runChange is the Change of run n of job jobID.
func runChange(jobID string, n uint64, deleted bool) Change {
	return Change{Job: jobID, Key: "runs/" + strconv.FormatUint(n, 10), Run: n, Deleted: deleted}
}

// UpdateRun applies fn to the stored run and stores the result.
func (s *Store) UpdateRun(jobID string, id uint64, fn func(*Run)) (Run, error) {
	var r Run
	err := s.update(func(tx *bolt.Tx, _ *[]Change) error {
		runs, err := runsBucketIndexed(tx, jobID)
		if err != nil {
			return err
		}
		if r, err = readRun(runs, id); err != nil {
			return err
		}
		fn(&r)
		if err := indexRun(tx, jobID, r); err != nil {
			return err
		}
		return putJSON(runs, runIDKey(id), r)
	}, runChange(jobID, id, false))
	return r, err
}

// runsBucket returns job jobID's runs. In a write it marks the job for the
// index of active runs (index.go) to read whole at the next start: a
// caller may store a run without keeping the index.
func runsBucket(tx *bolt.Tx, jobID string) (*bolt.Bucket, error) {
	runs, err := runsBucketIndexed(tx, jobID)
	if err != nil || !tx.Writable() {
		return runs, err
	}
	return runs, markDirty(tx, jobID)
}

// runsBucketIndexed is runsBucket for a caller that keeps the index itself.
func runsBucketIndexed(tx *bolt.Tx, jobID string) (*bolt.Bucket, error) {
	b, err := jobBucket(tx, jobID)
	if err != nil {
		return nil, err
	}
	return b.Bucket(bucketRuns), nil
}

func readRun(runs *bolt.Bucket, id uint64) (Run, error) {
	var r Run
	v := runs.Get(runIDKey(id))
	if v == nil {
		return r, domain.Errorf(domain.ErrNotFound, "no run %d", id)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("decode run %d: %w", id, err)
	}
	return r, nil
}

// Run returns one run of a job.
func (s *Store) Run(jobID string, id uint64) (Run, error) {
	var r Run
	err := s.db.View(func(tx *bolt.Tx) error {
		runs, err := runsBucket(tx, jobID)
		if err != nil {
			return err
		}
		r, err = readRun(runs, id)
		return err
	})
	return r, err
}

// RunIDs lists the ids of a job's runs, oldest first.
func (s *Store) RunIDs(jobID string) ([]uint64, error) {
	var ids []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		runs, err := runsBucket(tx, jobID)
		if err != nil {
			return err
		}
		return runs.ForEach(func(k, _ []byte) error {
			ids = append(ids, binary.BigEndian.Uint64(k))
			return nil
		})
	})
	return ids, err
}

// LatestRun returns the id of the job's newest run, or 0 when it has none.
func (s *Store) LatestRun(jobID string) (uint64, error) {
	var id uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		runs, err := runsBucket(tx, jobID)
		if err != nil {
			return err
		}
		if k, _ := runs.Cursor().Last(); k != nil {
			id = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return id, err
}

// DeleteRun removes a run record.
func (s *Store) DeleteRun(jobID string, id uint64) error {
	return s.publishAfter(s.updateFreeing, func(tx *bolt.Tx, _ *[]Change) error {
		runs, err := runsBucketIndexed(tx, jobID)
		if err != nil {
			return err
		}
		if runs.Get(runIDKey(id)) == nil {
			return domain.Errorf(domain.ErrNotFound, "no run %d", id)
		}
		if err := unindexRun(tx, jobID, id); err != nil {
			return err
		}
		if err := runs.Delete(runIDKey(id)); err != nil {
			return err
		}
		return touchRuns(tx, jobID) // runs/ shows when it changed
	}, []Change{runChange(jobID, id, true)})
}

// ActiveRuns lists every run, of any job, that has not ended, oldest first
// per job, from the index of active runs (index.go): the daemon's start
// reads none of the ended runs.
func (s *Store) ActiveRuns() ([]RunRef, error) {
	var out []RunRef
	err := s.guard(func() error { // read at start: where a damaged file shows
		var err error
		out, err = s.activeRuns()
		return err
	})
	return out, err
}
