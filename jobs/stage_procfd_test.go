package jobs

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFdCount: the scan's one stat per process says how many descriptors
// it holds (Linux 6.2 and later), 0 for a kernel thread and for a process
// that is gone, so those are skipped and every other is listed.
func TestFdCount(t *testing.T) {
	proc, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip("no /proc")
	}
	defer func() { _ = unix.Close(proc) }() // a folder
	self := strconv.Itoa(os.Getpid())
	if fdCount(proc, self) <= 0 {
		t.Skipf("this kernel does not count descriptors in /proc/<pid>/fd's size (before 6.2)")
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	before := fdCount(proc, self)
	_ = f.Close() // read only
	if after := fdCount(proc, self); after != before-1 {
		t.Errorf("closing one descriptor: count %d -> %d, want %d", before, after, before-1)
	}
	// A process that has ended and been reaped.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if n := fdCount(proc, strconv.Itoa(cmd.Process.Pid)); n != 0 {
		t.Errorf("a process that is gone counts %d, want 0", n)
	}
	// kthreadd, where pid 2 is it (the initial pid namespace).
	if comm, err := os.ReadFile("/proc/2/comm"); err == nil && strings.TrimSpace(string(comm)) == "kthreadd" {
		if n := fdCount(proc, "2"); n != 0 {
			t.Errorf("kthreadd counts %d descriptors, want 0", n)
		}
	}
}
