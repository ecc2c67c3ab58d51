package jobs

import "time"

// listingStore is a Store that lists an owner's jobs cheaply (boltstore's
// listing: jobs by name and by creation, beside the records): the first
// stat of a mount of 100,000 jobs reads one key, and `ls MOUNT` their
// names and ids without decoding a record or building a Job for each.
type listingStore interface {
	NewestJob(owner Owner) (time.Time, error)
	JobNames(owner Owner) (names, ids []string, err error)
	WarmJobs(owner Owner)
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

// WarmJobs has the store read owner's jobs into memory in the background,
// where it keeps them (boltstore): call it once a listing was served.
func (m *Manager) WarmJobs(owner Owner) {
	if s, ok := m.store.(listingStore); ok {
		s.WarmJobs(owner)
	}
}
