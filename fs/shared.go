package fs

import (
	"context"
	"sort"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// sharedDir is MOUNT/<job>/shared: one file per grant (public, @user,
// +group) whose content is its role (viewer or runner). Only the owner
// changes it; `touch shared/@bob` grants viewer.
type sharedDir struct {
	gofs.Inode
	t     *tree
	jobID string
}

// fill: the owner shares; the mtime is when a share was last added or
// revoked.
func (d *sharedDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, setting, d.t.m.SettingTime(d.jobID, jobs.TimeShares))
	return 0
}

func (d *sharedDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *sharedDir) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := d.t.attrsByOwner(ctx, d.jobID, in); errno != 0 {
		return errno
	}
	return d.fill(ctx, &out.Attr)
}

func (d *sharedDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	shares, err := d.t.m.Shares(d.jobID)
	if err != nil {
		return nil, toErrno(err)
	}
	names := make([]string, 0, len(shares))
	for n := range shares {
		names = append(names, n)
	}
	sort.Strings(names)
	ents := make([]fuse.DirEntry, len(names))
	for i, n := range names {
		ents[i] = fuse.DirEntry{Name: n, Mode: syscall.S_IFREG, Ino: ino(d.jobID, "shared/"+n)}
	}
	return dirEntries(d, ents...), 0
}

func (d *sharedDir) child(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	node := &shareFile{t: d.t, jobID: d.jobID, name: name}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFREG, ino(d.jobID, "shared/"+name), out)
}

func (d *sharedDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	shares, err := d.t.m.Shares(d.jobID)
	if err != nil {
		return nil, toErrno(err)
	}
	if _, ok := shares[name]; !ok {
		return nil, syscall.ENOENT
	}
	return d.child(ctx, name, out)
}

// Create grants a new share as viewer at once (touch); the role written
// next replaces it, and a refused one takes the new share back.
func (d *sharedDir) Create(ctx context.Context, name string, _, _ uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return nil, nil, 0, errno
	}
	w, err := d.t.m.CreateShareWrite(d.jobID, name)
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	in, errno := d.child(ctx, name, out)
	if errno != 0 {
		w.Close() // a share made here stays, logged as created (touch)
		return nil, nil, 0, errno
	}
	return in, &shareHandle{f: in.Operations().(*shareFile), w: w}, fuse.FOPEN_DIRECT_IO, 0
}

func (d *sharedDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.t.walking(ctx, d.jobID) {
		return 0 // the job is being deleted whole (walk.go)
	}
	return toErrno(d.t.m.DeleteShare(d.jobID, name))
}

// shareFile is one grant; it reads as its role.
type shareFile struct {
	gofs.Inode
	t     *tree
	jobID string
	name  string
}

func (f *shareFile) content() string {
	shares, _ := f.t.m.Shares(f.jobID)
	if r, ok := shares[f.name]; ok {
		return r + "\n"
	}
	return ""
}

// fill: the mtime is when its role was last set.
func (f *shareFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	a.Size = uint64(len(f.content()))
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, setting, f.t.m.SettingTime(f.jobID, jobs.TimeShares+f.name))
	return 0
}

func (f *shareFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Setattr accepts truncation (the shell's >) and times (touch).
func (f *shareFile) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.t.attrsByOwner(ctx, f.jobID, in); errno != 0 {
		return errno
	}
	return f.fill(ctx, &out.Attr)
}

func (f *shareFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		if errno := f.t.need(ctx, f.jobID, jobs.RoleOwner); errno != 0 {
			return nil, 0, errno
		}
		return &shareHandle{f: f, w: f.t.m.OpenShareWrite(f.jobID, f.name)}, fuse.FOPEN_DIRECT_IO, 0
	}
	return &shareHandle{f: f}, fuse.FOPEN_DIRECT_IO, 0
}

// shareHandle forwards a role written to a share to its write session
// (jobs.ShareWrite: validation, and the undo of a share Create made).
type shareHandle struct {
	f *shareFile
	w *jobs.ShareWrite // nil: opened read-only
}

func (h *shareHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(sliceAt([]byte(h.f.content()), dest, off)), 0
}

func (h *shareHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.w == nil {
		return 0, syscall.EBADF // opened read-only: the kernel sends no write
	}
	if err := h.w.Write(data, off); err != nil {
		return 0, toErrno(err)
	}
	return uint32(len(data)), 0
}

// Release logs a share created with nothing written (touch).
func (h *shareHandle) Release(ctx context.Context) syscall.Errno {
	if h.w != nil {
		h.w.Close()
	}
	return 0
}
