package boltstore

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Snapshot reads a job's record, settings and env in one transaction.
func (s *Store) Snapshot(jobID string) (JobSnapshot, error) {
	snap := JobSnapshot{Settings: map[string]string{}, Env: map[string][]byte{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		if snap.Job, err = readJob(b); err != nil {
			return err
		}
		err = b.Bucket(bucketCfg).ForEach(func(k, v []byte) error {
			snap.Settings[string(k)] = string(v) // string() copies out of the mmap
			return nil
		})
		if err != nil {
			return err
		}
		return copyKV(b.Bucket([]byte(bucketEnv)), snap.Env)
	})
	return snap, err
}

// touch records now as the change time of keys, in the job bucket b of a
// write transaction, so the time is stored with the change it dates.
func touch(b *bolt.Bucket, keys ...string) error {
	now := time.Now()
	for _, k := range keys {
		if err := putTime(b, k, now); err != nil {
			return err
		}
	}
	return nil
}

// touchRuns dates a change of the job's list of runs.
func touchRuns(tx *bolt.Tx, jobID string) error {
	b, err := jobBucket(tx, jobID)
	if err != nil {
		return err
	}
	return touch(b, domain.TimeRuns)
}
