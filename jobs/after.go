package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// After is the trigger of a run started by config/after.
const After Trigger = "after"

// MaxAfter bounds the jobs config/after may name.
const MaxAfter = 32

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
	var out []Job
	for _, id := range m.afters.list(m) {
		d, err := m.store.Job(id)
		if err != nil || id == uID {
			continue // deleted
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

// afterIndex is the set of jobs with config/after, so that a run's end
// looks at those only, not every job: read from the store once, then
// kept by every change of the setting.
type afterIndex struct {
	mu      sync.Mutex
	built   bool
	jobs    map[string]bool // job id -> has config/after
	touched map[string]bool // changed while the set was being read
}

// list returns the jobs with config/after, reading them once (outside
// the lock: a store scan).
func (x *afterIndex) list(m *Manager) []string {
	x.mu.Lock()
	built := x.built
	x.mu.Unlock()
	if !built {
		found := map[string]bool{}
		if all, err := m.store.AllJobs(); err == nil {
			for _, j := range all {
				if m.afterOf(j.ID) != "" {
					found[j.ID] = true
				}
			}
			x.mu.Lock()
			if !x.built {
				if x.jobs == nil {
					x.jobs = map[string]bool{}
				}
				for id := range found {
					if !x.touched[id] {
						x.jobs[id] = true
					}
				}
				x.built, x.touched = true, nil
			}
			x.mu.Unlock()
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]string, 0, len(x.jobs))
	for id, has := range x.jobs {
		if has {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// changed notes that job id's config/after was written or reset.
func (x *afterIndex) changed(m *Manager, id string) {
	has := m.afterOf(id) != ""
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.jobs == nil {
		x.jobs = map[string]bool{}
	}
	x.jobs[id] = has
	if !x.built {
		if x.touched == nil {
			x.touched = map[string]bool{}
		}
		x.touched[id] = true
	}
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
	res, err := m.store.AfterDone(RunID{JobID: u.ID, ID: r.ID}, "after:"+d.ID, d.ID, sortedKeys(names), func(runs map[string]uint64) (Run, bool) {
		nr.TriggeredBy = afterBy(names, runs)
		return nr, start
	})
	switch {
	case err != nil:
		m.event(d.ID, "after: %s run %d completed, not recorded: %v", hookName(u, d), r.ID, err)
		return
	case !res.Counted:
		return // counted before a restart
	case !res.Complete:
		m.event(d.ID, "after: %s run %d completed (%d of %d)", hookName(u, d), r.ID, res.Have, len(names))
		return
	case !start:
		m.event(d.ID, "after: %s completed; not started: config/enabled is false", strings.Join(refs, " "))
		return
	}
	m.event(d.ID, "after: %s completed: run %d", strings.Join(refs, " "), res.Run.ID)
	m.enqueue(d.ID, res.Run, func() error {
		if err := m.CheckStartable(d.ID); err != nil {
			return err
		}
		p, err := m.afterPayload(d, names, res.Runs)
		if err != nil {
			return err
		}
		return m.writeInput(d.ID, res.Run.ID, p)
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
