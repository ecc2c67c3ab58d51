package jobs

import "time"

// listingStore is a Store that lists an owner's jobs cheaply (boltstore's
// listing: jobs by name and by creation, beside the records): the first
// stat of a mount of 100,000 jobs reads one key, and `ls MOUNT` their
// names and ids without decoding a record or building a Job for each.
type listingStore interface {
	NewestJob(owner Owner) (time.Time, error)
	JobNames(owner Owner) (names, ids []string, err error)
}

// NewestJob is when owner's newest job was created; zero without jobs.
func (m *Manager) NewestJob(owner Owner) (time.Time, error) {
	if s, ok := m.store.(listingStore); ok {
		return s.NewestJob(owner)
	}
	list, err := m.store.Jobs(owner)
	var t time.Time
	for _, j := range list {
		t = Latest(t, j.Created)
	}
	return t, err
}

// JobNames lists owner's jobs as Jobs does, sorted by name, but only their
// names and ids (ids[i] is names[i]'s): what a listing of the top folder
// needs.
func (m *Manager) JobNames(owner Owner) (names, ids []string, err error) {
	if s, ok := m.store.(listingStore); ok {
		return s.JobNames(owner)
	}
	list, err := m.store.Jobs(owner)
	names, ids = make([]string, len(list)), make([]string, len(list))
	for i, j := range list {
		names[i], ids[i] = j.Name, j.ID
	}
	return names, ids, err
}
