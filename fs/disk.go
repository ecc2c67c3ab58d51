package fs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// diskDir is a read-only view of a folder on disk: a run's input/ and
// output/. Only folders and regular files are shown.
type diskDir struct {
	gofs.Inode
	t     *tree
	jobID string
	path  string
	seed  uint64 // mixed into children's inode numbers
}

func statAttr(t *tree, path string, a *fuse.Attr, perm uint32) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return gofs.ToErrno(err)
	}
	a.Size = uint64(st.Size)
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		a.Size = 4096
	}
	t.attr(a, st.Mode&syscall.S_IFMT|perm, timeOf(st.Mtim))
	a.Uid, a.Gid = st.Uid, st.Gid
	return 0
}

func (d *diskDir) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	return statAttr(d.t, d.path, a, 0o555)
}

func (d *diskDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *diskDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := os.ReadDir(d.path)
	if err != nil {
		return nil, toErrno(err)
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
	return ino(string(rune(d.seed)), d.path, name)
}

func (d *diskDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	p := filepath.Join(d.path, name)
	st, err := os.Lstat(p)
	if err != nil {
		return nil, toErrno(err)
	}
	mode, ok := shownMode(st.Mode().Type())
	if !ok {
		return nil, syscall.ENOENT
	}
	var node attrFiller = &diskFile{t: d.t, jobID: d.jobID, path: p}
	if mode == syscall.S_IFDIR {
		node = &diskDir{t: d.t, jobID: d.jobID, path: p, seed: d.childIno(name)}
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
// result.
type diskFile struct {
	gofs.Inode
	t     *tree
	jobID string
	path  string
}

func (f *diskFile) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	return statAttr(f.t, f.path, a, 0o444)
}

func (f *diskFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *diskFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if isWrite(flags) {
		return nil, 0, f.t.readOnly(ctx, f.EmbeddedInode(), f.jobID)
	}
	fd, err := syscall.Open(f.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, gofs.ToErrno(err)
	}
	return gofs.NewLoopbackFile(fd), 0, 0
}
