package fs

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Deleting a whole job. rm -r, rm -rf, find -delete, Python's rmtree, file
// managers and mv (after copying the job out) empty a folder entry by entry
// before they rmdir it, and any of them can stop half way: a run starts (the
// job's rmdir is then refused), a run folder vanishes under retention, the
// command is interrupted. Had each removal inside the job taken effect, such
// a job would be left gutted: settings reset, runs gone, shares revoked.
//
// So a process that removes something inside a job while it holds the job
// folder itself open (every recursive deleter does: it is reading that
// folder) is walking the job: from then on, until it exits, every removal
// it makes inside that job is accepted and changes nothing, and the job's
// own rmdir deletes it whole, or is refused and leaves it untouched. A
// removal by any other process (`rm config/timeout`, `rm -r runs/7`, with
// the job folder not open) acts as the README says. The process stays a
// walker after the folder is closed because deep walks close it (GNU rm
// keeps at most a few ancestors open) before they rmdir runs/<id>.

// walks remembers, per job id, the processes walking that job.
type walks struct {
	mu   sync.Mutex
	jobs map[string]map[proc]bool
}

// proc identifies a process across pid reuse: its pid and start time.
type proc struct {
	pid   int
	start string // field 22 of /proc/<pid>/stat, in clock ticks since boot
}

// walking reports whether the caller removes inside job jobID as part of
// deleting the whole job (see above).
func (t *tree) walking(ctx context.Context, jobID string) bool {
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return false
	}
	p, ok := procOf(int(c.Pid))
	if !ok {
		return false
	}
	if t.walks.has(jobID, p) {
		return true
	}
	if !holdsOpen(p.pid, ino(jobID)) {
		return false
	}
	t.walks.add(jobID, p)
	return true
}

func (w *walks) has(jobID string, p proc) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.jobs[jobID][p]
}

// add records p as walking jobID and forgets the job's walkers that have
// exited, so the set holds live processes only.
func (w *walks) add(jobID string, p proc) {
	w.mu.Lock()
	set := w.jobs[jobID]
	old := make([]proc, 0, len(set))
	for q := range set {
		old = append(old, q)
	}
	w.mu.Unlock()
	var gone []proc // read /proc without the lock
	for _, q := range old {
		if now, ok := procOf(q.pid); !ok || now != q {
			gone = append(gone, q)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.jobs == nil {
		w.jobs = map[string]map[proc]bool{}
	}
	if w.jobs[jobID] == nil {
		w.jobs[jobID] = map[proc]bool{}
	}
	for _, q := range gone {
		delete(w.jobs[jobID], q)
	}
	w.jobs[jobID][p] = true
}

// dropJob forgets the walkers of a deleted job.
func (w *walks) dropJob(jobID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.jobs, jobID)
}

// procOf returns the process (thread group) that thread tid belongs to:
// FUSE names the calling thread, and a file manager may list a folder in
// one thread and delete in another.
func procOf(tid int) (proc, bool) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return proc{}, false
	}
	pid := 0
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Tgid:"); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	if pid <= 0 {
		return proc{}, false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// fields after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return proc{}, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 { // fields 3..22
		return proc{}, false
	}
	return proc{pid: pid, start: fields[19]}, true
}

// holdsOpen reports whether process pid has a file open whose inode number
// is want. /proc/<pid>/fdinfo gives it without a call into the mount (a stat
// of /proc/<pid>/fd/N would be one). Inode numbers of this file system are
// 64-bit hashes, so another file system's match is not a concern.
func holdsOpen(pid int, want uint64) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fdinfo/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	wantLine := "ino:\t" + strconv.FormatUint(want, 10) + "\n"
	for _, e := range ents {
		b, err := os.ReadFile(dir + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if strings.Contains(string(b), wantLine) {
			return true
		}
	}
	return false
}
