package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonInheritsNothing: a descriptor the daemon was started with (a
// CI job's or an ssh session's pipe) reaches none of the processes it
// starts: not the idle shims, which outlive the daemon while a run is
// active, nor the inits they start ahead, nor the steps.
func TestDaemonInheritsNothing(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	pipe := fmt.Sprintf("pipe:[%d]", st.Ino)
	// As fd 9: the daemon's children get their own fds 3-6 (spec, status,
	// logs) put over whatever the daemon had there.
	d := startDaemon(t, daemonOpts{outlive: true, inherit: []*os.File{nil, nil, nil, nil, nil, nil, w}})
	w.Close() // the daemon's copy is the only one left
	d.scriptJob(t, "fds", "#!/bin/sh\nls -l /proc/self/fd/\n")
	d.trigger(t, "fds", "{}")
	if got := d.waitRun(t, "fds", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	if log := d.cat(t, "mnt/fds/runs/1/log"); strings.Contains(log, pipe) {
		t.Errorf("the step holds the daemon's inherited %s:\n%s", pipe, log)
	}
	// The pool's shims (the daemon's children) and their inits.
	daemonPid := d.cmd.Process.Pid
	var started []int
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		started = descendants(daemonPid)
		if len(started) >= 2 { // a shim and the init it started ahead, at least
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(started) == 0 {
		t.Fatal("the daemon has no idle shim after a run")
	}
	for _, pid := range started {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid)) // a bad pattern only
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && target == pipe {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d (%s) holds the daemon's inherited %s as %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " "), pipe, filepath.Base(fd))
			}
		}
	}
}

// descendants lists the processes below pid (children, their children ...).
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		kids, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p)) // a bad pattern only
		for _, k := range kids {
			b, err := os.ReadFile(k)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
					queue = append(queue, n)
				}
			}
		}
	}
	return out
}
