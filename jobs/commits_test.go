package jobs

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/jobfs/jobfs/jobs/boltstore"
)

// countingStore counts the commits of each run (UpdateRun).
type countingStore struct {
	Store
	mu      sync.Mutex
	updates map[uint64]int
}

func (s *countingStore) UpdateRun(id string, n uint64, fn func(*Run)) (Run, error) {
	s.mu.Lock()
	s.updates[n]++
	s.mu.Unlock()
	return s.Store.UpdateRun(id, n, fn)
}

func (s *countingStore) count(n uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates[n]
}

// TestSingleStepCommits: a run of one step commits twice after its queued
// record: its start, and its end with its step's end in the same commit.
// The step's record is whole all the same.
func TestSingleStepCommits(t *testing.T) {
	dir := t.TempDir()
	b, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: b, updates: map[uint64]int{}}
	m := newTestManager(t, Options{StateDir: dir, Store: store})
	j := scriptJob(t, m, "commits", "#!/bin/sh\necho hi\nexit 3\n")
	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	if r.Status != Failed || codeString(r.ExitCode) != "3" {
		t.Fatalf("run = %s exit %s, want FAILED exit 3", r.Status, codeString(r.ExitCode))
	}
	if n := store.count(id); n != 2 {
		t.Errorf("run %d: %d commits after it was queued, want 2 (start; end with its step's end)", id, n)
	}
	if len(r.Steps) != 1 {
		t.Fatalf("steps = %+v, want one", r.Steps)
	}
	s := r.Steps[0]
	if s.Status != Failed || codeString(s.ExitCode) != "3" || s.EndedAt.IsZero() || s.StartedAt.IsZero() || s.EndedAt.After(r.EndedAt) {
		t.Errorf("step = %+v, want FAILED exit 3 with its start and end (run ended %s)", s, r.EndedAt)
	}
}
