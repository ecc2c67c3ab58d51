package jobs

import (
	bolt "go.etcd.io/bbolt"
)

// Small per-job key/value buckets (env, shares): jobs/<id>/<bucket>/<key>.

func (s *Store) putKV(jobID string, bucket []byte, key string, value []byte) error {
	_, err := s.storeKV(jobID, bucket, key, value, true)
	return err
}

// addKV stores key only where it is absent, and reports whether it did.
func (s *Store) addKV(jobID string, bucket []byte, key string, value []byte) (bool, error) {
	return s.storeKV(jobID, bucket, key, value, false)
}

func (s *Store) storeKV(jobID string, bucket []byte, key string, value []byte, replace bool) (bool, error) {
	stored := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		kv, err := b.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		added := kv.Get([]byte(key)) == nil
		if !replace && !added {
			return nil
		}
		stored = true
		if err := kv.Put([]byte(key), value); err != nil {
			return err
		}
		if added { // the folder gains an entry (mtimes.go)
			return touch(b, kvTimeKey(bucket, key), kvTimeKey(bucket, ""))
		}
		return touch(b, kvTimeKey(bucket, key))
	})
	return stored, err
}

// deleteKV removes key and reports whether it was there.
func (s *Store) deleteKV(jobID string, bucket []byte, key string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		kv := b.Bucket(bucket)
		if kv == nil || kv.Get([]byte(key)) == nil {
			return nil
		}
		found = true
		if err := kv.Delete([]byte(key)); err != nil {
			return err
		}
		return touch(b, kvTimeKey(bucket, "")) // the folder loses an entry
	})
	return found, err
}

// listKV returns a copy of the bucket's pairs.
func (s *Store) listKV(jobID string, bucket []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		kv := b.Bucket(bucket)
		if kv == nil {
			return nil
		}
		return kv.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}
