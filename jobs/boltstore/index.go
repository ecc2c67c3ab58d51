package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/jobs/domain"
)

// The index of active runs (issue 20): a daemon's start finds the runs a
// previous daemon left active without reading every run record (6 s with a
// million runs). It is written in the same transaction as the record it
// follows, so a crash never leaves the two apart.
//
//	active/r/<job id>/<be64 run> -> ""  a run that has not ended
//	active/d/<job id> -> ""             runs written by code that does not keep
//	                                    the index (runsBucket in a write): read
//	                                    whole at the next start
//	active/s/<job id> -> ""             a job with config/schedule stored:
//	                                    the scheduler's start reads only these
//	active/f/<job id>/<be64 run> -> ""  a run recorded with Followup set: its
//	                                    follow-ups may still be due (the
//	                                    start's recoverFollowups reads these)
//	daemon/index -> indexVersion        the index is complete
//	daemon/followups -> "1"             active/f is complete
//
// A store without daemon/index (made by an older jobfs) gets its index
// built from every run the first time it is opened; one with the index but
// without daemon/followups gets active/f from each job's newest
// followupScan runs (where an older jobfs looked for them at every start).
var (
	bucketActive = []byte("active")
	subActive    = []byte("r")
	subDirty     = []byte("d")
	subSchedule  = []byte("s")
	subFollowup  = []byte("f")
	keyIndex     = []byte("index")
	keyFollowups = []byte("followups")
)

// indexVersion is stored at daemon/index once the index is complete.
const indexVersion = "active-runs 2"

// keySchedule is the setting whose jobs active/s lists.
const keySchedule = "config/schedule"

func activeKey(jobID string, id uint64) []byte {
	k := make([]byte, 0, len(jobID)+9)
	k = append(k, jobID...)
	k = append(k, '/')
	return binary.BigEndian.AppendUint64(k, id)
}

