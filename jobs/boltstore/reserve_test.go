package boltstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a tmpfs of size on a temporary folder for t (unmounted
// when t ends) and returns it.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "jobfs-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fillDisk writes a file in dir until the disk is full.
func fillDisk(t *testing.T, dir, name string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestDeleteOnFullDisk: on a disk full to the last block, with the store
// itself unable to grow, deleting a run and then a job with many runs
// still works.
func TestDeleteOnFullDisk(t *testing.T) {
	defer func(d time.Duration) { reserveRetry = d }(reserveRetry)
	reserveRetry = 10 * time.Millisecond
	dir := smallDisk(t, "8m")
	s, err := Open(filepath.Join(dir, "jobfs.db"))
	mustOK(t, err)
	defer s.Close()
	small := mustStoreJob(t, s, "small001", 1000, jobName("small"))
	r := mustCreateRun(t, s, small.ID, Run{Status: Completed, Queued: t0})
	big := mustStoreJob(t, s, "big00001", 1000, jobName("big"))
	for i := 0; i < 300; i++ {
		mustCreateRun(t, s, big.ID, Run{Status: Completed, Queued: t0, Error: strings.Repeat("x", 2000)})
	}
	if st, err := os.Stat(filepath.Join(dir, "jobfs.reserve")); err != nil || st.Size() != reserveSize {
		t.Fatalf("the reserve file after open: %v, %v", st, err)
	}
	fillDisk(t, dir, "ballast")
	n := 300
	for ; ; n++ {
		_, err := s.CreateRun(big.ID, Run{Status: Completed, Queued: t0, Error: strings.Repeat("x", 2000)})
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("run %d: %v", n, err)
			}
			break
		}
	}
	t.Logf("%d runs stored before the store could not grow", n)
	fillDisk(t, dir, "ballast2")
	if err := s.DeleteRun(small.ID, r.ID); err != nil {
		t.Errorf("delete a run on the full disk: %v", err)
	}
	fillDisk(t, dir, "ballast3")
	if err := s.DeleteJob(big.ID); err != nil {
		t.Errorf("delete a job of %d runs on the full disk: %v", n, err)
	}
	mustOK(t, s.Check())

	// Once there is room again, the reserve is made again.
	for _, b := range []string{"ballast", "ballast2", "ballast3"} {
		mustOK(t, os.Remove(filepath.Join(dir, b)))
	}
	eventually(t, "the reserve is made again", func() bool {
		st, err := os.Stat(filepath.Join(dir, "jobfs.reserve"))
		return err == nil && st.Size() == reserveSize
	})
}
