package boltstore

import (
	"errors"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/jobs/domain"
)

// FollowUp records, in one commit, run next of job dstJob and the mark
// action on run src, unless that run has made the action already (made is
// then false): a follow-up is made exactly once.
func (s *Store) FollowUp(src RunID, action, dstJob string, next Run) (Run, bool, error) {
	made := false
	err := s.update(func(tx *bolt.Tx, more *[]Change) error {
		made = false
		runs, r, due, err := followupDue(tx, src, action)
		if err != nil || !due {
			return err
		}
		if next, err = addRun(tx, dstJob, next); err != nil {
			return err
		}
		r.FollowedUp = append(r.FollowedUp, action)
		made = true
		*more = append(*more, runChange(dstJob, next.ID, false), runChange(src.JobID, src.ID, false))
		return putJSON(runs, runIDKey(src.ID), r)
	})
	return next, made && err == nil, err
}

// followupDue reads run src and whether action is still to be made for
// it (it is a Followup run without the mark), with its job's runs bucket.
// src stays ended: its index entry holds.
func followupDue(tx *bolt.Tx, src RunID, action string) (*bolt.Bucket, Run, bool, error) {
	runs, err := runsBucketIndexed(tx, src.JobID)
	if err != nil {
		return nil, Run{}, false, err
	}
	r, err := readRun(runs, src.ID)
	if err != nil {
		return nil, r, false, err
	}
	return runs, r, r.Followup && !slices.Contains(r.FollowedUp, action), nil
}

// followupScan is how many of each job's newest runs an older jobfs read
// for follow-ups at every start, and ensureFollowups reads once: a run's
// follow-ups are made moments after its end, so only runs that ended just
// before a crash can still have some.
const followupScan = 64

// FollowupRuns lists the ended runs whose follow-ups may still be due, from
// the index (active/f, index.go): a start reads those records only, not
// each job's newest runs. A job marked dirty (runs written without the
// index) has its newest followupScan runs read too.
func (s *Store) FollowupRuns() ([]RunRef, error) {
	var out []RunRef
	err := s.guard(func() error { // read at start: where a damaged file shows
		return s.db.View(func(tx *bolt.Tx) error {
			a := tx.Bucket(bucketActive)
			seen := map[string]bool{}
			add := func(jobID string, id uint64, r Run) {
				k := string(activeKey(jobID, id))
				if r.Followup && r.Status.Terminal() && !seen[k] {
					seen[k] = true
					out = append(out, RunRef{JobID: jobID, Run: r})
				}
			}
			err := a.Bucket(subFollowup).ForEach(func(k, _ []byte) error {
				jobID, id, ok := splitActiveKey(k)
				if !ok {
					return nil // not a name the index writes
				}
				runs, err := runsBucketIndexed(tx, jobID)
				if err != nil {
					return nil // the job is gone: nothing is due
				}
				r, err := readRun(runs, id)
				if errors.Is(err, domain.ErrNotFound) {
					return nil // deleted
				}
				if err != nil {
					return err
				}
				add(jobID, id, r)
				return nil
			})
			if err != nil {
				return err
			}
			return a.Bucket(subDirty).ForEach(func(k, _ []byte) error {
				b := tx.Bucket(bucketJobs).Bucket(k)
				if b == nil {
					return nil
				}
				return newestMarked(b.Bucket(bucketRuns), func(run uint64, r Run) error {
					add(string(k), run, r)
					return nil
				})
			})
		})
	})
	return out, err
}

// AfterDone records in one commit that run src completed for downstream
// dstJob (the mark action on the run, the run in dstJob's after bucket),
// and when every job of want has a run there, empties the bucket and
// records the run next gives, if any, in dstJob.
func (s *Store) AfterDone(src RunID, action, dstJob string, want []string, next func(map[string]uint64) (Run, bool)) (AfterResult, error) {
	var res AfterResult
	err := s.update(func(tx *bolt.Tx, more *[]Change) error {
		res = AfterResult{}
		runs, r, due, err := followupDue(tx, src, action)
		if err != nil || !due {
			return err
		}
		d, err := jobBucket(tx, dstJob)
		if err != nil {
			return err
		}
		after, err := d.CreateBucketIfNotExists(bucketAfter)
		if err != nil {
			return err
		}
		if err := after.Put([]byte(src.JobID), []byte(strconv.FormatUint(src.ID, 10))); err != nil {
			return err
		}
		r.FollowedUp = append(r.FollowedUp, action)
		if err := putJSON(runs, runIDKey(src.ID), r); err != nil {
			return err
		}
		res.Counted = true
		*more = append(*more, runChange(src.JobID, src.ID, false), Change{Job: dstJob, Key: string(bucketAfter)})
		res.Runs = afterRuns(after, want)
		res.Have = len(res.Runs)
		if res.Have < len(want) {
			res.Runs = nil
			return nil
		}
		res.Complete = true
		if err := d.DeleteBucket(bucketAfter); err != nil {
			return err
		}
		nr, ok := next(res.Runs)
		if !ok {
			return nil
		}
		if res.Run, err = addRun(tx, dstJob, nr); err != nil {
			return err
		}
		*more = append(*more, runChange(dstJob, res.Run.ID, false))
		return nil
	})
	return res, err
}

// afterRuns reads the runs the after bucket holds for the jobs of want.
func afterRuns(after *bolt.Bucket, want []string) map[string]uint64 {
	runs := map[string]uint64{}
	for _, id := range want {
		if v := after.Get([]byte(id)); v != nil {
			if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				runs[id] = n
			} // else unreadable: counted as not yet completed
		}
	}
	return runs
}
