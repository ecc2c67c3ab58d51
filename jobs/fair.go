package jobs

// On a shared machine one user can queue runs without end (a loop of
// `echo '{}' > data`). Served in the order they came, each of those would
// hold back every other user's run; so a free slot goes to the queued run
// whose owner has the fewest runs executing, the first queued among them.
// One owner's runs keep their order, and with one owner nothing changes.

// fairestLocked picks the queued run the next free slot takes: its index
// in m.queue and its owner. m.mu is held; m.queue is not empty. The first
// queued run of an owner with no run executing ends the search: with one
// owner, the queue's first.
func (m *Manager) fairestLocked() (int, Owner) {
	best, bestOwner, bestRuns := -1, Owner(0), 0
	var weighed map[Owner]bool // owners whose first queued run was weighed
	for i, k := range m.queue {
		o := m.ownerOfLocked(k.job)
		if best >= 0 && (o == bestOwner || weighed[o]) {
			continue
		}
		n := m.runsOf[o]
		if best < 0 || n < bestRuns {
			best, bestOwner, bestRuns = i, o, n
		}
		if n == 0 {
			break // none fewer
		}
		if weighed == nil {
			weighed = map[Owner]bool{}
		}
		weighed[o] = true
	}
	return best, bestOwner
}

// noteOwner remembers the owner of a job whose run is about to be queued
// (read outside m.mu: the trigger's config snapshot has it).
func (m *Manager) noteOwner(jobID string, o Owner) { m.owners.Store(jobID, o) }

// learnOwner reads the owner of a job whose run is about to be queued
// otherwise (a restart, a retry, a workflow, another node), before the
// caller takes m.mu: the store is not read under it.
func (m *Manager) learnOwner(jobID string) {
	if _, ok := m.owners.Load(jobID); ok {
		return
	}
	if j, err := m.store.Job(jobID); err == nil {
		m.noteOwner(jobID, j.Owner)
	} // else deleted meanwhile: its run ends at once, whoever it counts for
}

// ownerOfLocked is the owner of job jobID, as noteOwner or learnOwner
// left it (0, root, for a job deleted before either could).
func (m *Manager) ownerOfLocked(jobID string) Owner {
	o, _ := m.owners.Load(jobID)
	owner, _ := o.(Owner)
	return owner
}
