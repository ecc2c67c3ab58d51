package jobs

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// TestSingleStepCommits: a run of one step under a shim that ends within
// startCommitDelay commits once after its queued record: its end, with its
// start and its step's start and end in the same commit. The records are
// whole all the same.
func TestSingleStepCommits(t *testing.T) {
	dir := t.TempDir()
	b, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: b, updates: map[uint64]int{}}
	m := newTestManager(t, withShims(t, Options{StateDir: dir, Store: store}))
	old := startCommitDelay
	defer func() { startCommitDelay = old }()
	startCommitDelay = time.Hour // a slow machine's step still ends first
	j := scriptJob(t, m, "commits", "#!/bin/sh\necho hi\nexit 3\n")
	id := mustTrigger(t, m, j.ID, "{}")
	r := waitRun(t, m, j.ID, id)
	if r.Status != Failed || codeString(r.ExitCode) != "3" {
		t.Fatalf("run = %s exit %s, want FAILED exit 3", r.Status, codeString(r.ExitCode))
	}
	if n := store.count(id); n != 1 {
		t.Errorf("run %d: %d commits after it was queued, want 1 (its end with its start and its step's)", id, n)
	}
	if stored, err := b.Run(j.ID, id); err != nil || stored.StartedAt.IsZero() || stored.StartedAt.After(stored.EndedAt) {
		t.Errorf("stored run started %s, ended %s (%v): want its start recorded with its end", stored.StartedAt, stored.EndedAt, err)
	}
	if len(r.Steps) != 1 {
		t.Fatalf("steps = %+v, want one", r.Steps)
	}
	s := r.Steps[0]
	if s.Status != Failed || codeString(s.ExitCode) != "3" || s.EndedAt.IsZero() || s.StartedAt.IsZero() || s.EndedAt.After(r.EndedAt) {
		t.Errorf("step = %+v, want FAILED exit 3 with its start and end (run ended %s)", s, r.EndedAt)
	}
}

// TestStartShownBeforeCommit: while the start of a step under a shim waits
// for its commit,
// the run reads RUNNING with its start (Manager.Run, which the tree's files
// read); the store still has it PENDING. Past startCommitDelay the start
// is committed: a long run commits twice after it was queued.
func TestStartShownBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	b, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: b, updates: map[uint64]int{}}
	m := newTestManager(t, withShims(t, Options{StateDir: dir, Store: store}))
	old := startCommitDelay
	defer func() { startCommitDelay = old }()
	startCommitDelay = time.Hour
	gate := filepath.Join(dir, "gate")
	j := scriptJob(t, m, "gated", "#!/bin/sh\nwhile [ ! -e "+gate+" ]; do sleep 0.01; done\n")
	id := mustTrigger(t, m, j.ID, "{}")
	deadline := time.Now().Add(10 * time.Second)
	var r Run
	for r, _ = m.Run(j.ID, id); r.Status != Running && time.Now().Before(deadline); r, _ = m.Run(j.ID, id) {
		time.Sleep(5 * time.Millisecond)
	}
	if r.Status != Running || r.StartedAt.IsZero() || len(r.Steps) != 1 || r.Steps[0].Status != Running || r.Steps[0].StartedAt.IsZero() {
		t.Fatalf("run while its step runs = %s started %s steps %+v, want RUNNING with its start", r.Status, r.StartedAt, r.Steps)
	}
	if stored, _ := b.Run(j.ID, id); stored.Status != Pending || store.count(id) != 0 {
		t.Errorf("stored while the start waits: %s after %d commits, want PENDING after none", stored.Status, store.count(id))
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, m, j.ID, id); r.Status != Completed || store.count(id) != 1 {
		t.Errorf("run = %s after %d commits, want COMPLETED after 1", r.Status, store.count(id))
	}

	startCommitDelay = 20 * time.Millisecond
	_ = os.Remove(gate)
	id = mustTrigger(t, m, j.ID, "{}")
	for deadline = time.Now().Add(10 * time.Second); store.count(id) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if stored, _ := b.Run(j.ID, id); stored.Status != Running || stored.StartedAt.IsZero() {
		t.Errorf("stored past startCommitDelay: %s started %s, want RUNNING with its start", stored.Status, stored.StartedAt)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, m, j.ID, id); r.Status != Completed || store.count(id) != 2 {
		t.Errorf("run = %s after %d commits, want COMPLETED after 2 (start, end)", r.Status, store.count(id))
	}
}
