package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// runConfig is one read of everything a run executes that a signature
// covers, and the signatures themselves. A run is checked and executed from
// this copy only: a setting written between the check and the start cannot
// slip an unsigned program past --trusted-keys.
type runConfig struct {
	job    Job
	values map[string]string    // runFields, defaults filled in
	envs   map[string]sealedEnv // the sealed secrets, by name
}

// runFields are the settings a run reads: the signed ones, the signatures
// and config/network (not signed: none only takes away).
var runFields = append(slices.Clone(SignedFields), "config/signatures", "config/network")

// snapshot reads a job's run config in one store transaction.
func (m *Manager) snapshot(jobID string) (runConfig, error) {
	return m.store.runConfig(jobID)
}

func (s *Store) runConfig(jobID string) (runConfig, error) {
	c := runConfig{values: map[string]string{}, envs: map[string]sealedEnv{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		if c.job, err = readJob(b); err != nil {
			return err
		}
		cfg := b.Bucket(bucketCfg)
		for _, f := range runFields {
			st, _ := SettingFor(f)
			c.values[f] = st.Default
			if raw := cfg.Get([]byte(f)); raw != nil {
				c.values[f] = string(raw) // string() copies out of the mmap
			}
		}
		env := b.Bucket(bucketEnv)
		if env == nil {
			return nil
		}
		return env.ForEach(func(k, v []byte) error {
			var e sealedEnv
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode config/env/%s: %w", k, err)
			}
			c.envs[string(k)] = e
			return nil
		})
	})
	return c, err
}

// canonical is the canonical form (what a signature signs) of the snapshot.
func (c runConfig) canonical() []byte {
	return CanonicalForm(c.values, sortedKeys(c.envs))
}

// timeout is config/timeout; an unreadable stored value (validated when it
// was written, so only from an older version) falls back to the default.
func (c runConfig) timeout() time.Duration {
	d, err := ParseTimeout(c.values["config/timeout"])
	if err != nil {
		return time.Hour
	}
	return d
}
