// Package beneath opens, stats and lists paths below a trusted folder
// without following any symbolic link.
//
// A run's folders hold what its step wrote, and a step may leave symlinks
// there (to /etc/shadow, to the daemon's master key) or swap a folder for a
// link after the daemon looked it up. A daemon running as root must never
// follow one on a user's behalf, so every path below a run folder is
// resolved with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV: a link anywhere on the way, a
// ".." that climbs out or a mount crossed fails with ELOOP or EXDEV instead
// of being followed. The root itself must be a folder no user can replace
// (one the daemon made, inside its 0700 state folder).
package beneath

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// Openat opens rel below the folder dirfd refers to with flags (O_CLOEXEC
// is added) and returns the descriptor.
func Openat(dirfd int, rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: 0, Resolve: resolve})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue // EAGAIN: a rename raced the lookup; try again
		}
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: rel, Err: err}
		}
		return fd, nil
	}
}

// Open opens rel below root with flags and returns the descriptor.
func Open(root, rel string, flags int) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer CloseFd(rfd)
	return Openat(rfd, rel, flags)
}

// CloseFd closes a descriptor opened with O_PATH or for reading only:
// such a close has nothing to flush, so its error is dropped.
func CloseFd(fd int) { _ = unix.Close(fd) }

// OpenFile is Open returning an *os.File named root/rel.
func OpenFile(root, rel string, flags int) (*os.File, error) {
	fd, err := Open(root, rel, flags)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// Lstat returns the attributes of rel below root; a symlink as the last
// component is described, not followed, and one on the way is an error.
func Lstat(root, rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := Open(root, rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return st, err
	}
	defer CloseFd(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, &os.PathError{Op: "fstat", Path: rel, Err: err}
	}
	return st, nil
}

// ReadDir lists the folder rel below root, sorted by name, like
// os.ReadDir. Use the entries' Name and Type only: their Info looks the
// path up again, through any link on the way; Lstat does not.
func ReadDir(root, rel string) ([]os.DirEntry, error) {
	f, err := OpenFile(root, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	ents, err := f.ReadDir(-1)
	slices.SortFunc(ents, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// DirStat is an entry of a folder with its attributes (lstat: a symlink
// is described, not followed).
type DirStat struct {
	Name string
	Stat unix.Stat_t
}

// ReadDirStat is ReadDir with each entry's attributes, read relative to
// the folder's own descriptor, so never through a path that may change
// meanwhile; an entry removed meanwhile is left out.
func ReadDirStat(root, rel string) ([]DirStat, error) {
	f, err := OpenFile(root, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	fd := int(f.Fd())
	out := make([]DirStat, 0, len(names))
	for _, n := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // removed meanwhile
		}
		out = append(out, DirStat{Name: n, Stat: st})
	}
	return out, nil
}

// Walk calls fn for every entry below the folder rel of root, depth first
// in name order, with the entry's path relative to root. Folders are
// entered, symlinks and other entries are passed to fn and never followed.
func Walk(root, rel string, fn func(rel string, d os.DirEntry) error) error {
	ents, err := ReadDir(root, rel)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(rel, e.Name())
		if err := fn(p, e); err != nil {
			return err
		}
		if e.IsDir() {
			if err := Walk(root, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// LeadsOut reports whether the symlink rel below the folder dirfd leads
// out of that folder when followed (its target, or a symlink on the way,
// climbs above it or is absolute), as the kernel would resolve it with the
// folder as the root of its view. It fails closed: only a resolution that
// ends inside, or stops at a name that is not there (ENOENT, ENOTDIR) or
// in a loop (ELOOP), is inside. A confined ".." answers EAGAIN when any
// rename happened on the machine meanwhile, which any user can cause at
// will: that is tried again, a few times, then taken as leading out.
func LeadsOut(dirfd int, rel string) bool {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	for range 16 {
		fd, err := unix.Openat2(dirfd, rel, how)
		switch {
		case err == nil:
			CloseFd(fd)
			return false
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
			return false
		}
		return true
	}
	return true
}

// Readlink returns the target of the symlink rel below root, read from
// the link itself: nothing is followed, the target is only text.
func Readlink(root, rel string) ([]byte, error) {
	fd, err := Open(root, rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer CloseFd(fd)
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return nil, &os.PathError{Op: "readlink", Path: rel, Err: err}
	}
	return buf[:n], nil
}
