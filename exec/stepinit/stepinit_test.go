package stepinit

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestStartError(t *testing.T) {
	path := t.TempDir() + "/script"
	if err := os.WriteFile(path, []byte("echo no interpreter line\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := exec.Command(path).Start()
	if got := StartError(path, err).Error(); !strings.Contains(got, "not a program and no #! line") {
		t.Errorf("StartError for a script without #! = %q", got)
	}
	err = exec.Command(t.TempDir() + "/missing").Start()
	if got := StartError("missing", err).Error(); !strings.HasPrefix(got, "cannot start missing: ") {
		t.Errorf("StartError for a missing program = %q", got)
	}
}

// TestCloseOnExecFrom: nothing the init holds reaches the step.
func TestCloseOnExecFrom(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd, err := syscall.Dup(int(w.Fd())) // dup: no close-on-exec
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Fatal("a dup'd fd is close-on-exec already: the test proves nothing")
	}
	if err := closeOnExecFrom(3); err != nil {
		t.Fatal(err)
	}
	if flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d is not close-on-exec after closeOnExecFrom(3)", fd)
	}
}

func TestVerifyCgroup(t *testing.T) {
	if err := verifyCgroup(nil); err != nil {
		t.Errorf("verifyCgroup(nil) = %v", err)
	}
	err := verifyCgroup(map[string]string{"memory": "/no/such/jobfs/group"})
	if err == nil || !strings.Contains(err.Error(), "not in its cgroup") {
		t.Errorf("verifyCgroup of a group this process is not in = %v", err)
	}
}
