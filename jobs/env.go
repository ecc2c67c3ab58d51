package jobs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// MaxEnvValue bounds one env value.
const MaxEnvValue = 64 << 10

var bucketEnv = []byte("env") // jobs/<id>/env/<name> -> sealedEnv (JSON)

// sealedEnv is one stored env value: sealed for the runtime type the job
// had when it was set, so a type change can name what to set again.
type sealedEnv struct {
	Runtime string `json:"runtime"`
	Sealed  []byte `json:"sealed"`
}

// Sealer encrypts env values (crypt.Sealer).
type Sealer interface {
	Seal(jobID, runtime, name string, plaintext []byte) ([]byte, error)
	Open(jobID, runtime, name string, sealed []byte) ([]byte, error)
}

func (s *Store) putEnv(jobID, name string, e sealedEnv) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		env, err := b.CreateBucketIfNotExists(bucketEnv)
		if err != nil {
			return err
		}
		added := env.Get([]byte(name)) == nil
		if err := putJSON(env, []byte(name), e); err != nil {
			return err
		}
		if added { // config/env/ gains an entry (mtimes.go)
			return touch(b, TimeEnv+name, TimeEnv)
		}
		return touch(b, TimeEnv+name)
	})
}

func (s *Store) deleteEnv(jobID, name string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		env := b.Bucket(bucketEnv)
		if env == nil || env.Get([]byte(name)) == nil {
			return nil
		}
		found = true
		if err := env.Delete([]byte(name)); err != nil {
			return err
		}
		return touch(b, TimeEnv) // config/env/ loses an entry
	})
	return found, err
}

func (s *Store) envs(jobID string) (map[string]sealedEnv, error) {
	out := map[string]sealedEnv{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := jobBucket(tx, jobID)
		if err != nil {
			return err
		}
		env := b.Bucket(bucketEnv)
		if env == nil {
			return nil
		}
		return env.ForEach(func(k, v []byte) error {
			var e sealedEnv
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out[string(k)] = e
			return nil
		})
	})
	return out, err
}

// SetEnv seals and stores a secret. One trailing newline is dropped (echo
// adds it). The value is never logged.
func (m *Manager) SetEnv(jobID, name string, value []byte) error {
	what := "config/env/" + name
	if err := CheckEnvName(name); err != nil {
		return m.reject(jobID, what, err)
	}
	value = []byte(strings.TrimSuffix(string(value), "\n"))
	if len(value) > MaxEnvValue {
		return m.reject(jobID, what, errorf(ErrTooLarge, "%s: %d bytes exceeds the %d byte limit", what, len(value), MaxEnvValue))
	}
	if m.sealer == nil {
		return errorf(ErrPermission, "%s: secrets are not available (no master key)", what)
	}
	runtime := m.value(jobID, "config/type")
	sealed, err := m.sealer.Seal(jobID, runtime, name, value)
	if err != nil {
		return fmt.Errorf("seal %s: %w", what, err)
	}
	if err := m.store.putEnv(jobID, name, sealedEnv{Runtime: runtime, Sealed: sealed}); err != nil {
		return fmt.Errorf("store %s: %w", what, err)
	}
	m.event(jobID, "%s set (%d bytes, encrypted)", what, len(value))
	return nil
}

// CheckEnvValue reports whether a value being written could be stored.
func (m *Manager) CheckEnvValue(jobID, name string, size int) error {
	what := "config/env/" + name
	if size > MaxEnvValue+1 {
		return m.reject(jobID, what, errorf(ErrTooLarge, "%s: %d bytes exceeds the %d byte limit", what, size, MaxEnvValue))
	}
	return nil
}

// DeleteEnv removes a secret.
func (m *Manager) DeleteEnv(jobID, name string) error {
	if m.Busy(jobID) {
		return m.reject(jobID, "config/env/"+name, errorf(ErrBusy, "config/env/%s: cannot delete while a run is active", name))
	}
	found, err := m.store.deleteEnv(jobID, name)
	if err != nil {
		return err
	}
	if !found {
		return errorf(ErrNotFound, "config/env/%s: not set", name)
	}
	m.event(jobID, "config/env/%s deleted", name)
	return nil
}

// EnvNames lists the names of a job's secrets, sorted.
func (m *Manager) EnvNames(jobID string) ([]string, error) {
	envs, err := m.store.envs(jobID)
	if err != nil {
		return nil, err
	}
	return sortedKeys(envs), nil
}

// HasEnv reports whether the job has a secret called name.
func (m *Manager) HasEnv(jobID, name string) bool {
	envs, _ := m.store.envs(jobID)
	_, ok := envs[name]
	return ok
}

// openEnv opens a run's secrets (envs, of its config snapshot, for its
// runtime type): the environment lines (each name in lower and upper case)
// and the values to mask in its logs. Secrets sealed for another runtime
// type fail the run with novem's message.
func (m *Manager) openEnv(jobID, runtime string, envs map[string]sealedEnv) (env []string, secrets [][]byte, err error) {
	var stale []string
	for _, name := range sortedKeys(envs) {
		e := envs[name]
		if e.Runtime != runtime {
			stale = append(stale, name)
			continue
		}
		if m.sealer == nil {
			return nil, nil, fmt.Errorf("config/env/%s: secrets are not available (no master key)", name)
		}
		v, err := m.sealer.Open(jobID, runtime, name, e.Sealed)
		if err != nil {
			return nil, nil, fmt.Errorf("config/env/%s cannot be decrypted (was the master key replaced?): set it again", name)
		}
		env = append(env, name+"="+string(v), strings.ToUpper(name)+"="+string(v))
		secrets = append(secrets, v)
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		was := envs[stale[0]].Runtime
		return nil, nil, fmt.Errorf("config/env was set for runtime %s; set again: %s", was, strings.Join(stale, ", "))
	}
	return env, secrets, nil
}
