package fs

import (
	"context"
	"errors"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// envDir is config/env: one file per secret. `ls` lists names; a read
// gives the secret's sealed form (jobs/sealed.go), never its value, to
// whoever may read the job's config; writing that form back restores it.
type envDir struct {
	gofs.Inode
	t     *tree
	jobID string
}

func (d *envDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, setting, d.t.m.SettingTime(d.jobID, jobs.TimeEnv))
	return 0
}

func (d *envDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *envDir) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := d.t.attrsByOwner(ctx, d.jobID, in); errno != 0 {
		return errno
	}
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
	return dirEntries(d, append(ents, d.temp().entries()...)...), 0
}

// temp gives config/env its temporary files (rsync's .name.XXXXXX, an
// editor's), which a rename makes a secret; other names are refused.
func (d *envDir) temp() tempDir {
	return tempDir{t: d.t, jobID: d.jobID, dir: "config/env/", target: envTarget{t: d.t, jobID: d.jobID}}
}

// envTarget is config/env as a tempTarget: the secrets set, written and
// read as their sealed form.
type envTarget struct {
	t     *tree
	jobID string
}

func (e envTarget) isTarget(name string) bool { return jobs.CheckEnvName(name) == nil }

func (e envTarget) writeTarget(name, content string) error {
	return e.t.m.WriteEnv(e.jobID, name, []byte(content))
}

func (e envTarget) readTarget(name string) (string, error) { return e.t.m.SealedEnv(e.jobID, name) }

// Rename supports rsync's and editors' write-then-rename.
func (d *envDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if newParent.EmbeddedInode() != d.EmbeddedInode() {
		return syscall.EXDEV
	}
	if handled, errno := d.temp().rename(name, newName, nil); handled {
		return errno
	}
	return renameRefused(d.t.m.Refuse(d.jobID, "config/env/"+name, "secrets cannot be renamed: set the new name, then remove the old one"))
}

func (d *envDir) child(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	node := &envFile{t: d.t, jobID: d.jobID, name: name}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFREG, ino(d.jobID, "config/env/"+name), out)
}

func (d *envDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !d.t.m.HasEnv(d.jobID, name) || d.t.temps.unlinkedBy(ctx, d.jobID, "config/env/"+name) {
		return d.temp().lookup(ctx, d.EmbeddedInode(), name, out)
	}
	return d.child(ctx, name, out)
}

// Create starts a new secret; its name is checked here (lower case only).
// A name tools use for a temporary file makes one (temp.go).
func (d *envDir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return nil, nil, 0, errno
	}
	if err := jobs.CheckEnvName(name); err != nil {
		return d.temp().create(ctx, d.EmbeddedInode(), name, mode, out, func() error {
			return d.t.m.Refuse(d.jobID, "config/env/"+name, "names are lower case: a-z, 0-9 and _, not starting with a digit, at most 64")
		})
	}
	d.t.temps.created(d.jobID, "config/env/"+name)
	in, errno := d.child(ctx, name, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f, ok := in.Operations().(*envFile)
	if !ok {
		return nil, nil, 0, syscall.EIO // another node holds the secret's inode number: a bug
	}
	h, errno := f.openWrite(ctx)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, h, fuse.FOPEN_DIRECT_IO, 0
}

func (d *envDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.temp().unlink(name) {
		return 0
	}
	if d.t.walking(ctx, d.jobID) {
		// The job is being deleted whole (walk.go), or a tool such as
		// tar -C job replaces the file: to it alone the name is gone.
		d.t.temps.markUnlinked(ctx, d.jobID, "config/env/"+name)
		return 0
	}
	return toErrno(d.t.m.DeleteEnv(d.jobID, name))
}

// envFile is one secret: readable as its sealed form, its size that form's.
type envFile struct {
	gofs.Inode
	t     *tree
	jobID string
	name  string
}

func (f *envFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	a.Size = uint64(f.t.m.SealedEnvSize(f.jobID, f.name)) // a read gives the sealed form (sealed.go)
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, setting, f.t.m.SettingTime(f.jobID, jobs.TimeEnv+f.name))
	return 0
}

