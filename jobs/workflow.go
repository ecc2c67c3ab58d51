package jobs

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxHookDepth bounds a chain of hooks: a run started by this many hooks
// in a row triggers none (logged), so hooks that trigger each other stop.
const MaxHookDepth = 5

// StatusDocument renders a run's status.json (set by package fs, which
// serves the file); a hook's payload is that document. Nil falls back to
// the run's record.
var StatusDocument func(j Job, r Run, now time.Time) ([]byte, error)

// hasWorkflow reports whether an ended run of the job may have follow-ups:
// the end then records Followup in the same commit.
func (m *Manager) hasWorkflow(jobID string) bool {
	return m.value(jobID, "config/retries") != "0" || m.value(jobID, "config/on_failure") != "" ||
		m.value(jobID, "config/on_success") != "" || len(m.downstreams(jobID)) > 0
}

// followUp makes what an ended run r leads to: its retry, or else its
// hook. Each is recorded in one commit with its mark on r, so it is made
// once even when a crash interrupts this (recoverFollowups makes the rest).
func (m *Manager) followUp(jobID string, r Run) {
	if !r.Followup {
		return
	}
	retry, ok, why := m.retryOf(jobID, r)
	switch {
	case ok:
		nr, made, err := m.store.FollowUp(RunID{JobID: jobID, ID: r.ID}, "retry", jobID, retry)
		if err != nil {
			m.event(jobID, "run %d: retry not recorded: %v", r.ID, err)
			return // still marked: the next start tries again
		}
		if made {
			m.startRetry(jobID, r, nr)
		}
	default:
		if why != "" {
			m.event(jobID, "run %d %s: not retried: %s (config/retries)", r.ID, r.Status, why)
		}
		m.fireHook(jobID, r)
	}
	m.fireAfter(jobID, r) // after.go
	if _, err := m.store.UpdateRun(jobID, r.ID, func(r *Run) { r.Followup = false }); err != nil {
		m.logger.Printf("job %s: run %d: clear its follow-up mark: %v", jobID, r.ID, err)
	}
}

// hookPath is the hook setting that applies to a run ending in status s.
func hookPath(s Status) string {
	switch s {
	case Completed:
		return "config/on_success"
	case Failed, Timeout:
		return "config/on_failure"
	}
	return "" // stopped: no hook
}

// fireHook triggers the job named by the hook setting for r's end, with
// r's status.json as payload.
func (m *Manager) fireHook(jobID string, r Run) {
	path := hookPath(r.Status)
	if path == "" || r.Error == errShutdown.Error() {
		return
	}
	v := m.value(jobID, path)
	if v == "" {
		return
	}
	hook := strings.TrimPrefix(path, "config/")
	if r.HookDepth >= MaxHookDepth {
		m.event(jobID, "run %d %s: %s %s not triggered: run %d ends a chain of %d hooks, the limit", r.ID, r.Status, hook, v, r.ID, MaxHookDepth)
		return
	}
	src, err := m.store.Job(jobID)
	if err != nil {
		return // deleted meanwhile
	}
	target, err := m.hookTarget(src, v)
	if err != nil {
		m.event(jobID, "run %d %s: %s not triggered: %v", r.ID, r.Status, hook, err)
		return
	}
	payload, err := m.statusPayload(src, r)
	if err != nil {
		m.event(jobID, "run %d %s: %s not triggered: status.json: %v", r.ID, r.Status, hook, err)
		return
	}
	if err := m.CheckStartable(target.ID); err != nil {
		m.event(jobID, "run %d %s: %s %s not triggered: %v", r.ID, r.Status, hook, v, err)
		return
	}
	by := fmt.Sprintf("%s of %s run %d", hook, hookName(src, target), r.ID)
	hr := Run{Status: Pending, Trigger: Hook, TriggeredBy: by, Queued: m.now().UTC(), HookDepth: r.HookDepth + 1}
	nr, made, err := m.store.FollowUp(RunID{JobID: jobID, ID: r.ID}, path, target.ID, hr)
	if err != nil {
		m.event(jobID, "run %d: %s not recorded: %v", r.ID, hook, err)
		return
	}
	if !made {
		return
	}
	m.event(jobID, "run %d %s: %s triggered run %d of %s", r.ID, r.Status, hook, nr.ID, hookName(target, src))
	m.enqueue(target.ID, nr, func() error { return m.writeInput(target.ID, nr.ID, payload) })
}

// hookName names job j as seen by the owner of job from: its name, or
// @owner/name for another owner's.
func hookName(j, from Job) string {
	if j.Owner == from.Owner {
		return j.Name
	}
	return "@" + userName(j.Owner) + "/" + j.Name
}

