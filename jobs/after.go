package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// After is the trigger of a run started by config/after.
const After Trigger = "after"

// MaxAfter bounds the jobs config/after may name.
const MaxAfter = 32

// bucketAfter holds, per downstream job, the upstream runs that completed
// since its last run started by after: jobs/<id>/after/<upstream id> ->
// run id.
var bucketAfter = []byte("after")

func checkAfter(m *Manager, j Job, v string) error {
	refs := strings.Fields(v)
	if len(refs) > MaxAfter {
		return errorf(ErrInvalid, "config/after: %d jobs; at most %d", len(refs), MaxAfter)
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		u, err := m.upstream(j, ref)
		if err != nil {
			return errorf(ErrInvalid, "config/after: %s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		if seen[u.ID] {
			return errorf(ErrInvalid, "config/after: %s is named twice", ref)
		}
		seen[u.ID] = true
	}
	if cycle := m.afterCycle(j, refs); cycle != nil {
		return errorf(ErrInvalid, "config/after: a cycle: %s", strings.Join(cycle, " after "))
	}
	return nil
}

// upstream resolves ref in config/after of job d: d's owner's job, or one
// shared with d's owner (viewer or runner), not d itself.
func (m *Manager) upstream(d Job, ref string) (Job, error) {
	u, found, err := m.resolveRef(d, ref)
	if err != nil {
		return Job{}, err
	}
	if found && u.ID == d.ID {
		return Job{}, errorf(ErrInvalid, "%q is this job: a job cannot run after itself", ref)
	}
	if !found || m.RoleOf(u, callerOf(d.Owner)) < Viewer {
		return Job{}, errorf(ErrInvalid, "%q: no such job of yours, nor one shared with you", ref)
	}
	return u, nil
}

// afterCycle returns the jobs of a cycle that refs, as d's config/after,
// would close (d after x after ... after d), or nil.
func (m *Manager) afterCycle(d Job, refs []string) []string {
	var path []string
	seen := map[string]bool{}
	var visit func(j Job, refs []string) bool
	visit = func(j Job, refs []string) bool {
		path = append(path, hookName(j, d))
		for _, ref := range refs {
			u, found, err := m.resolveRef(j, ref)
			if err != nil || !found {
				continue
			}
			if u.ID == d.ID {
				path = append(path, hookName(d, d))
				return true
			}
			if !seen[u.ID] {
				seen[u.ID] = true
				if visit(u, strings.Fields(m.afterOf(u.ID))) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if visit(d, refs) {
		return path
	}
	return nil
}

// afterOf is a job's config/after (read from the store, not through
// SettingFor: the setting's check calls this).
func (m *Manager) afterOf(jobID string) string {
	v, _, _ := m.store.Setting(jobID, "config/after") // unreadable: no upstreams
	return v
}

// downstreams lists the jobs whose config/after names job u.
func (m *Manager) downstreams(uID string) []Job {
	all, err := m.store.AllJobs()
	if err != nil {
		return nil
	}
	var out []Job
	for _, d := range all {
		if d.ID == uID {
			continue
		}
		for _, ref := range strings.Fields(m.afterOf(d.ID)) {
			if u, found, err := m.resolveRef(d, ref); err == nil && found && u.ID == uID {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// fireAfter counts a COMPLETED run r of job uID for every job that runs
// after it, and starts those whose upstreams have all completed.
func (m *Manager) fireAfter(uID string, r Run) {
	if r.Status != Completed {
		return
	}
	u, err := m.store.Job(uID)
	if err != nil {
		return
	}
	for _, d := range m.downstreams(uID) {
		m.afterCompleted(u, r, d)
	}
}

// afterCompleted records run r of u for downstream d in one commit with
// its mark on r, and, when the set is whole, d's new run in that commit
// too: neither lost nor doubled by a crash.
func (m *Manager) afterCompleted(u Job, r Run, d Job) {
	refs := strings.Fields(m.afterOf(d.ID))
	names := map[string]string{} // upstream id -> ref as written
	for _, ref := range refs {
		if j, err := m.upstream(d, ref); err == nil {
			names[j.ID] = ref
		}
	}
	if _, ok := names[u.ID]; !ok {
		m.event(d.ID, "after: %s run %d completed, but %s is no longer shared with you: not counted", hookName(u, d), r.ID, hookName(u, d))
		return
	}
	start := m.value(d.ID, "config/enabled") != "false"
	nr := Run{Status: Pending, Trigger: After, Queued: m.now().UTC(), HookDepth: r.HookDepth}
	res, err := m.store.afterDone(u.ID, r.ID, "after:"+d.ID, d.ID, names, nr, start)
	switch {
	case err != nil:
		m.event(d.ID, "after: %s run %d completed, not recorded: %v", hookName(u, d), r.ID, err)
		return
	case !res.counted:
		return // counted before a restart
	case !res.complete:
		m.event(d.ID, "after: %s run %d completed (%d of %d)", hookName(u, d), r.ID, res.have, len(names))
		return
	case !start:
		m.event(d.ID, "after: %s completed; not started: config/enabled is false", strings.Join(refs, " "))
		return
	}
	m.event(d.ID, "after: %s completed: run %d", strings.Join(refs, " "), res.run.ID)
	m.enqueue(d.ID, res.run, func() error {
		if err := m.CheckStartable(d.ID); err != nil {
			return err
		}
		p, err := m.afterPayload(d, names, res.runs)
		if err != nil {
			return err
		}
		return m.writeInput(d.ID, res.run.ID, p)
	})
}

// afterPayload is {"after": {"<ref>": <status.json of its run>, ...}}.
func (m *Manager) afterPayload(d Job, names map[string]string, runs map[string]uint64) ([]byte, error) {
	doc := map[string]json.RawMessage{}
	for id, ref := range names {
		j, err := m.store.Job(id)
		if err != nil {
			return nil, fmt.Errorf("after: %s: %w", ref, err)
		}
		r, err := m.store.Run(id, runs[id])
		if err != nil {
			return nil, fmt.Errorf("after: %s run %d: %w", ref, runs[id], err)
		}
		b, err := m.statusPayload(j, r)
		if err != nil {
			return nil, err
		}
		doc[ref] = b
	}
	b, err := json.MarshalIndent(map[string]any{"after": doc}, "", "  ")
	return append(b, '\n'), err
}

// afterResult is what afterDone did.
type afterResult struct {
	counted  bool              // r was counted now (not before)
	complete bool              // every upstream has completed
	have     int               // how many have
	runs     map[string]uint64 // when complete: upstream id -> run id
	run      Run               // when complete and started: the new run
}

// afterBy is a run's triggered_by: "after fetch run 3, clean run 5", in
// the order the refs sort.
func afterBy(names map[string]string, runs map[string]uint64) string {
	var parts []string
	for id, ref := range names {
		parts = append(parts, ref+" run "+itoa(runs[id]))
	}
	slices.Sort(parts)
	return "after " + strings.Join(parts, ", ")
}
