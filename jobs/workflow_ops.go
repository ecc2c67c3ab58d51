package jobs

import (
	"slices"
	"strconv"
	"strings"
)

// Rerun is the trigger of a run started by MOUNT/JOB/rerun.
const Rerun Trigger = "rerun"

// StopAll stops every active and queued run of a job (MOUNT/JOB/ctl),
// queued ones first so that none starts in a slot a stopped one frees,
// and drops a scheduled tick waiting for them (overlap queue). It returns
// how many runs it stopped; none is not an error.
func (m *Manager) StopAll(jobID string, kill bool) int {
	m.mu.Lock()
	var queued, running []uint64
	for k, a := range m.active {
		switch {
		case k.job != jobID:
		case a.cancel == nil:
			queued = append(queued, k.id)
		default:
			running = append(running, k.id)
		}
	}
	dropped := m.waiting[jobID]
	delete(m.waiting, jobID)
	m.mu.Unlock()
	slices.Sort(queued)
	slices.Sort(running)
	verb := map[bool]string{false: "stop", true: "kill"}[kill]
	m.event(jobID, "ctl: %s of every run: %d queued, %d running%s", verb, len(queued), len(running),
		map[bool]string{false: "", true: ", and the queued tick dropped"}[dropped])
	n := 0
	for _, id := range append(queued, running...) {
		if m.StopRun(jobID, id, kill) == nil {
			n++
		} // else it ended meanwhile: Stop logged it
	}
	return n
}

// RerunAs starts a new run of job jobID with the payload and input files
// of its run from (MOUNT/JOB/rerun), started by uid.
func (m *Manager) RerunAs(jobID string, from uint64, uid uint32) (uint64, error) {
	src, err := m.store.Run(jobID, from)
	if err != nil {
		return 0, m.Refuse(jobID, "rerun", "no run "+strconv.FormatUint(from, 10)+" to run again")
	}
	m.mu.Lock()
	stopping := m.stopping
	m.mu.Unlock()
	if stopping {
		return 0, errorf(ErrStopped, "jobfs is stopping: run not started")
	}
	if err := m.CheckStartable(jobID); err != nil {
		return 0, err
	}
	nr, err := m.store.CreateRun(jobID, Run{Status: Pending, Trigger: Rerun, TriggeredBy: UserName(uid),
		Queued: m.now().UTC(), HookDepth: src.HookDepth})
	if err != nil {
		return 0, err
	}
	m.event(jobID, "run %d: rerun of run %d", nr.ID, from)
	m.enqueue(jobID, nr, func() error { return m.copyRunInput(jobID, from, nr.ID) })
	return nr.ID, nil
}

// ParseRerun reads what is written to MOUNT/JOB/rerun: a run id.
func ParseRerun(s string) (uint64, bool) {
	id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	return id, err == nil && id > 0
}
