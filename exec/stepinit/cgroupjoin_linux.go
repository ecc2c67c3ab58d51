package stepinit

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupRoots are the folders of the cgroup hierarchies the step's cgroup
// is made in (its shim's mounts(), after RootAheadArg), each opened
// (O_PATH) by an init started ahead before it leaves the host's mounts: it
// joins its step's cgroup through them by writing "0", as an init that
// builds its root with its step does (joinThread). Its shim could write
// the init's thread id instead, but the kernel (6.18 here) moves a task
// other than the writer only under its threadgroup lock taken for writing,
// which waits out an RCU grace period: 7.3-7.8 ms on a 2-core VM, where
// "0" (the writer's own thread) is 0.15 ms (BenchmarkCgroupJoin). They are
// closed before the step starts.
type cgroupRoots map[string]int

// openCgroupRoots opens the folders dirs, by the names the shim uses
// (/sys/fs/cgroup/cpu where it is a link to cpu,cpuacct, say).
func openCgroupRoots(dirs []string) (cgroupRoots, error) {
	roots := cgroupRoots{}
	for _, d := range dirs {
		if _, ok := roots[d]; ok {
			continue
		}
		fd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			roots.close()
			return nil, fmt.Errorf("open the cgroup hierarchy %s: %w", d, err)
		}
		roots[d] = fd
	}
	return roots, nil
}

// join moves the calling thread into the cgroup of procs, a cgroup.procs
// file below one of the folders: on v1 that thread alone (its tasks file),
// on v2 its process.
func (r cgroupRoots) join(procs string) error {
	root, rel := "", ""
	for d := range r {
		if strings.HasPrefix(procs, d+"/") && len(d) > len(root) {
			root, rel = d, procs[len(d)+1:]
		}
	}
	if root == "" {
		return fmt.Errorf("%s is in no cgroup hierarchy it was given", procs)
	}
	return joinVia(func(name string) (int, error) { return openBeneath(r[root], name) }, rel)
}

// joinVia moves the calling thread into the cgroup of procs by writing
// "0": to the tasks file beside it (v1: that thread alone), or where there
// is none (v2, or a v1 folder without tasks) to procs itself (the whole
// process). open opens a file of the cgroup for writing.
func joinVia(open func(name string) (int, error), procs string) error {
	fd, err := -1, error(unix.ENOENT) // no tasks file to try
	if path.Base(procs) == "cgroup.procs" {
		fd, err = open(path.Join(path.Dir(procs), "tasks"))
	}
	if errors.Is(err, unix.ENOENT) {
		fd, err = open(procs)
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), procs)
	_, err = f.Write([]byte("0"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openBeneath opens name below dir for writing, on dir's file system and
// through no link (openat2; openat on kernels before 5.6).
func openBeneath(dir int, name string) (int, error) {
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		return unix.Openat(dir, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

// close lets the folders go.
func (r cgroupRoots) close() {
	for d, fd := range r {
		_ = unix.Close(fd) // O_PATH: nothing to flush
		delete(r, d)
	}
}
