package fs

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// envDir is config/env: one write-only file per secret. `ls` lists names,
// never values; reading a value is EACCES for everyone.
type envDir struct {
	gofs.Inode
	t     *tree
	jobID string
}

func (d *envDir) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	d.t.attr(a, syscall.S_IFDIR|0o700, d.t.start)
	return 0
}

func (d *envDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *envDir) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *envDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	names, err := d.t.m.EnvNames(d.jobID)
	if err != nil {
		return nil, toErrno(err)
	}
	ents := make([]fuse.DirEntry, len(names))
	for i, n := range names {
		ents[i] = fuse.DirEntry{Name: n, Mode: syscall.S_IFREG, Ino: ino(d.jobID, "config/env/"+n)}
	}
	return dirEntries(ents...), 0
}

func (d *envDir) child(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	node := &envFile{t: d.t, jobID: d.jobID, name: name}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFREG, ino(d.jobID, "config/env/"+name), out)
}

func (d *envDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !d.t.m.HasEnv(d.jobID, name) {
		return nil, syscall.ENOENT
	}
	return d.child(ctx, name, out)
}

// Create starts a new secret; its name is checked here (lower case only).
func (d *envDir) Create(ctx context.Context, name string, flags, _ uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return nil, nil, 0, errno
	}
	if err := jobs.CheckEnvName(name); err != nil {
		return nil, nil, 0, toErrno(d.t.m.Refuse(d.jobID, "config/env/"+name, "names are lower case: a-z, 0-9 and _, not starting with a digit, at most 64"))
	}
	in, errno := d.child(ctx, name, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, &envHandle{f: in.Operations().(*envFile)}, fuse.FOPEN_DIRECT_IO, 0
}

func (d *envDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.t.walking(ctx, d.jobID) {
		return 0 // the job is being deleted whole (walk.go)
	}
	return toErrno(d.t.m.DeleteEnv(d.jobID, name))
}

// envFile is one secret: mode --w-------, size 0.
type envFile struct {
	gofs.Inode
	t     *tree
	jobID string
	name  string
}

func (f *envFile) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	f.t.attr(a, syscall.S_IFREG|0o200, f.t.m.SettingTime(f.jobID, "config/env/"+f.name))
	return 0
}

func (f *envFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *envFile) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Open for reading is refused, for everyone, root included.
func (f *envFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if !isWrite(flags) || flags&syscall.O_ACCMODE == syscall.O_RDWR {
		return nil, 0, syscall.EACCES
	}
	if errno := f.t.need(ctx, f.jobID, jobs.RoleOwner); errno != 0 {
		return nil, 0, errno
	}
	return &envHandle{f: f}, fuse.FOPEN_DIRECT_IO, 0
}

// envHandle buffers a value and stores it sealed at the first flush after
// a write.
type envHandle struct {
	f       *envFile
	mu      sync.Mutex
	buf     []byte
	pending bool
	failed  bool
}

func (h *envHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed {
		return 0, syscall.EINVAL
	}
	end := jobs.MaxEnvValue + 2 // past the cap (a value and its newline): refused with its reason
	if fitsAt(off, len(data), jobs.MaxEnvValue+1) {
		end = int(off) + len(data)
	}
	if err := h.f.t.m.CheckEnvValue(h.f.jobID, h.f.name, end); err != nil {
		h.failed = true
		return 0, toErrno(err)
	}
	h.buf = writeAt(h.buf, data, off)
	h.pending = true
	return uint32(len(data)), 0
}

func (h *envHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending || h.failed {
		return 0
	}
	h.pending = false
	err := h.f.t.m.SetEnv(h.f.jobID, h.f.name, h.buf)
	clear(h.buf)
	h.buf = nil
	return toErrno(err)
}

func (h *envHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return h.Flush(ctx) }
