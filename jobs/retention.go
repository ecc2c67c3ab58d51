package jobs

import (
	"errors"
	"fmt"
	"strconv"
)

// prune deletes the oldest finished runs of a job beyond config/keep, with
// their files. Active runs are never touched. m.mu is not held: the runs
// are chosen under it (pruneChoice), then deleted from the store and disk
// outside it.
func (m *Manager) prune(jobID string) {
	keep, err := strconv.Atoi(m.value(jobID, "config/keep"))
	if err != nil || keep < 1 {
		keep = 100
	}
	// Run ids are dense from 1 and never reused: a job whose newest id is
	// within keep has no more runs than keep, and is not listed (a listing
	// per run's end cost a quarter of the daemon's CPU at 60,000 runs kept).
	if latest, err := m.store.LatestRun(jobID); err != nil || latest <= uint64(keep) {
		return
	}
	ids, err := m.store.RunIDs(jobID)
	if err != nil || len(ids) <= keep {
		return
	}
	for _, id := range m.pruneChoice(jobID, ids, keep) {
		if err := m.store.DeleteRun(jobID, id); err != nil {
			if !errors.Is(err, ErrNotFound) { // else deleted meanwhile (rm, another prune, the job)
				m.slog.Warn(fmt.Sprintf("prune the run: %v", err), m.runAttrs(jobID, id)...)
			}
			continue
		}
		m.removeRunDir(jobID, id)
		m.event(jobID, "run %d pruned (config/keep %d)", id, keep)
	}
}

// pruneChoice picks the finished runs among ids beyond the newest keep. It
// picks none while a run of the job is being committed: that run may be in
// ids but not yet in m.active, and it prunes again when it ends.
func (m *Manager) pruneChoice(jobID string, ids []uint64, keep int) []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.committing[jobID] > 0 {
		return nil
	}
	var finished []uint64
	for _, id := range ids {
		if m.active[runKey{jobID, id}] == nil {
			finished = append(finished, id)
		}
	}
	return finished[:max(len(finished)-keep, 0)]
}
