package fs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs"
)

// A job renamed or deleted by a route other than the mount (here the
// Manager called directly, as a future API would) reaches the kernel
// through the store's change feed (watchStore): the name it kept stops
// answering, without waiting for the entry's timeout. The invalidation is
// asynchronous, so the test waits for it (at most cacheTTL/3, far below
// the 30 s a kept entry would otherwise live).
func TestCacheInvalidatedByStoreFeed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root here")
	}
	if _, err := os.Stat(devFuse); err != nil {
		t.Skipf("no %s", devFuse)
	}
	m, err := jobs.New(jobs.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	me := uint32(os.Geteuid())
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	server, err := Mount(mnt, NewRoot(m, me, false), MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(server, mnt); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
		server.Wait()
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := m.CreateJob(me, "a"); err != nil {
		t.Fatal(err)
	}
	var first syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mnt, "a"), &first); err != nil {
		t.Fatal(err)
	}

	// gone waits until a stat of name says ENOENT.
	gone := func(name string) {
		t.Helper()
		deadline := time.Now().Add(cacheTTL / 3)
		for {
			var st syscall.Stat_t
			err := syscall.Stat(filepath.Join(mnt, name), &st)
			if errors.Is(err, syscall.ENOENT) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stat %s after the change: %v, still not ENOENT after %s", name, err, cacheTTL/3)
			}
			time.Sleep(time.Millisecond)
		}
	}

	if err := m.RenameJob(me, "a", "b"); err != nil {
		t.Fatal(err)
	}
	gone("a")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(mnt, "b"), &st); err != nil || st.Ino != first.Ino {
		t.Fatalf("stat of the new name: %v, inode %d, want %d", err, st.Ino, first.Ino)
	}
	if err := m.DeleteJob(me, "b"); err != nil {
		t.Fatal(err)
	}
	gone("b")
}
