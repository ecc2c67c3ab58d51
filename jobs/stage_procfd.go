package jobs

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
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
	return withinScanLimit(func() map[uint64]int { return procWriters(inos, match) })
}

// withinScanLimit runs scan, given up past procScanLimit (see there):
// complete is false then, and the counts nil.
func withinScanLimit(scan func() map[uint64]int) (counts map[uint64]int, complete bool) {
	done := make(chan map[uint64]int, 1) // buffered: a late scan never blocks
	go func() { done <- scan() }()
	t := time.NewTimer(procScanLimit)
	defer t.Stop()
	select {
	case c := <-done:
		return c, true
	case <-t.C:
		return nil, false
	}
}

// maxPidRate bounds how many process ids a machine hands out per second
// (each fork, clone and thread takes one), for ProcWritersSince's trust in
// its window: a wrap of the ids all the way round within it would need
// more.
const maxPidRate = 1_000_000

// PidMark is the last process id the kernel had handed out in this
// daemon's pid namespace (/proc/sys/kernel/ns_last_pid) at a moment: a
// process made later has a larger id, until the ids wrap at pid_max.
type PidMark struct {
	Last int       // 0: unknown
	At   time.Time // when it was read (with the monotonic clock)
}

// MarkPids reads the mark now, when a file is opened.
func MarkPids() PidMark {
	last, err := readProcInt("/proc/sys/kernel/ns_last_pid")
	if err != nil || last <= 0 {
		return PidMark{}
	}
	return PidMark{Last: last, At: time.Now()}
}

// pidMax is the kernel's pid_max, read once; 32768 (the smallest default,
// which makes ProcWritersSince trust its window the shortest time) when it
// cannot be read.
var pidMax = sync.OnceValue(func() int {
	if n, err := readProcInt("/proc/sys/kernel/pid_max"); err == nil && n > 0 {
		return n
	}
	return 32768
})

// readProcInt reads the number in a small /proc file by one open, read
// and close (MarkPids runs at every open of data for writing).
func readProcInt(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	var buf [32]byte
	n, err := unix.Read(fd, buf[:])
	_ = unix.Close(fd) // read only: nothing to flush
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(buf[:max(n, 0)])))
}

// ProcWritersSince is ProcWriters for a file opened after since by the
// processes openers (the callers of its opens, and of the close at hand).
// Only they can hold a descriptor of it (a dup), or a process made after
// since (fork copies the table, whether the child stays a child or is
// reparented): so only they and the processes with larger ids are looked
// at, and a machine's other processes cost nothing (the whole scan was
// 1 ms of CPU with 78 processes on a 2-core VM, and grows with the
// machine's processes). Not seen: a descriptor an older process received
// over a unix socket (SCM_RIGHTS) or took (pidfd_getfd); one in flight in
// a socket is not seen by the whole scan either. The whole scan is made
// when since is unknown, when an opener is gone (its process may live on
// in another thread), or when the ids may have wrapped all the way round
// since (more than pid_max / maxPidRate seconds ago: 4 s with a pid_max of
// 4194304, 33 ms with 32768).
func ProcWritersSince(inos map[uint64]bool, match func(target string) bool, since PidMark, openers []int) (counts map[uint64]int, complete bool) {
	w, ok := windowSince(since, openers)
	if !ok {
		return ProcWriters(inos, match)
	}
	gone := false // an opener: read once the scan has ended (the channel orders it)
	counts, complete = withinScanLimit(func() map[uint64]int {
		c, ok := procWritersIn(inos, match, &w)
		gone = !ok
		return c
	})
	if complete && gone {
		return ProcWriters(inos, match)
	}
	return counts, complete
}

// pidWindow is what ProcWritersSince looks at: the processes with ids
// handed out after from (wrapped: or up to to), and the openers' (thread)
// ids.
type pidWindow struct {
	from, to int
	wrapped  bool
	openers  []int
}

// made says whether id pid was handed out after the window's start.
func (w pidWindow) made(pid int) bool {
	return pid > w.from || (w.wrapped && pid <= w.to)
}

