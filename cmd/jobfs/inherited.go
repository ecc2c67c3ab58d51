package main

import (
	"math"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// inheritNothing marks every descriptor the daemon inherited past stderr
// close-on-exec, so that none reaches the processes it starts: the idle
// shims outlive the daemon while a run is active, and a pipe the daemon was
// started with (a CI job's, an ssh session's) would stay open in them, its
// reader waiting for the run's end. Steps never saw them (the init keeps
// only their own), the shims and inits did.
func inheritNothing() {
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd") // kernels before 5.11
	if err != nil {
		return // nothing to go by: descriptors stay as they came
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
