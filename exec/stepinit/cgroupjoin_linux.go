package stepinit

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// cgroupRoots are the cgroup file systems' mount points, each opened
// (O_PATH) by an init started ahead before it leaves the host's mounts: it
// joins its step's cgroup through them by writing "0", as an init that
// builds its root with its step does (joinThread). Its shim could write
// the init's thread id instead, but the kernel moves a task other than the
// writer only under its cgroup_threadgroup_rwsem taken for writing, which
// waits out an RCU grace period: 7-11 ms on a 2-core VM, where "0" (the
// writer's own thread) is 0.2 ms.
type cgroupRoots map[string]int

// openCgroupRoots opens every cgroup and cgroup2 mount of the calling
// process's mount namespace.
func openCgroupRoots() (cgroupRoots, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("list the cgroup file systems: %w", err)
	}
	roots := cgroupRoots{}
	for _, m := range mounts {
		if _, ok := roots[m.Mountpoint]; ok {
			continue
		}
		fd, err := unix.Open(m.Mountpoint, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			roots.close()
			return nil, fmt.Errorf("open %s: %w", m.Mountpoint, err)
		}
		roots[m.Mountpoint] = fd
	}
	return roots, nil
}

// join moves the calling thread into the cgroup of procs, a cgroup.procs
// file below one of the mounts: on v1 that thread alone (its tasks file),
// on v2 its process.
func (r cgroupRoots) join(procs string) error {
	root, rel := "", ""
	for mp := range r {
		if strings.HasPrefix(procs, mp+"/") && len(mp) > len(root) {
			root, rel = mp, procs[len(mp)+1:]
		}
	}
	if root == "" {
		return fmt.Errorf("%s is on no cgroup file system it holds", procs)
	}
	// The names come from the shim (root's), on a file system of no links.
	fd := -1
	var err error
	if path.Base(rel) == "cgroup.procs" {
		fd, err = unix.Openat(r[root], path.Join(path.Dir(rel), "tasks"), unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if fd < 0 { // v2, or a v1 folder without tasks: its whole process
		if fd, err = unix.Openat(r[root], rel, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
	}
	f := os.NewFile(uintptr(fd), procs)
	_, err = f.Write([]byte("0"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// close lets the mounts go.
func (r cgroupRoots) close() {
	for mp, fd := range r {
		_ = unix.Close(fd) // O_PATH: nothing to flush
		delete(r, mp)
	}
}
