package jobs

import (
	"slices"
	"time"
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

// runFields are the settings a run reads: the signed ones, the signatures,
// config/network (not signed: none only takes away), config/backend and
// config/slurm (where the steps run).
var runFields = append(slices.Clone(SignedFields), "config/signatures", "config/network", "config/backend", "config/slurm")

// snapshot reads a job's run config in one store transaction.
func (m *Manager) snapshot(jobID string) (runConfig, error) {
	c := runConfig{values: map[string]string{}}
	snap, err := m.store.Snapshot(jobID)
	if err != nil {
		return c, err
	}
	c.job = snap.Job
	for _, f := range runFields {
		st, _ := SettingFor(f)
		c.values[f] = st.Default
		if v, ok := snap.Settings[f]; ok {
			c.values[f] = v
		}
	}
	c.envs, err = decodeEnvs(snap.Env)
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
