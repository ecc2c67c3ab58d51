package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTriggerLaysRunFolderAhead: a run's folder is laid out in runs/.next
// while its commit is under way (shown by ordering: the commit is held
// until the folder is seen), then becomes runs/<id>; what a killed daemon
// left in runs/.next is gone, and nothing of it reaches the run.
func TestTriggerLaysRunFolderAhead(t *testing.T) {
	dir := t.TempDir()
	slow := newSlowStore(t, dir)
	m := newTestManager(t, Options{StateDir: dir, Store: slow})
	t.Cleanup(slow.free) // before the Manager's close (cleanups run last first)
	j := scriptJob(t, m, "layahead", "#!/bin/sh\ntrue\n")
	next := filepath.Join(m.jobDir(j.ID), "runs", nextRunDir)
	mustOK(t, os.MkdirAll(filepath.Join(next, "input"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(next, "input", "left.txt"), []byte("from a killed daemon\n"), 0o644))

	slow.armed.Store(true)
	type triggered struct {
		id  uint64
		err error
	}
	done := make(chan triggered, 1)
	go func() {
		id, err := m.Trigger(j.ID, []byte(`{"n":1}`+"\n"), Manual)
		done <- triggered{id, err}
	}()
	if what := <-slow.entered; what != "CreateRun" {
		t.Fatalf("held %s, want CreateRun", what)
	}
	eventually(t, "runs/.next laid out during the commit", func() bool {
		b, err := os.ReadFile(filepath.Join(next, laidPayload))
		return err == nil && string(b) == `{"n":1}`+"\n"
	})
	if _, err := os.Stat(filepath.Join(next, "input", "input.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("input/input.json is there before the run is committed and its staged files are in: %v", err)
	}
	slow.armed.Store(false)
	slow.free()
	got := <-done
	mustOK(t, got.err)
	run := m.RunDir(j.ID, got.id)
	if b, err := os.ReadFile(filepath.Join(run, "input", "input.json")); err != nil || string(b) != `{"n":1}`+"\n" {
		t.Errorf("run %d input.json = %q, %v", got.id, b, err)
	}
	for _, p := range []string{"output", "work", "log"} {
		if _, err := os.Stat(filepath.Join(run, p)); err != nil {
			t.Errorf("run %d: %v", got.id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(run, "input", "left.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run %d has the killed daemon's leftover: %v", got.id, err)
	}
	if _, err := os.Stat(next); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runs/.next is left after the trigger: %v", err)
	}
	if _, err := os.Stat(filepath.Join(run, laidPayload)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the laid payload is left beside input/: %v", err)
	}
	if r := waitRun(t, m, j.ID, got.id); r.Status != Completed {
		t.Errorf("run %d ended %s: %s", got.id, r.Status, r.Error)
	}
}

// failingRunStore is a Store whose CreateRun fails.
type failingRunStore struct{ Store }

func (failingRunStore) CreateRun(string, Run) (Run, error) {
	return Run{}, errors.New("disk full")
}

// TestTriggerFailedCommitLeavesNoFolder: when the run's commit fails, the
// folder laid out ahead goes with it.
func TestTriggerFailedCommitLeavesNoFolder(t *testing.T) {
	dir := t.TempDir()
	slow := newSlowStore(t, dir) // unarmed: a plain store to wrap
	m := newTestManager(t, Options{StateDir: dir, Store: failingRunStore{slow}})
	j := scriptJob(t, m, "layfail", "#!/bin/sh\ntrue\n")
	if _, err := m.Trigger(j.ID, []byte("{}\n"), Manual); err == nil {
		t.Fatal("Trigger succeeded with a failing commit")
	}
	ents, err := os.ReadDir(filepath.Join(m.jobDir(j.ID), "runs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("runs/%s is left after a failed commit", e.Name())
	}
}

// TestTriggerOfDeletedJobMakesNoFolder: a job deleted between a trigger's
// check and its reservation (nothing holds it then) gets no folder back
// from the folder laid out ahead: its commit fails, and nothing is made.
func TestTriggerOfDeletedJobMakesNoFolder(t *testing.T) {
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "laydeleted", "#!/bin/sh\ntrue\n")
	mustOK(t, m.CheckStartable(j.ID))
	mustOK(t, m.DeleteJob(j.Owner, j.Name))
	mustOK(t, m.reserveRun(j.ID))
	_, _, err := m.createRun(j.ID, []byte("{}\n"), Manual, "", time.Time{})
	m.wg.Done() // taken by reserveRun, as trigger gives it back
	if err == nil {
		t.Fatal("a run of a deleted job was committed")
	}
	if _, err := os.Stat(m.jobDir(j.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted job's folder is back: %v", err)
	}
}
