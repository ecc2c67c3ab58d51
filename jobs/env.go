package jobs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/jobfs/jobfs/jobs/domain"
)

// MaxEnvValue bounds one env value.
const MaxEnvValue = 64 << 10

const bucketEnv = domain.BucketEnv

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

// putEnv stores a sealed value at jobs/<id>/env/<name>.
func (m *Manager) putEnv(jobID, name string, e sealedEnv) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = m.store.PutKV(jobID, bucketEnv, name, b, true)
	return err
}

// envs reads a job's sealed values.
func (m *Manager) envs(jobID string) (map[string]sealedEnv, error) {
	kv, err := m.store.ListKV(jobID, bucketEnv)
	if err != nil {
		return nil, err
	}
	return decodeEnvs(kv)
}

// decodeEnvs decodes the env bucket's values.
func decodeEnvs(kv map[string][]byte) (map[string]sealedEnv, error) {
	out := make(map[string]sealedEnv, len(kv))
	for k, v := range kv {
		var e sealedEnv
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode config/env/%s: %w", k, err)
		}
		out[k] = e
	}
	return out, nil
}

// setEnv seals and stores a secret. One trailing newline is dropped (echo
// adds it). The value is never logged.
func (m *Manager) setEnv(jobID, name string, value []byte) error {
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
	if err := m.putEnv(jobID, name, sealedEnv{Runtime: runtime, Sealed: sealed}); err != nil {
		return fmt.Errorf("store %s: %w", what, err)
	}
	m.event(jobID, "%s set (%d bytes, encrypted)", what, len(value))
	return nil
}

// checkEnvValue reports whether a value being written could be stored.
func (m *Manager) checkEnvValue(jobID, name string, size int) error {
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
	found, err := m.store.DeleteKV(jobID, bucketEnv, name)
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
	envs, err := m.envs(jobID)
	if err != nil {
		return nil, err
	}
	return sortedKeys(envs), nil
}

// HasEnv reports whether the job has a secret called name.
func (m *Manager) HasEnv(jobID, name string) bool {
	envs, _ := m.envs(jobID)
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
