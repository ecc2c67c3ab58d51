package stepinit

import (
	"io"
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

// TestCrashReportsOneLine: a runtime crash of the init before the step
// starts (a panic in a goroutine: no recover) reaches the status pipe, not
// the run log; a panic of the init's own code becomes one "error:
// jobfs-init: panic: ..." line. The test binary is the crashing init.
func TestCrashReportsOneLine(t *testing.T) {
	if mode := os.Getenv("STEPINIT_TEST_CRASH"); mode != "" {
		crashHelper(mode)
		return
	}
	for mode, want := range map[string]string{
		"goroutine": "panic: boom in a goroutine",
		"main":      "error: jobfs-init: panic: boom in main",
	} {
		statusR, statusW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		logR, logW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		spec, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashReportsOneLine$")
		cmd.Env = append(os.Environ(), "STEPINIT_TEST_CRASH="+mode, "GOTRACEBACK=all")
		cmd.Stderr, cmd.ExtraFiles = logW, []*os.File{spec, statusW}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		statusW.Close()
		logW.Close()
		spec.Close()
		status, _ := io.ReadAll(statusR)
		logged, _ := io.ReadAll(logR)
		cmd.Wait()
		statusR.Close()
		logR.Close()
		first, _, _ := strings.Cut(string(status), "\n")
		if first != want {
			t.Errorf("%s: the status pipe's first line is %q, want %q", mode, first, want)
		}
		if len(logged) != 0 {
			t.Errorf("%s: the run log got %q, want nothing", mode, logged)
		}
	}
}

// crashHelper is the init of TestCrashReportsOneLine: its stderr is set
// up as Main's, then it dies as mode says.
func crashHelper(mode string) {
	logw, err := stderrToStatus()
	if err != nil {
		os.Exit(9)
	}
	st := &initState{status: os.NewFile(4, "status"), log: logw}
	if mode == "main" {
		defer st.recoverPanic()
		panic("boom in main")
	}
	done := make(chan struct{})
	go func() { panic("boom in a goroutine") }()
	<-done
}
