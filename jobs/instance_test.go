package jobs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/jobfs/jobfs/exec"
	"github.com/jobfs/jobfs/jobs/boltstore"
	"github.com/jobfs/jobfs/jobs/domain"
)

// sameFolder marks the store in dir as last opened from dir, as a daemon
// that crashed there leaves it (a test's copy of a live store stands in).
func sameFolder(t *testing.T, dir string) {
	t.Helper()
	id, err := domain.FolderID(dir)
	mustOK(t, err)
	db, err := bolt.Open(filepath.Join(dir, "jobfs.db"), 0o600, nil)
	mustOK(t, err)
	mustOK(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("daemon")) // boltstore's record of the folder that opened it
		if err != nil {
			return err
		}
		return b.Put([]byte("instance"), []byte(id))
	}))
	mustOK(t, db.Close())
}

func copyStore(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, "jobfs.db"))
	mustOK(t, err)
	mustOK(t, os.WriteFile(filepath.Join(to, "jobfs.db"), b, 0o600))
}

// TestInstanceFollowsTheFolder: the instance is the state folder's, kept
// across reopening, and a copy elsewhere is told it is one (once).
func TestInstanceFollowsTheFolder(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	open := func(dir string) Instance {
		s, err := boltstore.Open(filepath.Join(dir, "jobfs.db"))
		mustOK(t, err)
		defer s.Close()
		return s.Instance()
	}
	idA, _ := domain.FolderID(a)
	idB, _ := domain.FolderID(b)
	if got := open(a); got != (Instance{ID: idA, Legacy: true}) {
		t.Errorf("first open = %+v, want a legacy (fresh) store with id %s", got, idA)
	}
	if got := open(a); got != (Instance{ID: idA}) {
		t.Errorf("reopen = %+v, want id %s, not copied", got, idA)
	}
	copyStore(t, a, b)
	if got := open(b); got != (Instance{ID: idB, Copied: true}) {
		t.Errorf("copy = %+v, want id %s, copied", got, idB)
	}
	if got := open(b); got != (Instance{ID: idB}) {
		t.Errorf("copy reopened = %+v, want id %s, its own now", got, idB)
	}
}

// TestRecoverLeavesACopysProcesses: a daemon started on a copy of a state
// folder ends the runs it finds active (they do not run for it) but kills
// nothing they recorded: the daemon of the original runs them. The
// original's daemon, restarted after a crash, still kills them.
func TestRecoverLeavesACopysProcesses(t *testing.T) {
	orig, cp := t.TempDir(), t.TempDir()
	pgid, exited, _ := startOrphanGroup(t)
	s, err := boltstore.Open(filepath.Join(orig, "jobfs.db"))
	mustOK(t, err)
	j := mustStoreJob(t, s, "copied01", uint32(os.Getuid()), jobName("copied"))
	r := mustCreateRun(t, s, j.ID, Run{Status: Running, Trigger: Manual, Queued: t0, StartedAt: t0,
		Pgid: pgid, PgidStart: exec.ProcessStart(pgid)})
	mustOK(t, s.Close())
	copyStore(t, orig, cp)

	m := newTestManager(t, Options{StateDir: cp})
	got, err := m.Run(j.ID, r.ID)
	mustOK(t, err)
	if got.Status != Failed || got.Error != stoppedError {
		t.Errorf("run in the copy = %s %q, want FAILED %q", got.Status, got.Error, stoppedError)
	}
	select {
	case <-exited:
		t.Fatal("the daemon on the copy killed the process group the original recorded")
	case <-time.After(200 * time.Millisecond): // what New kills is dead once it returns
	}
	if !alive(pgid) {
		t.Fatal("the original's process group is gone")
	}

	newTestManager(t, Options{StateDir: orig})
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the original's daemon, restarted, did not kill what its crash left")
	}
}
