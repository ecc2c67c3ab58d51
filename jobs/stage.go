package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/exec/beneath"
)

// A run takes only the staged files whose writers have closed them. The
// mount tells the Manager about every staged file open for writing
// (StageOpen), and when it is written and flushed; a trigger leaves the
// busy ones in input/ for the next run and names them in the run's log,
// so no file is ever split between a run and the stage.
//
// FUSE sends FLUSH at close(2) but RELEASE later, asynchronously: a `cp`
// that returned may still hold a handle for a moment. A handle flushed
// since its last write is taken for closed unless a process still holds a
// descriptor of the file open for writing (ProcWriters); one written since
// its last flush, or never flushed, is busy.

// stageWriters is the Manager's table of staged files open for writing.
// The zero value is ready; its lock guards only the table.
type stageWriters struct {
	mu   sync.Mutex
	open map[string]map[uint64][]*StageWriter // job -> inode -> handles
}

// StageWriter is one handle of a staged file open for writing.
type StageWriter struct {
	s      *stageWriters
	job    string
	ino    uint64
	dirty  bool // written since the last flush, or never flushed
	closed bool
}

// stageOpen records a staged file (inode ino of job jobID's stage folder)
// opened for writing; the caller reports through the returned writer.
func (m *Manager) stageOpen(jobID string, ino uint64) *StageWriter {
	s := &m.stage
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[string]map[uint64][]*StageWriter{}
	}
	if s.open[jobID] == nil {
		s.open[jobID] = map[uint64][]*StageWriter{}
	}
	w := &StageWriter{s: s, job: jobID, ino: ino, dirty: true}
	s.open[jobID][ino] = append(s.open[jobID][ino], w)
	return w
}

// Wrote marks the file written since the last flush.
func (w *StageWriter) Wrote() { w.set(true) }

// Flushed marks a close(2) of one of the handle's descriptors.
func (w *StageWriter) Flushed() { w.set(false) }

func (w *StageWriter) set(dirty bool) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.dirty = dirty
}

