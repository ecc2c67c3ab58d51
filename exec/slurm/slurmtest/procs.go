package slurmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killOwn kills the Slurm processes of this cluster that are not its
// daemons' children in their process groups: slurmstepd (started by slurmd,
// it leaves slurmd's group) and slurmscriptd (slurmctld's helper). They are
// found by name and by SLURM_CONF in their environment, which they inherit.
// It waits until they are gone (or zombies, which init reaps).
func (c *Cluster) killOwn() []int {
	var pids []int
	for _, pid := range slurmPids() {
		if hasEnv(pid, "SLURM_CONF="+c.Conf) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // it may be gone already
			pids = append(pids, pid)
		}
	}
	return waitGone(pids, 10*time.Second)
}

// slurmPids lists processes whose name starts with "slurm". It reads only
// /proc/PID/comm, which never waits on the process (stat and cmdline can,
// for a process stuck in the kernel).
func slurmPids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.HasPrefix(string(comm), "slurm") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// hasEnv reports whether the process's environment holds kv.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// waitGone waits until the processes are gone or zombies; it returns those
// still alive at the deadline.
func waitGone(pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var alive []int
		for _, pid := range pids {
			if live(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// live reports whether a process exists and is not a zombie. The state is
// read from /proc/PID/status, as stat can wait on a stuck process.
func live(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "State:" {
			return f[1] != "Z" && f[1] != "X"
		}
	}
	return true
}
