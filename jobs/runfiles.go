package jobs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/exec/beneath"
)

// ReadFile is a file of a job or run opened for reading: its log, a step's
// log, an input or output file, its result. The file system reads it at
// offsets and closes it; it never sees a path, so a remote executor can
// serve the same tree. The local implementation is an *os.File: its
// descriptor (syscall.Conn) lets FUSE passthrough hand a finished file to
// the kernel, and it seeks (io.Seeker: SEEK_DATA, SEEK_HOLE).
type ReadFile interface {
	io.ReaderAt
	io.Closer
}

// Every file of a run is reached below the run's folder, which the daemon
// made, through no symlink and no mount (package beneath): a step may leave
// links there or swap a folder for one after it was looked up. A symlink
// or a mount on the way (ELOOP, EXDEV) is answered as ENOENT: the tree
// shows neither.

// beneathErr turns beneath's ELOOP and EXDEV into ENOENT.
func beneathErr(err error) error {
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EXDEV) {
		return syscall.ENOENT
	}
	return err
}

// StatRunFile describes rel below run's folder (a symlink as the last name
// is described, not followed).
func (m *Manager) StatRunFile(jobID string, run uint64, rel string) (unix.Stat_t, error) {
	st, err := beneath.Lstat(m.RunDir(jobID, run), rel)
	return st, beneathErr(err)
}

// ReadRunDir lists the folder rel below run's folder, sorted by name, each
// entry with its lstat (a hard link's inode and count, see fs/disk.go).
func (m *Manager) ReadRunDir(jobID string, run uint64, rel string) ([]beneath.DirStat, error) {
	ents, err := beneath.ReadDirStat(m.RunDir(jobID, run), rel)
	return ents, beneathErr(err)
}

// ReadRunLink returns the target of the symlink rel below run's folder (a
// step's output may hold one); it is never followed.
func (m *Manager) ReadRunLink(jobID string, run uint64, rel string) ([]byte, error) {
	if in, ok := strings.CutPrefix(rel, "input/"); ok { // a run kept from before dropLinksOut may hold one
		if fd, err := beneath.Open(m.RunDir(jobID, run), "input", unix.O_PATH|unix.O_DIRECTORY); err == nil {
			out := beneath.LeadsOut(fd, in)
			beneath.CloseFd(fd)
			if out {
				return nil, syscall.EPERM
			}
		}
	}
	target, err := beneath.Readlink(m.RunDir(jobID, run), rel)
	return target, beneathErr(err)
}

// OpenRunFile opens the regular file rel below run's folder for reading;
// anything else in its place (a FIFO a step left, a device) is ENOENT.
func (m *Manager) OpenRunFile(jobID string, run uint64, rel string) (ReadFile, error) {
	return openRegular(m.RunDir(jobID, run), rel)
}

// OpenLog opens a log for reading: the job's event log (run 0, rel ""),
// a run's log (rel "") or a step's (rel is the step's Log). A log not
// written yet is ENOENT.
func (m *Manager) OpenLog(jobID string, run uint64, rel string) (ReadFile, error) {
	root, rel := m.logPlace(jobID, run, rel)
	return openRegular(root, rel)
}

// StatLog describes a log as OpenLog names it; ok is false while it is
// not there (no line written yet) or is not a regular file.
func (m *Manager) StatLog(jobID string, run uint64, rel string) (st unix.Stat_t, ok bool) {
	root, rel := m.logPlace(jobID, run, rel)
	st, err := beneath.Lstat(root, rel)
	return st, err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
}

// logPlace is the folder a log is reached below, and its name there.
func (m *Manager) logPlace(jobID string, run uint64, rel string) (root, name string) {
	switch {
	case run == 0:
		return m.jobDir(jobID), "log"
	case rel == "":
		return m.RunDir(jobID, run), "log"
	}
	return m.RunDir(jobID, run), rel
}

// openRegular opens rel below root for reading, with O_NOFOLLOW and
// O_NONBLOCK (a FIFO put in its place must not hang the daemon), and
// keeps it only when it is a regular file.
func openRegular(root, rel string) (ReadFile, error) {
	fd, err := beneath.Open(root, rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return nil, beneathErr(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		beneath.CloseFd(fd) // read only, refused
		return nil, syscall.ENOENT
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// Statfs describes the filesystem of the state folder, which holds
// everything the tree stores (runs, staged input, the store): what `df`
// should show anywhere in the mount.
func (m *Manager) Statfs(st *syscall.Statfs_t) error {
	return syscall.Statfs(m.StateDir(), st)
}