// Closed drops the handle (RELEASE).
func (w *StageWriter) Closed() {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	hs := s.open[w.job][w.ino]
	for i, h := range hs {
		if h == w {
			hs = append(hs[:i], hs[i+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(s.open[w.job], w.ino)
	} else {
		s.open[w.job][w.ino] = hs
	}
	if len(s.open[w.job]) == 0 {
		delete(s.open, w.job)
	}
}

// busy returns the inodes of job's staged files that are still being
// written: dirty handles, and flushed ones some process still holds.
func (s *stageWriters) busy(job string) map[uint64]bool {
	s.mu.Lock()
	busy, clean := map[uint64]bool{}, map[uint64]bool{}
	for ino, hs := range s.open[job] {
		for _, h := range hs {
			if h.dirty {
				busy[ino] = true
			} else {
				clean[ino] = true
			}
		}
	}
	s.mu.Unlock()
	for ino := range busy {
		delete(clean, ino)
	}
	if len(clean) > 0 {
		held, complete := ProcWriters(clean, func(target string) bool { return strings.Contains(target, "/input/") })
		for ino := range clean {
			if held[ino] > 0 || !complete { // unknown: kept staged, as if written
				busy[ino] = true
			}
		}
	}
	return busy
}

// moveStaged moves the staged entries of jobID into dst (the run's input)
// and returns how many it moved and the paths left behind because they are
// open for writing. Entries are renamed, never copied; a folder holding a
// busy file is made anew in dst (same mode, owner and times) and its other
// entries moved.
func (m *Manager) moveStaged(jobID, dst string) (moved int, left []string, err error) {
	src := m.StageDir(jobID)
	if _, err := os.Lstat(src); os.IsNotExist(err) {
		return 0, nil, nil
	}
	busy := m.stage.busy(jobID)
	sfd, err := beneath.Open(src, "", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return 0, nil, fmt.Errorf("open staged input: %w", err)
	}
	defer beneath.CloseFd(sfd)
	dfd, err := beneath.Open(dst, "", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return 0, nil, fmt.Errorf("open run input: %w", err)
	}
	defer beneath.CloseFd(dfd)
	moved, err = moveEntries(sfd, dfd, "", busy, &left)
	return moved, left, err
}

// dropInputLinksOut is dropLinksOut for the input folder of run, each link
// it removes named in the run's log.
func (m *Manager) dropInputLinksOut(jobID string, run uint64, input string) error {
	out, err := dropLinksOut(input)
	for _, p := range out {
		m.appendRunLog(jobID, run, "jobfs: input/"+p+" is a symlink that leads out of input/: it was left out of the run")
	}
	return err
}

// dropLinksOut removes from a run's input folder, once its staged entries
// are in, every symlink that leads out of it, and returns their paths. A
// staged link is checked when it is made only as text, and renames, links
// to links and folders replaced by links can make one climb out after
// that (ln -s . d; ln -s d/d/../../../etc/shadow s): the step, which sees
// the folder as /input in a root holding /etc and /proc, would follow it
// as the job's owner. The run's input changes no more once moved (read-only
// in the tree and in the step), so a link that stays inside now stays.
func dropLinksOut(input string) (out []string, err error) {
	root, err := beneath.Open(input, "", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("open run input: %w", err)
	}
	defer beneath.CloseFd(root)
	err = beneath.Walk(input, "", func(rel string, d os.DirEntry) error {
		if d.Type()&os.ModeSymlink == 0 || !beneath.LeadsOut(root, rel) {
			return nil
		}
		pfd, err := beneath.Open(input, filepath.Dir(rel), unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			err = unix.Unlinkat(pfd, filepath.Base(rel), 0)
			beneath.CloseFd(pfd)
		}
		if err != nil {
			return fmt.Errorf("remove input/%s, a symlink that leads out of input/: %w", rel, err)
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("check the run's input for symlinks: %w", err)
	}
	return out, nil
}

// moveEntries moves every entry of the folder sfd into dfd but the busy
// files (and the folders that hold them), and returns how many entries of
// sfd went (a folder made anew counts); rel names sfd for the log.
func moveEntries(sfd, dfd int, rel string, busy map[uint64]bool, left *[]string) (moved int, err error) {
	names, err := dirNames(sfd)
	if err != nil {
		return 0, fmt.Errorf("read staged input/%s: %w", rel, err)
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return moved, fmt.Errorf("stat staged %s: %w", filepath.Join(rel, name), err)
		}
		p := filepath.Join(rel, name)
		holds := busy[st.Ino]
		if !holds && st.Mode&unix.S_IFMT == unix.S_IFDIR && len(busy) > 0 {
			holds = holdsBusy(sfd, name, busy)
		}
		switch {
		case !holds:
			if err := unix.Renameat(sfd, name, dfd, name); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // renamed or removed meanwhile: what is there now stays staged
				}
				return moved, fmt.Errorf("move staged %s: %w", p, err)
			}
			moved++
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			*left = append(*left, p)
		default:
			if err := splitFolder(sfd, dfd, name, p, &st, busy, left); err != nil {
				return moved, err
			}
			moved++
		}
	}
	return moved, nil
}

// splitFolder makes folder name anew in dfd and moves into it what the
// staged one holds but its busy files.
func splitFolder(sfd, dfd int, name, rel string, st *unix.Stat_t, busy map[uint64]bool, left *[]string) error {
	if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
		return fmt.Errorf("make run input/%s: %w", rel, err)
	}
	sub, err := beneath.Openat(sfd, name, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("open staged %s: %w", rel, err)
	}
	defer beneath.CloseFd(sub)
	dsub, err := beneath.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("open run input/%s: %w", rel, err)
	}
	defer beneath.CloseFd(dsub)
	if _, err := moveEntries(sub, dsub, rel, busy, left); err != nil {
		return err
	}
	// The staged folder's owner, mode and times (after the moves, which
	// change its mtime). They are copied as well as they can be: the
	// folder is already complete, so a failure here is dropped.
	_ = unix.Fchown(dsub, int(st.Uid), int(st.Gid))
	_ = unix.Fchmod(dsub, st.Mode&0o7777)
	_ = unix.UtimesNanoAt(dfd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

// holdsBusy reports whether folder name of sfd holds a busy file at any depth.
func holdsBusy(sfd int, name string, busy map[uint64]bool) bool {
	sub, err := beneath.Openat(sfd, name, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false
	}
	defer beneath.CloseFd(sub)
	names, err := dirNames(sub)
	if err != nil {
		return false
	}
	for _, n := range names {
		var st unix.Stat_t
		if unix.Fstatat(sub, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		if busy[st.Ino] || (st.Mode&unix.S_IFMT == unix.S_IFDIR && holdsBusy(sub, n, busy)) {
			return true
		}
	}
	return false
}

// dirNames lists the folder fd refers to (an O_PATH descriptor), sorted.
func dirNames(fd int) ([]string, error) {
	d, err := beneath.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "staged")
	defer func() { _ = f.Close() }() // read only: nothing to flush
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}
