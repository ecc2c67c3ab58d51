package jobs

import (
	"bytes"
	"encoding/json"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// followUp records, in one commit, run nr of job dstJob and the mark
// "action" on run srcID of srcJob, unless that run has made the action
// already (made is then false): a follow-up is made exactly once.
func (s *Store) followUp(srcJob string, srcID uint64, action, dstJob string, nr Run) (Run, bool, error) {
	made := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		src, err := runsBucket(tx, srcJob)
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
		dst, err := runsBucket(tx, dstJob)
		if err != nil {
			return err
		}
		if nr.ID, err = dst.NextSequence(); err != nil {
			return err
		}
		if err := putJSON(dst, runIDKey(nr.ID), nr); err != nil {
			return err
		}
		r.FollowedUp = append(r.FollowedUp, action)
		made = true
		return putJSON(src, runIDKey(srcID), r)
	})
	return nr, made && err == nil, err
}

// followupRuns lists the ended runs whose follow-ups are still to be made.
func (s *Store) followupRuns() ([]RunRef, error) {
	var out []RunRef
	err := s.db.View(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketJobs)
		return jobs.ForEachBucket(func(id []byte) error {
			return jobs.Bucket(id).Bucket(bucketRuns).ForEach(func(_, v []byte) error {
				if !bytes.Contains(v, []byte(`"followup":true`)) {
					return nil // most runs: not decoded at all
				}
				var r Run
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				if r.Followup && r.Status.Terminal() {
					out = append(out, RunRef{JobID: string(id), Run: r})
				}
				return nil
			})
		})
	})
	return out, err
}
