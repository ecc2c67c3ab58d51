package jobs

import (
	"github.com/jobfs/jobfs/jobs/boltstore"
	"github.com/jobfs/jobfs/jobs/domain"
)

// The embedded store is a Store.
var _ Store = (*boltstore.Store)(nil)

// KVTimeKey is the key Times records for key of a key/value bucket (for
// the bucket's folder when key is empty): a Store kept outside this
// package writes the same keys in PutKV and DeleteKV as the embedded one.
func KVTimeKey(bucket, key string) string { return domain.KVTimeKey(bucket, key) }
