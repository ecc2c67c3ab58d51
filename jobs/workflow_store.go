package jobs

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// followUp records, in one commit, run nr of job dstJob and the mark
// "action" on run srcID of srcJob, unless that run has made the action
// already (made is then false): a follow-up is made exactly once.
func (s *Store) followUp(srcJob string, srcID uint64, action, dstJob string, nr Run) (Run, bool, error) {
	made := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		src, err := runsBucketIndexed(tx, srcJob) // src stays ended: its index entry holds
		if err != nil {
			return err
		}
		r, err := readRun(src, srcID)
		if err != nil {
			return err
		}
		if !r.Followup || slices.Contains(r.FollowedUp, action) {
			return nil
		}
		dst, err := runsBucketIndexed(tx, dstJob)
		if err != nil {
			return err
		}
		if nr.ID, err = dst.NextSequence(); err != nil {
			return err
		}
		if err := putJSON(dst, runIDKey(nr.ID), nr); err != nil {
			return err
		}
		if err := indexRun(tx, dstJob, nr); err != nil {
			return err
		}
		r.FollowedUp = append(r.FollowedUp, action)
		made = true
		return putJSON(src, runIDKey(srcID), r)
	})
	return nr, made && err == nil, err
}

// followupScan is how many of each job's newest runs followupRuns reads:
// a run's follow-ups are made moments after its end, so only runs that
// ended just before a crash can still have some.
const followupScan = 64

// followupRuns lists the ended runs whose follow-ups are still to be made,
// among each job's newest followupScan runs.
func (s *Store) followupRuns() ([]RunRef, error) {
	var out []RunRef
	err := s.db.View(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		return jobs.ForEachBucket(func(id []byte) error {
			c := jobs.Bucket(id).Bucket(bucketRuns).Cursor()
			n := 0
			for k, v := c.Last(); k != nil && n < followupScan; k, v = c.Prev() {
				n++
				if !bytes.Contains(v, []byte(`"followup":true`)) {
					continue // most runs: not decoded at all
				}
				var r Run
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				if r.Followup && r.Status.Terminal() {
					out = append(out, RunRef{JobID: string(id), Run: r})
				}
			}
			return nil
		})
	})
	return out, err
}

// afterDone records in one commit that run srcID of srcJob completed for
// downstream dstJob (the mark action on the run, the run in dstJob's after
// bucket), and when every job of want has a run there, empties the bucket
// and, with start, records nr in dstJob.
func (s *Store) afterDone(srcJob string, srcID uint64, action, dstJob string, want map[string]string, nr Run, start bool) (afterResult, error) {
	var res afterResult
	err := s.db.Update(func(tx *bolt.Tx) error {
		src, err := runsBucketIndexed(tx, srcJob) // src stays ended: its index entry holds
		if err != nil {
			return err
		}
		r, err := readRun(src, srcID)
		if err != nil {
			return err
		}
		if !r.Followup || slices.Contains(r.FollowedUp, action) {
			return nil
		}
		d, err := jobBucket(tx, dstJob)
		if err != nil {
			return err
		}
		after, err := d.CreateBucketIfNotExists(bucketAfter)
		if err != nil {
			return err
		}
		if err := after.Put([]byte(srcJob), []byte(itoa(srcID))); err != nil {
			return err
		}
		r.FollowedUp = append(r.FollowedUp, action)
		if err := putJSON(src, runIDKey(srcID), r); err != nil {
			return err
		}
		res.counted = true
		runs := map[string]uint64{}
		for id := range want {
			if v := after.Get([]byte(id)); v != nil {
				n, err := strconv.ParseUint(string(v), 10, 64)
				if err == nil {
					runs[id] = n
				}
			}
		}
		res.have = len(runs)
		if len(runs) < len(want) {
			return nil
		}
		res.complete, res.runs = true, runs
		if err := d.DeleteBucket(bucketAfter); err != nil {
			return err
		}
		if !start {
			return nil
		}
		dst := d.Bucket(bucketRuns)
		if nr.ID, err = dst.NextSequence(); err != nil {
			return err
		}
		nr.TriggeredBy = afterBy(want, runs)
		res.run = nr
		if err := putJSON(dst, runIDKey(nr.ID), nr); err != nil {
			return err
		}
		return indexRun(tx, dstJob, nr)
	})
	return res, err
}
