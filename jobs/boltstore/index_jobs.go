package boltstore

import (
	"slices"
	"strings"
	"sync"
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
	byID    map[string]Job // the jobs of every kept list
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

// put keeps list unless a change committed since gen was read.
func (l *jobList) put(owner Owner, gen uint64, list []Job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		return
	}
	if l.byOwner == nil {
		l.byOwner, l.byID = map[Owner][]Job{}, map[string]Job{}
	}
	l.byOwner[owner] = list
	for _, j := range list {
		l.byID[j.ID] = j
	}
}

// job returns job id when a kept list holds it.
func (l *jobList) job(id string) (Job, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j, ok := l.byID[id]
	return j, ok
}

// changed drops every kept list: called after a commit that changed jobs.
func (l *jobList) changed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.byOwner, l.byID = nil, nil
}

// jobsOf returns owner's jobs sorted by name, from memory when kept; the
// caller gets its own copy.
func (s *Store) jobsOf(owner Owner) ([]Job, error) {
	if list, ok := s.jobs.get(owner); ok {
		return slices.Clone(list), nil
	}
	gen := s.jobs.generation()
	list, err := s.readJobs(owner)
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