// maxProbed bounds the ids a window looks up one by one; a wider one is
// found by listing /proc (about 1 us a process). A lookup reads the id's
// status (20 us), whose Tgid says whose thread it is: /proc has an entry
// for every thread's id too, alike a process's but not listed, and its
// descriptor table is its process's, which must be counted once.
const maxProbed = 8

// windowSince is the window of a file opened after since by openers;
// false when only the whole scan can tell.
func windowSince(since PidMark, openers []int) (pidWindow, bool) {
	if since.Last <= 0 || time.Since(since.At) > time.Duration(pidMax())*time.Second/maxPidRate {
		return pidWindow{}, false
	}
	now := MarkPids()
	if now.Last <= 0 {
		return pidWindow{}, false
	}
	for _, id := range openers {
		if id <= 0 {
			return pidWindow{}, false // not known: who else holds what?
		}
	}
	return pidWindow{from: since.Last, to: now.Last, wrapped: now.Last < since.Last, openers: openers}, true
}

// procWriters is ProcWriters' scan, unbounded. It works with raw
// descriptors and buffers reused across processes: os.Open's poller
// registration, finalizers and sorted listings were most of the user CPU
// of a scan (BenchmarkProcWriters).
func procWriters(inos map[uint64]bool, match func(target string) bool) map[uint64]int {
	counts, _ := procWritersIn(inos, match, nil)
	return counts
}

// procWritersIn is procWriters of the processes of w, or of all when w is
// nil; false when an opener is gone (its process may live on in another
// thread): then only the whole scan can tell.
func procWritersIn(inos map[uint64]bool, match func(target string) bool, w *pidWindow) (map[uint64]int, bool) {
	counts := map[uint64]int{}
	proc, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return counts, true // no /proc: nothing can be seen
	}
	defer func() { _ = unix.Close(proc) }() // a folder: nothing to flush
	sc := procScan{dirBuf: make([]byte, 16<<10), link: make([]byte, 4096), info: make([]byte, 1024)}
	self := strconv.Itoa(os.Getpid())
	counted := fdCount(proc, self) > 0 // this process holds some (/proc itself)
	seen := map[string]bool{self: true}
	look := func(pid string) {
		if seen[pid] || ownShim(pid) {
			return
		}
		seen[pid] = true
		if counted && fdCount(proc, pid) == 0 {
			return // a kernel thread, a zombie, a process gone: nothing to list
		}
		sc.fdWriters(proc, pid, inos, match, counts)
	}
	if w != nil {
		for _, id := range w.openers {
			tgid := sc.tgid(proc, id)
			if tgid == "" {
				return nil, false
			}
			look(tgid)
		}
		if !w.wrapped && w.to-w.from <= maxProbed {
			for id := w.from + 1; id <= w.to; id++ {
				if tgid := sc.tgid(proc, id); tgid != "" {
					look(tgid) // a new thread's old process too: counted once, and rightly
				}
			}
			return counts, true
		}
	}
	for _, pid := range sc.names(proc, nil) {
		if !isPID(pid) {
			continue
		}
		if w != nil {
			if n, err := strconv.Atoi(pid); err != nil || !w.made(n) {
				continue
			}
		}
		look(pid)
	}
	return counts, true
}

// tgid is the process (thread group) id of thread id, from its status;
// "" when it is gone.
func (sc *procScan) tgid(proc, id int) string {
	fd, err := unix.Openat(proc, strconv.Itoa(id)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	n, err := unix.Read(fd, sc.info)
	_ = unix.Close(fd) // read only: nothing to flush
	if err != nil || n <= 0 {
		return ""
	}
	_, rest, ok := strings.Cut(string(sc.info[:n]), "\nTgid:")
	if !ok {
		return ""
	}
	tgid, _, _ := strings.Cut(rest, "\n")
	if tgid = strings.TrimSpace(tgid); !isPID(tgid) {
		return ""
	}
	return tgid
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
