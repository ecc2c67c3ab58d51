package jobs

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/exec"
)

// Who still holds a file open? FUSE sends FLUSH at every close(2) of every
// duplicate of a descriptor (a forked child's exit included) and RELEASE
// once, when the last reference goes, but close(2) does not wait for
// RELEASE. To judge a payload at the close that really ends it, and to keep
// a staged file that someone still writes out of a run, the daemon looks at
// the descriptor tables of all processes: /proc/<pid>/fd names the file
// (readlink, which never enters this mount) and /proc/<pid>/fdinfo gives its
// inode number and open flags. The daemon runs as root on a shared mount
// and as the only user of a private one, so it can read them; a process it
// cannot read is skipped.

// procScanLimit bounds a scan of /proc. A process in the middle of an
// execve(2) whose close-on-exec ends a descriptor of this mount (a forked
// child of a program that had data or a staged file open) waits for this
// daemon's answer to that FLUSH while holding locks its /proc entries need:
// a scan that reaches it waits for itself. Past the limit the scan is
// given up (its goroutine ends once the exec goes on) and the caller
// decides as if a writer were left.
const procScanLimit = 2 * time.Second

// ProcWriters counts, per inode number in inos, the descriptors open for
// writing in any process whose link target passes match. The descriptor a
// close(2) is ending is already gone from its table when FLUSH arrives.
// complete is false when the scan did not end within procScanLimit: the
// counts are then unknown (nil).
func ProcWriters(inos map[uint64]bool, match func(target string) bool) (counts map[uint64]int, complete bool) {
	done := make(chan map[uint64]int, 1) // buffered: a late scan never blocks
	go func() { done <- procWriters(inos, match) }()
	t := time.NewTimer(procScanLimit)
	defer t.Stop()
	select {
	case c := <-done:
		return c, true
	case <-t.C:
		return nil, false
	}
}

// procWriters is ProcWriters' scan, unbounded. It works with raw
// descriptors and buffers reused across processes: os.Open's poller
// registration, finalizers and sorted listings were most of the user CPU
// of a scan (BenchmarkProcWriters).
func procWriters(inos map[uint64]bool, match func(target string) bool) map[uint64]int {
	counts := map[uint64]int{}
	proc, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return counts // no /proc: nothing can be seen
	}
	defer func() { _ = unix.Close(proc) }() // a folder: nothing to flush
	sc := procScan{dirBuf: make([]byte, 16<<10), link: make([]byte, 4096), info: make([]byte, 1024)}
	self := strconv.Itoa(os.Getpid())
	counted := fdCount(proc, self) > 0 // this process holds some (/proc itself)
	for _, pid := range sc.names(proc, nil) {
		if pid == self || !isPID(pid) || ownShim(pid) {
			continue
		}
		if counted && fdCount(proc, pid) == 0 {
			continue // a kernel thread, a zombie, a process gone: nothing to list
		}
		sc.fdWriters(proc, pid, inos, match, counts)
	}
	return counts
}

// fdCount is the number of descriptors process pid holds, by one stat of
// its fd folder instead of opening and listing it (the listing cost four
// system calls per process, and most processes of a machine are kernel
// threads, which hold none): Linux 6.2 and later give the count as the
// folder's size, older kernels 0. A folder that cannot be looked at but
// exists counts as -1: it is listed as before.
func fdCount(proc int, pid string) int64 {
	var st unix.Stat_t
	if err := unix.Fstatat(proc, pid+"/fd", &st, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0
		}
		return -1
	}
	return st.Size
}

// procScan holds the buffers one scan reuses.
type procScan struct {
	dirBuf, link, info []byte
	fds                []string
}

// names lists the entries of the open folder fd, appended to into.
func (sc *procScan) names(fd int, into []string) []string {
	for {
		n, err := unix.Getdents(fd, sc.dirBuf)
		if err != nil || n <= 0 {
			return into // an error ends the listing: what was read is used
		}
		_, _, into = unix.ParseDirent(sc.dirBuf[:n], -1, into)
	}
}

// fdWriters adds the matching descriptors of process pid to counts. Its fd
// folder is opened once and each link read relative to it: a path walk
// through /proc per descriptor cost most of a scan.
func (sc *procScan) fdWriters(proc int, pid string, inos map[uint64]bool, match func(string) bool, counts map[uint64]int) {
	dir, err := unix.Openat(proc, pid+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return // gone, or not ours to read
	}
	defer func() { _ = unix.Close(dir) }() // a folder: nothing to flush
	sc.fds = sc.names(dir, sc.fds[:0])
	for _, name := range sc.fds {
		n, err := unix.Readlinkat(dir, name, sc.link)
		if errors.Is(err, unix.EACCES) {
			return // the kernel lets a process's links be read all or none: not ours to read
		}
		if err != nil || !match(string(sc.link[:n])) {
			continue
		}
		ino, flags, ok := sc.fdInfo(proc, pid+"/fdinfo/"+name)
		if ok && inos[ino] && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			counts[ino]++
		}
	}
}

// fdInfo reads the inode number and open flags of one descriptor from its
// fdinfo file (rel below /proc).
func (sc *procScan) fdInfo(proc int, rel string) (ino uint64, flags int64, ok bool) {
	fd, err := unix.Openat(proc, rel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	n, err := unix.Read(fd, sc.info)
	_ = unix.Close(fd) // read only: nothing to flush
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	return parseFdInfo(string(sc.info[:n]))
}

// parseFdInfo takes the ino and flags fields of an fdinfo file's text
// (its first lines; the rest, such as a lock list, is not needed).
func parseFdInfo(text string) (ino uint64, flags int64, ok bool) {
	var haveIno, haveFlags bool
	for _, line := range strings.Split(text, "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "ino":
			ino, err = strconv.ParseUint(v, 10, 64)
			haveIno = err == nil
		case "flags":
			flags, err = strconv.ParseInt(v, 8, 64)
			haveFlags = err == nil
		}
	}
	return ino, flags, haveIno && haveFlags
}

// ownShim says whether the process named pid is one of this daemon's
// shims (exec.OwnShim), whose descriptors need no look.
func ownShim(pid string) bool {
	n, err := strconv.Atoi(pid)
	return err == nil && exec.OwnShim(n)
}

func isPID(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