// statusPayload is run r's status.json.
func (m *Manager) statusPayload(j Job, r Run) ([]byte, error) {
	r.Followup, r.FollowedUp = false, nil
	if StatusDocument != nil {
		return StatusDocument(j, r, m.Now())
	}
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}

// hookTarget resolves a hook setting of job src: JOB (the owner's) or
// @user/JOB (another user's, shared with src's owner as runner). Which of
// the two is missing is not told: another user's job that is not shared
// leaves no trace.
func (m *Manager) hookTarget(src Job, v string) (Job, error) {
	t, found, err := m.resolveRef(src, v)
	if err != nil {
		return Job{}, err
	}
	if found && t.ID == src.ID {
		return Job{}, errorf(ErrInvalid, "%q is this job: a job cannot be its own hook", v)
	}
	if !found || m.RoleOf(t, callerOf(src.Owner)) < Runner {
		return Job{}, errorf(ErrInvalid, "%q: no such job of yours, nor one shared with you as runner", v)
	}
	return t, nil
}

// resolveRef finds the job that ref names for the owner of job src: JOB
// (theirs) or @user/JOB. err is a malformed ref; found is false for no
// such job. Roles are the caller's to check.
func (m *Manager) resolveRef(src Job, ref string) (j Job, found bool, err error) {
	owner, name := src.Owner, ref
	if rest, ok := strings.CutPrefix(ref, "@"); ok {
		u, n, ok := strings.Cut(rest, "/")
		if !ok {
			return Job{}, false, errorf(ErrInvalid, "%q: write JOB (yours) or @user/JOB (another user's, shared with you)", ref)
		}
		acct, err := user.Lookup(u)
		if err != nil {
			return Job{}, false, errorf(ErrInvalid, "%q: no user %s", ref, u)
		}
		uid, err := strconv.ParseUint(acct.Uid, 10, 32)
		if err != nil {
			return Job{}, false, errorf(ErrInvalid, "%q: user %s has uid %s", ref, u, acct.Uid)
		}
		owner, name = Owner(uid), n
	}
	if err := CheckJobName(name); err != nil {
		return Job{}, false, errorf(ErrInvalid, "%q: %v", ref, err)
	}
	j, err = m.store.JobByName(owner, name)
	return j, err == nil, nil
}

// callerOf is uid acting with its groups (for shares to +group).
func callerOf(uid Owner) Caller {
	c := Caller{UID: uid}
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return c // no groups known: only @user and public shares match
	}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			c.GIDs = append(c.GIDs, uint32(n))
		}
	}
	return c
}

// checkHook validates config/on_failure and config/on_success.
func checkHook(path string) func(*Manager, Job, string) error {
	return func(m *Manager, j Job, v string) error {
		if v == "" {
			return nil // the default (no hook): what a read gives, so tar and rsync write it back
		}
		if _, err := m.hookTarget(j, v); err != nil {
			return errorf(ErrInvalid, "%s: %v", path, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
		return nil
	}
}

// writeInput lays out a new run's folder with payload as its input.json
// (no staged files: those wait for the job's own next trigger).
func (m *Manager) writeInput(jobID string, id uint64, payload []byte) error {
	dir := m.RunDir(jobID, id)
	if err := m.makeRunDir(jobID, dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "input", "input.json"), payload, 0o644); err != nil {
		return fmt.Errorf("write input.json: %w", err)
	}
	return nil
}

// enqueue queues a run recorded PENDING outside trigger (a hook, a rerun):
// prepare lays out its folder first; a failure ends the run FAILED.
func (m *Manager) enqueue(jobID string, r Run, prepare func() error) {
	k := runKey{jobID, r.ID}
	done := make(chan struct{})
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return // stays PENDING in the store; the next start ends it
	}
	m.installLocked(k, &activeRun{done: done, bell: newBell(), readers: newReaderBudget(done, m.closing)}) // cluster_run.go
	m.perJob[jobID]++
	m.mu.Unlock()
	if err := prepare(); err != nil {
		m.finish(k, Run{Status: Failed, Error: err.Error()})
		return
	}
	m.event(jobID, "run %d queued (%s)", r.ID, r.Trigger)
	m.onQueued(jobID, r)
	m.learnOwner(jobID) // fair.go
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.active[k]; m.stopping || a == nil || a.stopped || a.cancel != nil {
		return // stopped meanwhile
	}
	m.queue = append(m.queue, k)
	m.dispatchLocked()
}

// recoverFollowups makes the follow-ups an earlier daemon recorded but
// did not finish making.
func (m *Manager) recoverFollowups() {
	refs, err := m.store.FollowupRuns()
	if err != nil {
		m.logger.Printf("recover workflow follow-ups: %v", err)
		return
	}
	for _, ref := range refs {
		m.followUp(ref.JobID, ref.Run)
	}
}
