package jobs

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs/boltstore"
	bolt "go.etcd.io/bbolt"
)

// holdStore makes the store slow: a write transaction that does not end
// until release is called (at the latest by the test's cleanup), so every
// commit waits behind it as behind a slow fsync.
func holdStore(t *testing.T, m testManager) (release func()) {
	t.Helper()
	held, free := make(chan struct{}), make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		ended <- m.store.(*boltstore.Store).DB().Update(func(*bolt.Tx) error {
			close(held)
			<-free
			return nil
		})
	}()
	<-held
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(free)
			if err := <-ended; err != nil {
				t.Errorf("the held transaction: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitInStack waits until some goroutine's stack holds fn: a call blocked
// inside it.
func waitInStack(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	eventually(t, fn+" is waiting", func() bool {
		n := runtime.Stack(buf, true)
		return strings.Contains(string(buf[:n]), fn)
	})
}

// within fails the test when call does not return: the deadline only turns
// a hang (a call queued behind a held lock) into a failure.
func within(t *testing.T, what string, call func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		call()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s waited for the store's commit (m.mu held across it?)", what)
	}
}

// TestSlowStoreLeavesReadersFree: while a trigger and a job's deletion wait
// for a slow store commit, stream reads (Follow), Busy and Wait of a
// running run go on: neither commit holds the Manager's lock.
func TestSlowStoreLeavesReadersFree(t *testing.T) {
	m := newTestManager(t, Options{})
	g := newGate(t)
	j := scriptJob(t, m, "slowstore", "#!/bin/sh\n"+g.wait())
	doomed := mustCreateJob(t, m, "slowstore-rm")
	id := mustTrigger(t, m, j.ID, "{}")
	eventually(t, "run 1 is RUNNING", func() bool { return runStatus(t, m, j.ID, id) == Running })

	release := holdStore(t, m)
	type result struct {
		id  uint64
		err error
	}
	triggered, deleted := make(chan result, 1), make(chan error, 1)
	go func() {
		id, err := m.Trigger(j.ID, []byte("{}"), Manual)
		triggered <- result{id, err}
	}()
	go func() { deleted <- m.DeleteJob(doomed.Owner, doomed.Name) }()
	waitInStack(t, "boltstore.(*Store).CreateRun")
	waitInStack(t, "boltstore.(*Store).DeleteJob")

	within(t, "Follow", func() {
		if _, _, _, active := m.Follow(j.ID, id); !active {
			t.Errorf("Follow(run %d) = not active, want active", id)
		}
	})
	within(t, "Busy", func() {
		if !m.Busy(j.ID) {
			t.Errorf("Busy(%s) = false with run %d RUNNING", j.Name, id)
		}
	})
	within(t, "Wait", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if _, err := m.Wait(ctx, j.ID, id); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait(run %d) = %v, want its context's end", id, err)
		}
	})

	release()
	tr := <-triggered
	if tr.err != nil || tr.id != id+1 {
		t.Fatalf("trigger behind the slow commit = run %d, %v; want run %d", tr.id, tr.err, id+1)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("delete behind the slow commit: %v", err)
	}
	if _, err := m.JobByID(doomed.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted job still found: %v", err)
	}
	g.open(t)
	for _, r := range []uint64{id, tr.id} {
		if got := waitRun(t, m, j.ID, r); got.Status != Completed {
			t.Errorf("run %d ended %s, want COMPLETED", r, got.Status)
		}
	}
}

// TestDeleteJobRefusesWhileTriggerCommits: a run reserved by a trigger
// counts as active for DeleteJob, so a job is never deleted under a run
// being committed; and a job being deleted starts no run.
func TestDeleteJobRefusesWhileTriggerCommits(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "reserve", "#!/bin/sh\ntrue\n")
	mustOK(t, m.reserveRun(j.ID))
	if err := m.DeleteJob(j.Owner, j.Name); !errors.Is(err, ErrBusy) {
		t.Errorf("DeleteJob with a run being committed = %v, want ErrBusy", err)
	}
	m.unreserveRun(j.ID)
	m.wg.Done() // taken by reserveRun; trigger gives it back
	mustOK(t, m.beginDelete(j))
	if _, err := m.Trigger(j.ID, []byte("{}"), Manual); !errors.Is(err, ErrNotFound) {
		t.Errorf("Trigger of a job being deleted = %v, want ErrNotFound", err)
	}
	m.endDelete(j.ID, false)
	id := mustTrigger(t, m, j.ID, "{}")
	if got := waitRun(t, m, j.ID, id); got.Status != Completed {
		t.Errorf("run %d ended %s after the deletion was given up, want COMPLETED", id, got.Status)
	}
}
