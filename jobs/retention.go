package jobs

import (
	"fmt"
	"strconv"
)

// pruneLocked deletes the oldest finished runs of a job beyond config/keep,
// with their files. Active runs are never touched. m.mu is held, so no run
// of the job can start or be deleted meanwhile.
func (m *Manager) pruneLocked(jobID string) {
	keep, err := strconv.Atoi(m.value(jobID, "config/keep"))
	if err != nil || keep < 1 {
		keep = 100
	}
	ids, err := m.store.RunIDs(jobID)
	if err != nil || len(ids) <= keep {
		return
	}
	var finished []uint64
	for _, id := range ids {
		if m.active[runKey{jobID, id}] == nil {
			finished = append(finished, id)
		}
	}
	for _, id := range finished[:max(len(finished)-keep, 0)] {
		if err := m.store.DeleteRun(jobID, id); err != nil {
			m.slog.Warn(fmt.Sprintf("prune the run: %v", err), m.runAttrs(jobID, id)...)
			continue
		}
		m.removeRunDir(jobID, id)
		m.event(jobID, "run %d pruned (config/keep %d)", id, keep)
	}
}
