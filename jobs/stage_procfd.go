package jobs

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// ProcWriters counts, per inode number in inos, the descriptors open for
// writing in any process whose link target passes match. The descriptor a
// close(2) is ending is already gone from its table when FLUSH arrives.
func ProcWriters(inos map[uint64]bool, match func(target string) bool) map[uint64]int {
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
func procFDWriters(dir string, inos map[uint64]bool, match func(string) bool, counts map[uint64]int) {
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return // gone, or not ours to read
	}
	for _, fd := range fds {
		target, err := os.Readlink(dir + "/fd/" + fd.Name())
		if err != nil || !match(target) {
			continue
		}
		ino, flags, ok := fdInfo(dir + "/fdinfo/" + fd.Name())
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

// ProcWritersUnder is ProcWriters limited to the processes roots and their
// descendants: a descriptor a root opened can only be held by the root and
// the processes it forked (passing one over a socket is not followed). It
// reads each process's stat once to find the descendants and the
// descriptor tables of those alone, so a close costs a little per process
// on the machine instead of a readlink per descriptor of every process.
func ProcWritersUnder(roots []int, inos map[uint64]bool, match func(target string) bool) map[uint64]int {
	counts := map[uint64]int{}
	for pid := range descendants(roots) {
		procFDWriters("/proc/"+strconv.Itoa(pid), inos, match, counts)
	}
	return counts
}

// descendants returns roots and every live process below them, from the
// parent pids in /proc/<pid>/stat.
func descendants(roots []int) map[int]bool {
	out := map[int]bool{}
	for _, r := range roots {
		out[r] = true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	children := map[int][]int{}
	for _, p := range procs {
		if !isPID(p.Name()) {
			continue
		}
		pid, _ := strconv.Atoi(p.Name()) // digits only: isPID
		if ppid, ok := parentOf(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !out[c] {
				out[c] = true
				queue = append(queue, c)
			}
		}
	}
	return out
}

// parentOf reads the parent pid of pid: field 4 of /proc/<pid>/stat, after
// the command name in parentheses (which may hold spaces and parentheses).
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}
