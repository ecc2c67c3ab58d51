package fs

import (
	"bytes"
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dotJobfs is the name of MOUNT/.jobfs, the overview of every job the
// caller may see: status, events, metrics. No job can take the name: job
// names start with a letter or digit.
const dotJobfs = ".jobfs"

// dotDir is MOUNT/.jobfs. Its files are not below a job: each answers for
// the caller who reads, from the jobs that caller may see (root: all).
type dotDir struct {
	gofs.Inode
	t *tree
}

func (d *dotDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	d.t.attr(a, syscall.S_IFDIR|0o555, d.t.start)
	return 0
}

func (d *dotDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

// Readdir lists status and metrics; events is left out, like a run's
// stream, so that find, grep -r, cp -r and rsync never block on it.
func (d *dotDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return dirEntries(d,
		fuse.DirEntry{Name: "metrics", Mode: syscall.S_IFREG, Ino: ino(dotJobfs, "metrics")},
		fuse.DirEntry{Name: "status", Mode: syscall.S_IFREG, Ino: ino(dotJobfs, "status")},
	), 0
}

func (d *dotDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	var node attrFiller
	switch name {
	case "status":
		node = &snapshotFile{t: d.t, render: d.t.renderStatus}
	case "metrics":
		node = &snapshotFile{t: d.t, render: d.t.renderMetrics}
	case "events":
		node = &eventsFile{t: d.t}
	default:
		return nil, syscall.ENOENT
	}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFREG, ino(dotJobfs, name), out)
}

// snapshotFile is a file of .jobfs whose content is made for the caller
// at each open (status, metrics). It shows size 0, like a file of /proc:
// tools read it to its end (cat, grep, cp), and tar or rsync of the mount
// store it empty instead of reading a size that changes under them.
type snapshotFile struct {
	gofs.Inode
	t      *tree
	render func(ctx context.Context, w *bytes.Buffer) error
}

// fill: read-only for everyone, its time the mount's start (stable, so a
// walk never sees it change while it reads).
func (f *snapshotFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	f.t.attr(a, syscall.S_IFREG|0o444, f.t.start)
	return 0
}

func (f *snapshotFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *snapshotFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if isWrite(flags) {
		return nil, 0, syscall.EACCES
	}
	var b bytes.Buffer
	if err := f.render(ctx, &b); err != nil {
		return nil, 0, toErrno(err)
	}
	return &snapshotHandle{content: b.Bytes()}, fuse.FOPEN_DIRECT_IO | noFlush, 0
}

// snapshotHandle holds what its open made, so reads in pieces agree.
type snapshotHandle struct{ content []byte }

func (h *snapshotHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(sliceAt(h.content, dest, off)), 0
}

// renderMetrics writes the Prometheus exposition the caller may see: on a
// shared mount, series of another owner's runs are left out (root sees
// all).
func (t *tree) renderMetrics(ctx context.Context, w *bytes.Buffer) error {
	return t.m.WriteMetrics(w, t.caller(ctx), !t.multi)
}

// Nothing is made or removed in .jobfs: its files are the daemon's.
func (d *dotDir) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EPERM }

func (d *dotDir) Mkdir(ctx context.Context, name string, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (d *dotDir) Create(ctx context.Context, name string, _, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

// statfs and access(2) answer as everywhere in the mount (statfs.go,
// access.go): the state folder's filesystem, and the modes fill shows.
func (d *dotDir) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno { return d.t.statfs(out) }
func (f *snapshotFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}
func (f *eventsFile) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	return f.t.statfs(out)
}

func (d *dotDir) Access(ctx context.Context, mask uint32) syscall.Errno {
	return d.t.access(ctx, d, mask)
}
func (f *snapshotFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}
func (f *eventsFile) Access(ctx context.Context, mask uint32) syscall.Errno {
	return f.t.access(ctx, f, mask)
}
