package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/exec/beneath"
	"github.com/jobfs/jobfs/jobs"
)

// diskDir is a read-only view of a folder on disk: a run's input/ and
// output/, a step's output/. Only folders and regular files are shown.
// Every path is resolved below the run's folder (root) without following a
// symlink (package beneath): a step may leave links there, or swap a folder
// for one after it was looked up, and the daemon must not follow them.
type diskDir struct {
	gofs.Inode
	t     *tree
	jobID string
	root  string // the run's folder: made by the daemon, no user can replace it
	rel   string // this folder, relative to root
	seed  uint64 // mixed into children's inode numbers
}

// beneathErrno is toErrno for package beneath: a symlink on the way (ELOOP)
// or a mount crossed (EXDEV) means the name is not there, as the tree
// shows no symlinks.
func beneathErrno(err error) syscall.Errno {
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EXDEV) {
		return syscall.ENOENT
	}
	return toErrno(err)
}

// lookStat fills a for a file or folder of job jobID on disk: size and
// times from st, owner and modes as look shows them to the caller (by p),
// and a regular file the owner may execute on disk stays executable for
// whoever may read it.
func (t *tree) lookStat(ctx context.Context, a *fuse.Attr, jobID string, st *unix.Stat_t, p perm) {
	typ := st.Mode & syscall.S_IFMT
	a.Size = uint64(st.Size)
	if typ == syscall.S_IFDIR {
		a.Size = 4096
	}
	t.look(ctx, a, jobID, typ, p, time.Unix(st.Mtim.Sec, st.Mtim.Nsec))
	if typ == syscall.S_IFREG && st.Mode&0o100 != 0 {
		a.Mode |= a.Mode & 0o444 >> 2
	}
}

// lookBeneath is lookStat for rel below root, through no symlink, when it
// is still of type typ: a name a step swapped for a link (or a folder for
// a file) is not there, as the tree shows neither.
func (t *tree) lookBeneath(ctx context.Context, a *fuse.Attr, jobID, root, rel string, typ uint32) syscall.Errno {
	st, err := beneath.Lstat(root, rel)
	if err != nil {
		return beneathErrno(err)
	}
	if st.Mode&syscall.S_IFMT != typ {
		return syscall.ENOENT
	}
	t.lookStat(ctx, a, jobID, &st, computed)
	return 0
}

func (d *diskDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	return d.t.lookBeneath(ctx, a, d.jobID, d.root, d.rel, syscall.S_IFDIR)
}

func (d *diskDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *diskDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := beneath.ReadDir(d.root, d.rel)
	if err != nil {
		return nil, beneathErrno(err)
	}
	var ents []fuse.DirEntry
	for _, e := range list {
		if mode, ok := shownMode(e.Type()); ok {
			ents = append(ents, fuse.DirEntry{Name: e.Name(), Mode: mode, Ino: d.childIno(e.Name())})
		}
	}
	return dirEntries(ents...), 0
}

func shownMode(t os.FileMode) (uint32, bool) {
	switch {
	case t.IsDir():
		return syscall.S_IFDIR, true
	case t.IsRegular():
		return syscall.S_IFREG, true
	}
	return 0, false
}

func (d *diskDir) childIno(name string) uint64 {
	return ino(strconv.FormatUint(d.seed, 16), d.root, d.rel, name)
}

func (d *diskDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	rel := filepath.Join(d.rel, name)
	st, err := beneath.Lstat(d.root, rel)
	if err != nil {
		return nil, beneathErrno(err)
	}
	mode := st.Mode & syscall.S_IFMT
	if mode != syscall.S_IFDIR && mode != syscall.S_IFREG {
		return nil, syscall.ENOENT // symlinks, FIFOs, devices: not shown
	}
	var node attrFiller = &diskFile{t: d.t, jobID: d.jobID, root: d.root, rel: rel}
	if mode == syscall.S_IFDIR {
		node = &diskDir{t: d.t, jobID: d.jobID, root: d.root, rel: rel, seed: d.childIno(name)}
	}
	return newChild(ctx, d.EmbeddedInode(), node, mode, d.childIno(name), out)
}

// Unlink and Rmdir change nothing: a run's files go with the run. Only
// the owner, who may delete the run, is told they succeeded.
func (d *diskDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

func (d *diskDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return d.t.need(ctx, d.jobID, jobs.RoleOwner)
}

// diskFile is a read-only file on disk: a run's input or output file, its
// result. Like diskDir, it is reached below the run's folder through no
// symlink, and opened only when it is a regular file.
type diskFile struct {
	gofs.Inode
	t     *tree
	jobID string
	root  string
	rel   string
}

func (f *diskFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	return f.t.lookBeneath(ctx, a, f.jobID, f.root, f.rel, syscall.S_IFREG)
}

func (f *diskFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *diskFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		return nil, 0, f.t.readOnly(ctx, f.EmbeddedInode(), f.jobID)
	}
	// O_NONBLOCK: a FIFO put in the file's place must not hang the daemon;
	// the type is checked before a byte is read.
	fd, err := beneath.Open(f.root, f.rel, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK)
	if err != nil {
		return nil, 0, beneathErrno(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		beneath.CloseFd(fd) // read only, refused
		return nil, 0, syscall.ENOENT
	}
	return gofs.NewLoopbackFile(fd), 0, 0
}
