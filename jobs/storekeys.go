package jobs

// KVTimeKey is the key Times records for key of a key/value bucket (for
// the bucket's folder when key is empty): a Store kept outside this
// package writes the same keys in PutKV and DeleteKV as BoltStore does.
func KVTimeKey(bucket, key string) string { return kvTimeKey(bucket, key) }
