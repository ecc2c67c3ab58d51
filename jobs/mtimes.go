package jobs

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// Change times the tree shows as mtimes, kept beside the settings' ones in
// jobs/<id>/mtimes: a key is the path below the job folder, a folder's
// ends in a slash and changes when an entry is added or removed.
const (
	TimeRuns   = "runs/"       // a run was deleted (an added one has its Queued)
	TimeShares = "shared/"     // a share was added or revoked; shared/<name>: its role changed
	TimeEnv    = "config/env/" // a secret was added or removed; config/env/<name>: its value changed
)

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
	return touch(b, TimeRuns)
}

// kvTimeKey is the tree path of key in a key/value bucket (kv.go).
func kvTimeKey(bucket, key string) string {
	switch bucket {
	case bucketShares:
		return TimeShares + key
	case bucketEnv:
		return TimeEnv + key
	}
	return bucket + "/" + key
}

// Times returns when each recorded key of a job last changed (see
// TimeRuns), read in one transaction: a folder's mtime is the newest of
// its entries' keys.
func (m *Manager) Times(jobID string) map[string]time.Time {
	// A job deleted meanwhile has no times: the zero times read as its
	// creation, which the caller falls back to.
	out, err := m.store.Times(jobID)
	if err != nil {
		return map[string]time.Time{}
	}
	return out
}

// storeTime is when key last changed, or the zero time if never (or the
// job cannot be read).
func (m *Manager) storeTime(jobID, key string) time.Time {
	return m.Times(jobID)[key]
}

// RunsChanged is when a run was last added to or removed from the job
// (its creation when never).
func (m *Manager) RunsChanged(jobID string) time.Time {
	j, err := m.store.Job(jobID)
	if err != nil {
		return time.Time{}
	}
	t := Latest(j.Created, m.storeTime(jobID, TimeRuns))
	if id, err := m.store.LatestRun(jobID); err == nil && id > 0 {
		if r, err := m.store.Run(jobID, id); err == nil {
			t = Latest(t, r.Queued)
		}
	}
	return t
}

// NextRunChanged is when the job's next_run last changed: its schedule or
// enabled was set, or a tick fired (then the next one is shown).
func (m *Manager) NextRunChanged(jobID string) time.Time {
	t := Latest(m.SettingTime(jobID, "config/schedule"), m.SettingTime(jobID, "config/enabled"))
	return Latest(t, m.storeTime(jobID, keyLastTick))
}

// Latest returns the newest of ts (zero when all are).
func Latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
