package jobs

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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

// procWriters is ProcWriters' scan, unbounded.
func procWriters(inos map[uint64]bool, match func(target string) bool) map[uint64]int {
	counts := map[uint64]int{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return counts // no /proc: nothing can be seen
	}
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		if p.Name() == self || !isPID(p.Name()) {
			continue
		}
		procFDWriters("/proc/"+p.Name(), inos, match, counts)
	}
	return counts
}

// procFDWriters adds the matching descriptors of one process to counts.
// Its fd folder is opened once and each link read relative to it: a path
// walk through /proc per descriptor cost most of a scan.
func procFDWriters(dir string, inos map[uint64]bool, match func(string) bool, counts map[uint64]int) {
	f, err := os.Open(dir + "/fd")
	if err != nil {
		return // gone, or not ours to read
	}
	defer func() { _ = f.Close() }() // a folder: nothing to flush
	names, err := f.Readdirnames(-1)
	if err != nil {
		return
	}
	buf := make([]byte, 4096)
	for _, name := range names {
		n, err := unix.Readlinkat(int(f.Fd()), name, buf)
		if err != nil || !match(string(buf[:n])) {
			continue
		}
		ino, flags, ok := fdInfo(dir + "/fdinfo/" + name)
		if ok && inos[ino] && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			counts[ino]++
		}
	}
}

// fdInfo reads the inode number and open flags of one descriptor.
func fdInfo(path string) (ino uint64, flags int64, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	var haveIno, haveFlags bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
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
