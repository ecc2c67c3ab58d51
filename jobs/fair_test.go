package jobs

import "testing"

// A free slot goes to the first queued run of the owner with the fewest
// runs executing; one owner's runs keep their order.
func TestFairestOwnerFirst(t *testing.T) {
	m := newTestManager(t, Options{})
	m.noteOwner("alice-job", 1001)
	m.noteOwner("bob-job", 1002)
	m.noteOwner("carol-job", 1003)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queue = []runKey{{"alice-job", 5}, {"alice-job", 6}, {"bob-job", 1}, {"alice-job", 7}, {"carol-job", 2}, {"bob-job", 2}}
	for _, c := range []struct {
		runsOf map[Owner]int
		want   runKey
	}{
		{map[Owner]int{}, runKey{"alice-job", 5}},                          // nobody runs: the queue's order
		{map[Owner]int{1001: 2}, runKey{"bob-job", 1}},                     // alice runs two: bob's first
		{map[Owner]int{1001: 2, 1002: 1}, runKey{"carol-job", 2}},          // carol runs none
		{map[Owner]int{1001: 1, 1002: 1, 1003: 1}, runKey{"alice-job", 5}}, // even: the first queued
		{map[Owner]int{1001: 3, 1002: 2, 1003: 2}, runKey{"bob-job", 1}},   // a tie of two: the first queued of them
	} {
		m.runsOf = c.runsOf
		i, owner := m.fairestLocked()
		if got := m.queue[i]; got != c.want || owner != m.ownerOfLocked(got.job) {
			t.Errorf("with %v executing, the next is %v (owner %d), want %v", c.runsOf, got, owner, c.want)
		}
	}
	m.runsOf, m.queue = map[Owner]int{}, nil // Close would end the made-up runs
}