func (f *envFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *envFile) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.t.attrsByOwner(ctx, f.jobID, in); errno != 0 {
		return errno
	}
	return f.fill(ctx, &out.Attr)
}

// Open for reading gives the sealed form, to whoever may read the job (a
// viewer too: it opens nowhere else); writing needs the owner.
func (f *envFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if !isWrite(flags) {
		if _, err := f.t.m.SealedEnv(f.jobID, f.name); err != nil {
			return nil, 0, toErrno(err)
		}
		return &envHandle{f: f}, fuse.FOPEN_DIRECT_IO | noFlush, 0
	}
	if errno := f.t.need(ctx, f.jobID, jobs.RoleOwner); errno != 0 {
		return nil, 0, errno
	}
	h, errno := f.openWrite(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// envHandleCharge is what an open env write handle reserves in its
// caller's budget: the largest sealed form it may be sent.
var envHandleCharge = int64(jobs.MaxSealedText)

// openWrite makes a write handle, counted and charged in the caller's
// budget (EMFILE, ENOSPC past it, with the reason in the job log).
func (f *envFile) openWrite(ctx context.Context) (*envHandle, syscall.Errno) {
	uid := f.t.callerUID(ctx)
	b := &f.t.temps.budget
	err := b.open(uid)
	if err == nil {
		if err = b.reserve(uid, envHandleCharge); err != nil {
			b.close(uid)
		}
	}
	if err != nil {
		var le *limitError
		if errors.As(err, &le) {
			_ = f.t.m.Refuse(f.jobID, "config/env/"+f.name, le.reason) // the line matters; the errno is le's
		}
		return nil, toErrno(err)
	}
	return &envHandle{f: f, uid: uid, counted: true}, 0
}

// envHandle buffers a value (or a sealed form) and stores it at the first
// flush after a write. Reads render the sealed form at each call, so a
// reader holds no memory.
type envHandle struct {
	f       *envFile
	uid     uint32 // whose budget a write handle is counted in
	counted bool
	mu      sync.Mutex
	buf     []byte
	pending bool
	failed  bool
}

func (h *envHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	writing := h.buf != nil
	h.mu.Unlock()
	if writing {
		return nil, syscall.EBADF // a value being written is never read back
	}
	v, err := h.f.t.m.SealedEnv(h.f.jobID, h.f.name)
	if err != nil {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(sliceAt([]byte(v), dest, off)), 0
}

func (h *envHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed {
		return 0, syscall.EINVAL
	}
	head := h.buf
	if off == 0 || len(head) == 0 {
		head = data
	}
	end := jobs.MaxSealedText + 1 // past every cap: refused with its reason
	if fitsAt(off, len(data), int64(jobs.MaxSealedText)) {
		end = max(int(off)+len(data), len(h.buf))
	}
	if err := h.f.t.m.CheckEnvWrite(h.f.jobID, h.f.name, head, end); err != nil {
		h.failed = true
		return 0, toErrno(err)
	}
	h.buf = writeAt(h.buf, data, off)
	if err := h.f.t.m.CheckSealedForm(h.f.jobID, h.f.name, h.buf); err != nil {
		h.failed = true
		return 0, toErrno(err)
	}
	h.pending = true
	return uint32(len(data)), 0
}

// Flush stores what was written: a sealed form is restored, anything else
// sealed as a new value (jobs.WriteEnv).
func (h *envHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending || h.failed {
		return 0
	}
	h.pending = false
	err := h.f.t.m.WriteEnv(h.f.jobID, h.f.name, h.buf)
	clear(h.buf)
	h.buf = nil
	return toErrno(err)
}

func (h *envHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return h.Flush(ctx) }

// Release gives back what a write handle holds in the budget.
func (h *envHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.buf)
	h.buf = nil
	if h.counted {
		h.counted = false
		h.f.t.temps.budget.release(h.uid, envHandleCharge)
		h.f.t.temps.budget.close(h.uid)
	}
	return 0
}
