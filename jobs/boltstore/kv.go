package boltstore

import (
	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Small per-job key/value buckets (env, shares): jobs/<id>/<bucket>/<key>.

// PutKV stores key, replacing a stored value only when replace is set,
// and reports whether it stored.
func (s *Store) PutKV(jobID, bucket, key string, value []byte, replace bool) (bool, error) {
	stored := false
	err := s.update(func(tx *bolt.Tx, more *[]Change) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		kv, err := b.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		added := kv.Get([]byte(key)) == nil
		if !replace && !added {
			return nil
		}
		stored = true
		*more = append(*more, Change{Job: jobID, Key: bucket + "/" + key})
		if err := kv.Put([]byte(key), value); err != nil {
			return err
		}
		if added { // the folder gains an entry (mtimes.go)
			return touch(b, domain.KVTimeKey(bucket, key), domain.KVTimeKey(bucket, ""))
		}
		return touch(b, domain.KVTimeKey(bucket, key))
	})
	return stored, err
}

// DeleteKV removes key and reports whether it was there.
func (s *Store) DeleteKV(jobID, bucket, key string) (bool, error) {
	found := false
	err := s.update(func(tx *bolt.Tx, more *[]Change) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		kv := b.Bucket([]byte(bucket))
		if kv == nil || kv.Get([]byte(key)) == nil {
			return nil
		}
		found = true
		*more = append(*more, Change{Job: jobID, Key: bucket + "/" + key, Deleted: true})
		if err := kv.Delete([]byte(key)); err != nil {
			return err
		}
		return touch(b, domain.KVTimeKey(bucket, "")) // the folder loses an entry
	})
	return found, err
}

// ListKV returns a copy of the bucket's pairs.
func (s *Store) ListKV(jobID, bucket string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		return copyKV(b.Bucket([]byte(bucket)), out)
	})
	return out, err
}

// copyKV copies the pairs of kv (nil: none) into out, out of the mmap.
func copyKV(kv *bolt.Bucket, out map[string][]byte) error {
	if kv == nil {
		return nil
	}
	return kv.ForEach(func(k, v []byte) error {
		out[string(k)] = append([]byte(nil), v...)
		return nil
	})
}