// splitActiveKey undoes activeKey.
func splitActiveKey(k []byte) (string, uint64, bool) {
	if len(k) < 10 || k[len(k)-9] != '/' {
		return "", 0, false
	}
	return string(k[:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// indexSub returns active/<name>, made when missing (a write transaction).
func indexSub(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	a, err := tx.CreateBucketIfNotExists(bucketActive)
	if err != nil {
		return nil, err
	}
	return a.CreateBucketIfNotExists(name)
}

// indexRun records in tx whether run r of job jobID is active, and
// whether it has its Followup mark.
func indexRun(tx *bolt.Tx, jobID string, r Run) error {
	active, err := indexSub(tx, subActive)
	if err != nil {
		return err
	}
	k := activeKey(jobID, r.ID)
	if r.Status.Terminal() {
		err = active.Delete(k)
	} else {
		err = active.Put(k, nil)
	}
	if err != nil {
		return err
	}
	follow, err := indexSub(tx, subFollowup)
	if err != nil {
		return err
	}
	if r.Followup {
		return follow.Put(k, nil)
	}
	return follow.Delete(k) // a key not there: nothing is written
}

// unindexRun forgets run id of job jobID (deleted).
func unindexRun(tx *bolt.Tx, jobID string, id uint64) error {
	for _, sub := range [][]byte{subActive, subFollowup} {
		b, err := indexSub(tx, sub)
		if err != nil {
			return err
		}
		if err := b.Delete(activeKey(jobID, id)); err != nil {
			return err
		}
	}
	return nil
}

// unindexRuns forgets every run of job jobID in index sub (active/r or f).
func unindexRuns(tx *bolt.Tx, sub []byte, jobID string) error {
	b, err := indexSub(tx, sub)
	if err != nil {
		return err
	}
	prefix := append([]byte(jobID), '/')
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// unindexJob forgets every run of job jobID (deleted whole).
func unindexJob(tx *bolt.Tx, jobID string) error {
	for _, sub := range [][]byte{subActive, subFollowup} {
		if err := unindexRuns(tx, sub, jobID); err != nil {
			return err
		}
	}
	dirty, err := indexSub(tx, subDirty)
	if err != nil {
		return err
	}
	if err := dirty.Delete([]byte(jobID)); err != nil {
		return err
	}
	return indexSchedule(tx, jobID, false)
}

// indexSchedule records whether job jobID has config/schedule stored.
func indexSchedule(tx *bolt.Tx, jobID string, set bool) error {
	sched, err := indexSub(tx, subSchedule)
	if err != nil {
		return err
	}
	if set {
		return sched.Put([]byte(jobID), nil)
	}
	return sched.Delete([]byte(jobID))
}

// ScheduledJobs lists the jobs that have config/schedule stored, from the
// index: the scheduler's start reads no other job.
func (s *Store) ScheduledJobs() ([]Job, error) {
	var out []Job
	err := s.guard(func() error { // read at start: where a damaged file shows
		return s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketActive).Bucket(subSchedule).ForEach(func(k, _ []byte) error {
				b, err := jobBucket(tx, string(k))
				if err != nil {
					return err
				}
				j, err := readJob(b)
				out = append(out, j)
				return err
			})
		})
	})
	return out, err
}

// markDirty notes in a write transaction that job jobID's runs may have
// changed without the index: the next start reads them whole.
func markDirty(tx *bolt.Tx, jobID string) error {
	dirty, err := indexSub(tx, subDirty)
	if err != nil {
		return err
	}
	if dirty.Get([]byte(jobID)) != nil {
		return nil
	}
	return dirty.Put([]byte(jobID), nil)
}

// ensureIndex builds the index from every run record when the store has
// none yet (a state folder of an older jobfs), once.
func ensureIndex(tx *bolt.Tx) error {
	d := tx.Bucket(bucketDaemon)
	if string(d.Get(keyIndex)) == indexVersion {
		return nil
	}
	if a := tx.Bucket(bucketActive); a != nil {
		if err := tx.DeleteBucket(bucketActive); err != nil {
			return err
		}
	}
	jobs := tx.Bucket(bucketJobs)
	err := jobs.ForEachBucket(func(id []byte) error {
		b := jobs.Bucket(id)
		if b.Bucket(bucketCfg).Get([]byte(keySchedule)) != nil {
			if err := indexSchedule(tx, string(id), true); err != nil {
				return err
			}
		}
		return indexJobRuns(tx, string(id), b.Bucket(bucketRuns))
	})
	if err != nil {
		return err
	}
	for _, sub := range [][]byte{subActive, subDirty, subSchedule, subFollowup} {
		if _, err := indexSub(tx, sub); err != nil {
			return err
		}
	}
	if err := d.Put(keyFollowups, []byte("1")); err != nil {
		return err
	}
	return d.Put(keyIndex, []byte(indexVersion))
}

// markFollowup is how a run record with its Followup mark set reads.
var markFollowup = []byte(`"followup":true`)

// indexJobRuns reads every run of one job into the index (its follow-up
// marks anew: a dirty job's may have been cleared without the index).
func indexJobRuns(tx *bolt.Tx, jobID string, runs *bolt.Bucket) error {
	active, err := indexSub(tx, subActive)
	if err != nil {
		return err
	}
	if err := unindexRuns(tx, subFollowup, jobID); err != nil {
		return err
	}
	follow, err := indexSub(tx, subFollowup)
	if err != nil {
		return err
	}
	return runs.ForEach(func(k, v []byte) error {
		st, ok := recordStatus(v)
		if ok && st.Terminal() && !bytes.Contains(v, markFollowup) {
			return nil // most runs: not decoded at all
		}
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		key := activeKey(jobID, binary.BigEndian.Uint64(k))
		if r.Followup {
			if err := follow.Put(key, nil); err != nil {
				return err
			}
		}
		if r.Status.Terminal() {
			return nil
		}
		return active.Put(key, nil)
	})
}

// ensureFollowups builds active/f, for a store whose index was made by a
// jobfs without it, from each job's newest followupScan runs: where that
// jobfs looked for them (a run's follow-ups are made moments after its end).
func ensureFollowups(tx *bolt.Tx) error {
	d := tx.Bucket(bucketDaemon)
	if d.Get(keyFollowups) != nil {
		return nil
	}
	follow, err := indexSub(tx, subFollowup)
	if err != nil {
		return err
	}
	jobs := tx.Bucket(bucketJobs)
	err = jobs.ForEachBucket(func(id []byte) error {
		return newestMarked(jobs.Bucket(id).Bucket(bucketRuns), func(run uint64, r Run) error {
			if !r.Followup {
				return nil
			}
			return follow.Put(activeKey(string(id), run), nil)
		})
	})
	if err != nil {
		return err
	}
	return d.Put(keyFollowups, []byte("1"))
}

// newestMarked calls fn with each of a job's newest followupScan runs whose
// record has its Followup mark; the others are not decoded at all.
func newestMarked(runs *bolt.Bucket, fn func(run uint64, r Run) error) error {
	c := runs.Cursor()
	n := 0
	for k, v := c.Last(); k != nil && n < followupScan; k, v = c.Prev() {
		n++
		if !bytes.Contains(v, markFollowup) {
			continue
		}
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if err := fn(binary.BigEndian.Uint64(k), r); err != nil {
			return err
		}
	}
	return nil
}

// cleanDirty reads the runs of every job marked dirty into the index and
// clears the marks.
func cleanDirty(tx *bolt.Tx) error {
	dirty, err := indexSub(tx, subDirty)
	if err != nil {
		return err
	}
	var ids []string
	if err := dirty.ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil }); err != nil {
		return err
	}
	for _, id := range ids {
		if b := tx.Bucket(bucketJobs).Bucket([]byte(id)); b != nil {
			if err := indexJobRuns(tx, id, b.Bucket(bucketRuns)); err != nil {
				return err
			}
		}
		if err := dirty.Delete([]byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// scanActive reads the runs the index names, oldest first per job, and
// the names of runs that ended or are gone (stale: for a write to drop),
// and whether a job is marked dirty.
func scanActive(tx *bolt.Tx) (out []RunRef, stale [][]byte, dirty bool, err error) {
	a := tx.Bucket(bucketActive)
	active, marks := a.Bucket(subActive), a.Bucket(subDirty)
	first, _ := marks.Cursor().First()
	dirty = first != nil
	err = active.ForEach(func(k, _ []byte) error {
		jobID, id, ok := splitActiveKey(k)
		if !ok {
			stale = append(stale, k)
			return nil
		}
		runs, err := runsBucketIndexed(tx, jobID)
		if err != nil {
			stale = append(stale, k)
			return nil
		}
		r, err := readRun(runs, id)
		if errors.Is(err, domain.ErrNotFound) || err == nil && r.Status.Terminal() {
			stale = append(stale, k)
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, RunRef{JobID: jobID, Run: r})
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Run.Queued.Before(out[j].Run.Queued) })
	return out, stale, dirty, err
}

// activeRuns is ActiveRuns through the index: one read, and a write only
// when runs were written without it (dirty) or names went stale.
func (s *Store) activeRuns() ([]RunRef, error) {
	var out []RunRef
	var stale [][]byte
	dirty := false
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, stale, dirty, err = scanActive(tx)
		return err
	})
	if err != nil || len(stale) == 0 && !dirty {
		return out, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := cleanDirty(tx); err != nil {
			return err
		}
		var err error
		if out, stale, _, err = scanActive(tx); err != nil {
			return err
		}
		active := tx.Bucket(bucketActive).Bucket(subActive)
		for _, k := range stale {
			if err := active.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
