package jobs

// On a shared machine one user can queue runs without end (a loop of
// `echo '{}' > data`). Served in the order they came, each of those would
// hold back every other user's run; so a free slot goes to the queued run
// whose owner has the fewest runs executing, the first queued among them.
// One owner's runs keep their order, and with one owner nothing changes.

// fairestLocked picks the queued run the next free slot takes: its index
// in m.queue and its owner. m.mu is held; m.queue is not empty.
func (m *Manager) fairestLocked() (int, Owner) {
	best, bestOwner, bestRuns := 0, m.ownerOfLocked(m.queue[0].job), -1
	seen := map[Owner]bool{}
	for i, k := range m.queue {
		o := m.ownerOfLocked(k.job)
		if seen[o] {
			continue // its first queued run was weighed
		}
		seen[o] = true
		if n := m.runsOf[o]; bestRuns < 0 || n < bestRuns {
			best, bestOwner, bestRuns = i, o, n
			if n == 0 {
				break // none fewer
			}
		}
	}
	return best, bestOwner
}

// noteOwner remembers the owner of a job whose run is about to be queued
// (read outside m.mu: the trigger's config snapshot has it).
func (m *Manager) noteOwner(jobID string, o Owner) { m.owners.Store(jobID, o) }

// ownerOfLocked is the owner of job jobID: noted by its trigger, else read
// from the store once (a run queued by a restart, a retry or a workflow;
// a read of bbolt's memory-mapped file, kept from then on).
func (m *Manager) ownerOfLocked(jobID string) Owner {
	if o, ok := m.owners.Load(jobID); ok {
		return o.(Owner)
	}
	j, err := m.store.Job(jobID)
	if err != nil {
		return 0 // deleted meanwhile: its run ends at once
	}
	m.owners.Store(jobID, j.Owner)
	return j.Owner
}
