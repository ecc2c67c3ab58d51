package jobs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The files of a run are opened below its folder through no symlink: a
// step that swaps its log or its output for a link to a file of the
// daemon's (here the store's folder) gets ENOENT for it, never the file's
// content; a FIFO in a file's place is not opened (it would hang the
// daemon); a regular file reads.
func TestRunFilesFollowNoSymlink(t *testing.T) {
	m := newTestManager(t, Options{})
	j, err := m.CreateJob(uint32(os.Geteuid()), "files")
	if err != nil {
		t.Fatal(err)
	}
	dir := m.RunDir(j.ID, 7)
	secret := filepath.Join(t.TempDir(), "secret")
	for _, err := range []error{
		os.MkdirAll(filepath.Join(dir, "output"), 0o755),
		os.WriteFile(secret, []byte("key"), 0o600),
		os.Symlink(secret, filepath.Join(dir, "log")),
		os.Symlink(filepath.Dir(secret), filepath.Join(dir, "output", "up")),
		os.WriteFile(filepath.Join(dir, "output", "ok"), []byte("fine"), 0o644),
		syscall.Mkfifo(filepath.Join(dir, "output", "fifo"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.OpenLog(j.ID, 7, ""); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("a run log that is a symlink: %v, want ENOENT", err)
	}
	if _, ok := m.StatLog(j.ID, 7, ""); ok {
		t.Error("StatLog describes a run log that is a symlink")
	}
	for _, rel := range []string{"output/up/secret", "output/fifo", "output/missing"} {
		if f, err := m.OpenRunFile(j.ID, 7, rel); !errors.Is(err, syscall.ENOENT) {
			if f != nil {
				_ = f.Close() // read only
			}
			t.Errorf("OpenRunFile %s: %v, want ENOENT", rel, err)
		}
	}
	if _, err := m.StatRunFile(j.ID, 7, "output/up/secret"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("StatRunFile through a symlink: %v, want ENOENT", err)
	}
	f, err := m.OpenRunFile(j.ID, 7, "output/ok")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 100))
	if err != nil || string(b) != "fine" {
		t.Errorf("read output/ok: %q, %v", b, err)
	}
	if _, ok := f.(syscall.Conn); !ok {
		t.Error("the local ReadFile has no descriptor for passthrough")
	}
}
