package exec

import (
	"sync"

	"golang.org/x/sys/unix"
)

// ownShims are the pids of the shims this process started and has not
// reaped yet. A scan of every process's descriptors for the holders of a
// file of the mount (jobs.ProcWriters, at each close of data) can pass
// them by: a shim holds only what jobfs gave it or opened for it (its
// pipes, /dev/null, its step's folder and logs in the state folder, cgroup
// files), never a file of the mount. A pid leaves the set once its shim
// has exited and before it is reaped (waitExited), so while listed it can
// name no other process.
var ownShims = struct {
	mu   sync.RWMutex
	pids map[int]struct{}
}{pids: map[int]struct{}{}}

// OwnShim reports whether pid is a shim of this daemon that has not been
// reaped yet: its descriptors are jobfs's own.
func OwnShim(pid int) bool {
	ownShims.mu.RLock()
	defer ownShims.mu.RUnlock()
	_, ok := ownShims.pids[pid]
	return ok
}

func addOwnShim(pid int) {
	ownShims.mu.Lock()
	defer ownShims.mu.Unlock()
	ownShims.pids[pid] = struct{}{}
}

func dropOwnShim(pid int) {
	ownShims.mu.Lock()
	defer ownShims.mu.Unlock()
	delete(ownShims.pids, pid)
}

// waitExited waits until child pid has exited without reaping it
// (WNOWAIT): its pid stays its own until the caller reaps it.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return // nil, or ECHILD: nothing to wait for either way
		}
	}
}
