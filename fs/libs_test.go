package fs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mountedAt reads mountinfo through moby/sys/mountinfo: a mount point
// whose name mountinfo escapes (a space is \040) is found with its type.
func TestMountedAt(t *testing.T) {
	if fstype, ok := mountedAt("/proc"); !ok || fstype != "proc" {
		t.Errorf("mountedAt(/proc) = %q, %v; want proc, true", fstype, ok)
	}
	dir := filepath.Join(t.TempDir(), "a b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if fstype, ok := mountedAt(dir); ok {
		t.Errorf("mountedAt(empty folder) = %q, true; want nothing mounted", fstype)
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if fstype, ok := mountedAt(dir); !ok || fstype != "tmpfs" {
		t.Errorf("mountedAt(%q) = %q, %v; want tmpfs, true", dir, fstype, ok)
	}
}

// A disk folder's seed tells its children's inode numbers apart: two
// folders of the same run and path but different seeds give the same
// name different numbers. Seeds are inode numbers, far above the largest
// rune: as string(rune(seed)) every one was U+FFFD.
func TestDiskSeedsDiffer(t *testing.T) {
	a := &diskDir{run: 1, rel: "out", seed: ino("a")}
	b := &diskDir{run: 1, rel: "out", seed: ino("b")}
	if a.childIno("x") == b.childIno("x") {
		t.Errorf("seeds %#x and %#x give child x the same inode number %#x", a.seed, b.seed, a.childIno("x"))
	}
}
