package domain

// Keys of a job's stored record that both the Manager and a Store name.

// Change times the tree shows as mtimes, kept beside the settings' ones in
// jobs/<id>/mtimes: a key is the path below the job folder, a folder's
// ends in a slash and changes when an entry is added or removed.
const (
	TimeRuns   = "runs/"       // a run was deleted (an added one has its Queued)
	TimeShares = "shared/"     // a share was added or revoked; shared/<name>: its role changed
	TimeEnv    = "config/env/" // a secret was added or removed; config/env/<name>: its value changed
)

// Key/value buckets of a job and the keys the Manager keeps beside its
// settings.
const (
	BucketEnv    = "env"    // jobs/<id>/env/<name> -> sealedEnv (JSON)
	BucketShares = "shares" // jobs/<id>/shares/<name> -> role
	// BucketAfter holds, per downstream job, the upstream runs that
	// completed toward its next run (config/after).
	BucketAfter = "after"
	KeyLastTick = "internal/last_tick" // the last schedule tick handled
	KeySchedule = "config/schedule"
)

// KVTimeKey is the tree path of key in a key/value bucket.
func KVTimeKey(bucket, key string) string {
	switch bucket {
	case BucketShares:
		return TimeShares + key
	case BucketEnv:
		return TimeEnv + key
	}
	return bucket + "/" + key
}
