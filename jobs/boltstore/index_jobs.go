package boltstore

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// jobList keeps each owner's jobs, sorted by name, in memory once listed
// (issue 20): `ls MOUNT` and each lookup of MOUNT/<job> read no record
// then (a listing of 100,000 jobs decoded 100,000 records). Every change of
// a job's name or existence (CreateJob, RenameJob, DeleteJob: the only
// writers of names/ and meta) drops it after its commit, and a list read
// while a change committed is not kept (gen), so it never shows a stale
// list.
type jobList struct {
	mu      sync.Mutex
	gen     uint64
	byOwner map[Owner][]Job
	// newest is the latest creation in each kept list, found once when
	// the list is kept: the top folder's mtime, asked at every opendir.
	newest map[Owner]time.Time
	// byID finds a job of a kept list by id; made at the first such
	// lookup, not with the list (100,000 inserts that a listing does not
	// need).
	byID map[string]jobAt
	// sizes is the length of each owner's last list, kept across changes:
	// the next read allocates once.
	sizes map[Owner]int
	// warming: owners whose list is being read in the background (warm).
	warming map[Owner]bool
}

// jobAt is where a job is in the kept lists.
type jobAt struct {
	owner Owner
	i     int
}

// generation is read before a list is read from the store.
func (l *jobList) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// get returns owner's kept list (shared: callers copy before changing it).
func (l *jobList) get(owner Owner) ([]Job, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	list, ok := l.byOwner[owner]
	return list, ok
}

// newestOf returns the latest creation in owner's kept list.
func (l *jobList) newestOf(owner Owner) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.newest[owner]
	return t, ok
}

// put keeps list unless a change committed since gen was read.
func (l *jobList) put(owner Owner, gen uint64, list []Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sizes == nil {
		l.sizes = map[Owner]int{}
	}
	l.sizes[owner] = len(list)
	if l.gen != gen {
		return
	}
	if l.byOwner == nil {
		l.byOwner = map[Owner][]Job{}
	}
	l.byOwner[owner] = list
	if l.newest == nil {
		l.newest = map[Owner]time.Time{}
	}
	l.newest[owner] = newestOf(list)
	l.byID = nil // made again, with this list, when asked
}

// startWarm reports whether owner's list is to be warmed now: not kept,
// and no warm of it under way.
func (l *jobList) startWarm(owner Owner) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, kept := l.byOwner[owner]; kept || l.warming[owner] {
		return false
	}
	if l.warming == nil {
		l.warming = map[Owner]bool{}
	}
	l.warming[owner] = true
	return true
}

func (l *jobList) endWarm(owner Owner) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.warming, owner)
}

// warm reads owner's list (and its index by id) in the background: after
// JobNames served a listing without it, the stats and lookups that follow
// (ls -l, a shell's completion) find their jobs in memory, not on pages of
// the store file not touched since the daemon started (a page fault each).
func (s *Store) warm(owner Owner) {
	if !s.jobs.startWarm(owner) {
		return
	}
	go func() {
		defer s.jobs.endWarm(owner)
		if _, err := s.jobsOf(owner); err == nil { // an error: the next Jobs reports it
			s.jobs.job("") // makes the index by id
		}
	}()
}

// sized notes the length of a list of owner's jobs read.
func (l *jobList) sized(owner Owner, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sizes == nil {
		l.sizes = map[Owner]int{}
	}
	l.sizes[owner] = n
}

// size is the length of owner's last list read (0: none yet).
func (l *jobList) size(owner Owner) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sizes[owner]
}

// job returns job id when a kept list holds it.
func (l *jobList) job(id string) (Job, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byOwner) == 0 {
		return Job{}, false
	}
	if l.byID == nil {
		n := 0
		for _, list := range l.byOwner {
			n += len(list)
		}
		l.byID = make(map[string]jobAt, n)
		for o, list := range l.byOwner {
			for i, j := range list {
				l.byID[j.ID] = jobAt{o, i}
			}
		}
	}
	at, ok := l.byID[id]
	if !ok {
		return Job{}, false
	}
	return l.byOwner[at.owner][at.i], true
}

// changed drops every kept list: called after a commit that changed jobs.
func (l *jobList) changed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.byOwner, l.byID, l.newest = nil, nil, nil
}

// jobsOf returns owner's jobs sorted by name, from memory when kept; the
// caller gets its own copy.
func (s *Store) jobsOf(owner Owner) ([]Job, error) {
	if list, ok := s.jobs.get(owner); ok {
		return slices.Clone(list), nil
	}
	gen := s.jobs.generation()
	list, err := s.readJobs(owner, s.jobs.size(owner))
	if err != nil {
		return nil, err
	}
	s.jobs.put(owner, gen, slices.Clip(list))
	return slices.Clone(list), nil
}

// keptJob finds owner's job name in the kept list; ok is false when the
// list is not kept (the store is asked then).
func (s *Store) keptJob(owner Owner, name string) (j Job, found, ok bool) {
	list, ok := s.jobs.get(owner)
	if !ok {
		return Job{}, false, false
	}
	i, found := slices.BinarySearchFunc(list, name, func(j Job, n string) int { return strings.Compare(j.Name, n) })
	if !found {
		return Job{}, false, true
	}
	return list[i], true, true
}
