package jobs

import (
	"context"
	"errors"
	"github.com/jobfs/jobfs/jobs/boltstore"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowStore is a Store whose CreateRun, DeleteJob and DeleteRun, once
// armed, stay in their commit until the test releases them: a slow fsync
// (or a slow etcd) whose end the test chooses, so what must not wait for
// it is shown by ordering, not by timing.
type slowStore struct {
	Store
	armed   atomic.Bool
	entered chan string   // the name of each held commit, as it begins
	release chan struct{} // closed: held commits go on
	once    sync.Once
}

func newSlowStore(t *testing.T, dir string) *slowStore {
	t.Helper()
	b, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
	if err != nil {
		t.Fatal(err)
	}
	return &slowStore{Store: b, entered: make(chan string, 16), release: make(chan struct{})}
}

func (s *slowStore) hold(what string) {
	if s.armed.Load() {
		s.entered <- what
		<-s.release
	}
}

func (s *slowStore) free() { s.once.Do(func() { close(s.release) }) }

func (s *slowStore) CreateRun(id string, r Run) (Run, error) {
	s.hold("CreateRun")
	return s.Store.CreateRun(id, r)
}

func (s *slowStore) DeleteJob(id string) error {
	s.hold("DeleteJob")
	return s.Store.DeleteJob(id)
}

func (s *slowStore) DeleteRun(id string, n uint64) error {
	s.hold("DeleteRun")
	return s.Store.DeleteRun(id, n)
}

// TestSlowStoreCommitsLeaveReadersFree: while a Trigger, a DeleteJob and a
// retention prune are each inside a slow commit, another run streams its
// log to the end, completes, and Follow, Busy and Wait of it answer: none
// of the three holds the Manager's lock across its commit.
func TestSlowStoreCommitsLeaveReadersFree(t *testing.T) {
	dir := t.TempDir()
	slow := newSlowStore(t, dir)
	m := newTestManager(t, Options{StateDir: dir, Store: slow})
	t.Cleanup(slow.free) // before the Manager's close (cleanups run last first)

	g := newGate(t)
	j := scriptJob(t, m, "slowcommit", "#!/bin/sh\necho first\n"+g.wait()+"echo second\n")
	doomed := mustCreateJob(t, m, "slowcommit-rm")
	kept := mustCreateJob(t, m, "slowcommit-keep")
	// Stored directly: a write of config/keep prunes at once (pruneSoon), and
	// the prune under test is the one below, held in its commit.
	mustOK(t, m.store.SetSetting(kept.ID, "config/keep", "1", m.now()))
	for range 2 {
		_, err := m.store.CreateRun(kept.ID, Run{Status: Completed, Trigger: Manual, Queued: m.now().UTC()})
		mustOK(t, err)
	}
	id := mustTrigger(t, m, j.ID, "{}")
	eventually(t, "run 1 wrote its first line", func() bool {
		b, _ := os.ReadFile(m.RunLogPath(j.ID, id))
		return strings.Contains(string(b), "first")
	})

	slow.armed.Store(true)
	triggered, deleted, pruned := make(chan error, 1), make(chan error, 1), make(chan struct{})
	var next atomic.Uint64
	go func() {
		n, err := m.Trigger(j.ID, []byte("{}"), Manual)
		next.Store(n)
		triggered <- err
	}()
	go func() { deleted <- m.DeleteJob(doomed.Owner, doomed.Name) }()
	go func() { m.prune(kept.ID); close(pruned) }()
	held := map[string]bool{}
	for range 3 {
		select {
		case what := <-slow.entered:
			held[what] = true
		case <-time.After(30 * time.Second): // a bound, not a measure: fail, do not hang the suite
			t.Fatalf("held commits after 30 s = %v, want CreateRun, DeleteJob and DeleteRun", held)
		}
	}
	if len(held) != 3 {
		t.Fatalf("held commits = %v, want CreateRun, DeleteJob and DeleteRun", held)
	}

	// All three are inside their commits now. The running run goes on.
	var grew, ended <-chan struct{}
	within(t, "Follow", func() {
		var active bool
		if grew, ended, _, active = m.Follow(j.ID, id); !active {
			t.Errorf("Follow(run %d) = not active, want active", id)
		}
	})
	g.open(t)
	within(t, "the run's log growing", func() { <-grew })
	within(t, "the run's end", func() { <-ended })
	within(t, "Wait", func() {
		r, err := m.Wait(context.Background(), j.ID, id)
		if err != nil || r.Status != Completed {
			t.Errorf("Wait(run %d) = %s, %v; want COMPLETED", id, r.Status, err)
		}
	})
	if b, err := os.ReadFile(m.RunLogPath(j.ID, id)); err != nil || !strings.Contains(string(b), "second") {
		t.Errorf("run log after its end = %q, %v; want the second line", b, err)
	}
	within(t, "Busy", func() {
		if !m.Busy(j.ID) { // the run being committed counts as active
			t.Errorf("Busy(%s) = false with a run being committed", j.Name)
		}
	})
	select {
	case <-triggered:
		t.Fatal("the trigger returned while its commit was held")
	case <-deleted:
		t.Fatal("DeleteJob returned while its commit was held")
	case <-pruned:
		t.Fatal("the prune returned while its commit was held")
	default:
	}

	slow.free()
	if err := <-triggered; err != nil || next.Load() != id+1 {
		t.Fatalf("trigger behind the slow commit = run %d, %v; want run %d", next.Load(), err, id+1)
	}
	mustOK(t, <-deleted)
	<-pruned
	if _, err := m.JobByID(doomed.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted job still found: %v", err)
	}
	if ids, err := m.Runs(kept.ID); err != nil || len(ids) != 1 || ids[0] != 2 {
		t.Errorf("runs of the pruned job = %v, %v; want [2] (config/keep 1)", ids, err)
	}
	if got := waitRun(t, m, j.ID, id+1); got.Status != Completed {
		t.Errorf("run %d ended %s, want COMPLETED", id+1, got.Status)
	}
}
