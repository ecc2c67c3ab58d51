package jobs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestProcWritersSince: only the openers and the processes made after the
// mark are looked at; a holder older than the mark that is neither is not
// seen (the whole scan sees it), and the whole scan is made for a mark too
// old to trust, an unknown mark, and an opener that is gone.
func TestProcWritersSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	inos := map[uint64]bool{st.Ino: true}
	match := func(target string) bool { return target == path }
	// hold starts a process that holds path open for writing until the test ends.
	hold := func() int {
		cmd := exec.Command("/bin/sh", "-c", `exec 3>>"$1"; echo held; exec sleep 60`, "sh", path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // killed: its end says nothing
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		return cmd.Process.Pid
	}
	count := func(since PidMark, openers ...int) int {
		t.Helper()
		c, complete := ProcWritersSince(inos, match, since, openers)
		if !complete {
			t.Fatal("the scan did not end")
		}
		return c[st.Ino]
	}
	older := hold()
	mark := MarkPids()
	if mark.Last == 0 {
		t.Skip("no /proc/sys/kernel/ns_last_pid")
	}
	if n := count(mark); n != 0 {
		t.Errorf("a holder older than the mark, not an opener: counted %d, want 0 (not looked at)", n)
	}
	if n := count(mark, older); n != 1 {
		t.Errorf("the older holder as the opener: counted %d, want 1", n)
	}
	hold()
	if n := count(mark, older); n != 2 {
		t.Errorf("the opener and a holder made after the mark: counted %d, want 2", n)
	}
	stale := mark
	stale.At = stale.At.Add(-time.Duration(pidMax()) * time.Second / maxPidRate * 2)
	if n := count(stale); n != 2 {
		t.Errorf("a mark too old to trust: counted %d, want 2 (the whole scan)", n)
	}
	if n := count(PidMark{}); n != 2 {
		t.Errorf("no mark: counted %d, want 2 (the whole scan)", n)
	}
	gone := exec.Command("/bin/true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if n := count(mark, gone.Process.Pid); n != 2 {
		t.Errorf("an opener that is gone: counted %d, want 2 (the whole scan)", n)
	}
}
