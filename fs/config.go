package fs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// configDir is MOUNT/<job>/config, or a folder below it (config/limits):
// one file per setting whose path starts with prefix.
type configDir struct {
	gofs.Inode
	t      *tree
	jobID  string
	prefix string // "config/" or "config/limits/"
}

func (d *configDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	d.t.look(ctx, a, d.jobID, syscall.S_IFDIR, setting, d.t.keysChanged(d.jobID, d.prefix, jobs.TimeEnv))
	return 0
}

func (d *configDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *configDir) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := d.t.attrsByOwner(ctx, d.jobID, in); errno != 0 {
		return errno
	}
	return d.fill(ctx, &out.Attr)
}

// entries lists the settings and sub-folders directly below the prefix.
func (d *configDir) entries() []fuse.DirEntry {
	var ents []fuse.DirEntry
	seen := map[string]bool{}
	for _, path := range jobs.SettingPaths() {
		rest, ok := strings.CutPrefix(path, d.prefix)
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		if seen[name] {
			continue
		}
		seen[name] = true
		mode := uint32(syscall.S_IFREG)
		if isDir {
			mode = syscall.S_IFDIR
		}
		ents = append(ents, fuse.DirEntry{Name: name, Mode: mode, Ino: ino(d.jobID, d.prefix+name)})
	}
	if d.prefix == "config/" {
		ents = append(ents, fuse.DirEntry{Name: "env", Mode: syscall.S_IFDIR, Ino: ino(d.jobID, "config/env")})
	}
	return ents
}

// temp gives config/ its temporary files: any name that is not a setting.
func (d *configDir) temp() tempDir {
	return tempDir{t: d.t, jobID: d.jobID, dir: d.prefix, anyName: true,
		target: settingTarget{t: d.t, jobID: d.jobID, dir: d.prefix, is: d.isSetting}}
}

func (d *configDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return dirEntries(d, append(d.entries(), d.temp().entries()...)...), 0
}

func (d *configDir) isSetting(name string) bool {
	_, ok := jobs.SettingFor(d.prefix + name)
	return ok
}

// Rename supports the tools' write-then-rename (see temp.go).
func (d *configDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if newParent.EmbeddedInode() != d.EmbeddedInode() {
		return syscall.EXDEV
	}
	if d.isFolder(newName) {
		return syscall.EISDIR
	}
	if handled, errno := d.temp().rename(name, newName, d.isSetting); handled {
		return errno
	}
	return renameRefused(d.t.m.Refuse(d.jobID, d.prefix+name, "settings cannot be renamed"))
}

func (d *configDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.prefix == "config/" && name == "env" {
		if errno := d.t.need(ctx, d.jobID, jobs.Viewer); errno != 0 {
			return nil, errno
		}
		return newChild(ctx, d.EmbeddedInode(), &envDir{t: d.t, jobID: d.jobID}, syscall.S_IFDIR, ino(d.jobID, "config/env"), out)
	}
	for _, e := range d.entries() {
		if e.Name != name {
			continue
		}
		path := d.prefix + name
		if e.Mode != syscall.S_IFDIR && d.t.temps.unlinkedBy(ctx, d.jobID, path) {
			return nil, syscall.ENOENT // removed by this caller, which may now create it (O_EXCL)
		}
		if e.Mode == syscall.S_IFDIR {
			return newChild(ctx, d.EmbeddedInode(), &configDir{t: d.t, jobID: d.jobID, prefix: path + "/"}, syscall.S_IFDIR, e.Ino, out)
		}
		return newChild(ctx, d.EmbeddedInode(), &settingFile{t: d.t, jobID: d.jobID, path: path}, syscall.S_IFREG, e.Ino, out)
	}
	return d.temp().lookup(ctx, d.EmbeddedInode(), name, out)
}

// Unlink resets a setting to its default (novem's DELETE), except inside
// a job being deleted whole, where it changes nothing (walk.go).
func (d *configDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.temp().unlink(name) {
		return 0
	}
	path := d.prefix + name
	if _, ok := jobs.SettingFor(path); !ok {
		return syscall.ENOENT
	}
	// To the caller the name is gone now (see temps.unlinked), also when
	// it holds the job open (tar -C job, walk.go) and nothing is reset.
	if !d.t.walking(ctx, d.jobID) {
		if err := d.t.m.ResetSetting(d.jobID, path); err != nil {
			return toErrno(err)
		}
	}
	d.t.temps.markUnlinked(ctx, d.jobID, path)
	return 0
}

// Rmdir of a sub-folder (config/limits) is accepted and changes nothing,
// so that `rm -rf` reaches the job folder.
func (d *configDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if d.t.walking(ctx, d.jobID) || d.prefix == "config/" && name == "env" {
		return 0 // rm -rf: the job goes whole, or the secrets went one by one
	}
	for _, e := range d.entries() {
		if e.Name == name && e.Mode == syscall.S_IFDIR {
			if d.t.m.Busy(d.jobID) {
				return syscall.EBUSY
			}
			return 0
		}
	}
	return syscall.ENOENT
}

// Create of a setting's name opens it for writing, empty: `install` and
// `cp --remove-destination` unlink the file (a reset) and then create it.
// Any other name is a temporary file (temp.go).
func (d *configDir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return nil, nil, 0, errno
	}
	if d.isSetting(name) {
		return d.createSetting(ctx, name, flags, out)
	}
	if d.isFolder(name) {
		return nil, nil, 0, syscall.EISDIR
	}
	if !isTempName(name) {
		d.t.m.NoteTemp(d.jobID, d.prefix+name) // a mistyped setting name shows in the log
	}
	return d.temp().create(ctx, d.EmbeddedInode(), name, mode, out, func() error {
		return d.t.m.Refuse(d.jobID, d.prefix+name, "no such setting")
	})
}

func (d *configDir) createSetting(ctx context.Context, name string, flags uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	path := d.prefix + name
	d.t.temps.created(d.jobID, path)
	in, errno := newChild(ctx, d.EmbeddedInode(), &settingFile{t: d.t, jobID: d.jobID, path: path}, syscall.S_IFREG, ino(d.jobID, path), out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f, ok := in.Operations().(*settingFile)
	if !ok {
		return nil, nil, 0, syscall.EIO // another node holds the setting's inode number: a bug
	}
	h, errno := f.openWrite(ctx, flags|syscall.O_TRUNC)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, h, fuse.FOPEN_DIRECT_IO, 0
}

// isFolder reports whether name is a folder of this one (env, limits).
func (d *configDir) isFolder(name string) bool {
	for _, e := range d.entries() {
		if e.Name == name && e.Mode == syscall.S_IFDIR {
			return true
		}
	}
	return false
}

func (d *configDir) Mkdir(ctx context.Context, name string, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.RoleOwner); errno != 0 {
		return nil, errno
	}
	return nil, toErrno(d.t.m.Refuse(d.jobID, d.prefix+name, "no such setting folder"))
}

// settingFile is one setting: config/type, config/script, description ...
type settingFile struct {
	gofs.Inode
	t     *tree
	jobID string
	path  string // below the job folder

	mu      sync.Mutex
	writers map[*settingHandle]bool // open write handles
}

func (f *settingFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	v, err := f.t.m.ReadSetting(f.jobID, f.path)
	if err != nil {
		return toErrno(err)
	}
	a.Size = uint64(len(v))
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, setting, f.t.m.SettingFileTime(f.jobID, f.path))
	return 0
}

func (f *settingFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*settingHandle); ok && h.w != nil && h.w.Written() {
		if errno := f.fill(ctx, &out.Attr); errno != 0 {
			return errno
		}
		out.Size = uint64(h.w.Len())
		return 0
	}
	return f.fill(ctx, &out.Attr)
}

// Setattr truncates. The kernel sends the truncation of `open(O_TRUNC)`
// (the shell's `>`) without a file handle, so a truncation reaches every
// handle open for writing; see Flush for when it is stored. With no writer
// open (`truncate(2)` by path) it resets the setting at once, and so does
// an ftruncate to 0 of a handle nothing was written to (`truncate -s 0`):
// an error reaches the caller. An mtime is kept (touch -d; rsync -a and
// cp -a keep their source's, so a second rsync sends nothing); mode, owner
// and atime are accepted and ignored, so copying tools do not fail.
func (f *settingFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.t.attrsByOwner(ctx, f.jobID, in); errno != 0 {
		return errno
	}
	size, sized := in.GetSize()
	mtime, timed := in.GetMTime()
	if sized || timed {
		if errno := f.t.need(ctx, f.jobID, jobs.RoleOwner); errno != 0 {
			return errno
		}
	}
	if sized {
		if errno := f.truncate(fh, int(size)); errno != 0 {
			return errno
		}
	}
	if timed {
		if errno := toErrno(f.setTime(fh, mtime)); errno != 0 {
			return errno
		}
	}
	return f.Getattr(ctx, fh, out)
}

// setTime gives the setting the mtime t, after the commit of what a write
// handle still holds: cp -p writes, sets the times (by its descriptor, which
// the kernel does not name in the request) and only then closes.
func (f *settingFile) setTime(fh gofs.FileHandle, t time.Time) error {
	if h, ok := fh.(*settingHandle); ok && h.w != nil {
		return h.w.SetTime(t)
	}
	f.mu.Lock()
	writers := make([]*settingHandle, 0, len(f.writers))
	for h := range f.writers {
		writers = append(writers, h)
	}
	f.mu.Unlock()
	if len(writers) == 0 {
		return f.t.m.SetSettingTime(f.jobID, f.path, t)
	}
	for _, h := range writers {
		if err := h.w.SetTime(t); err != nil {
			return err
		}
	}
	return nil
}

func (f *settingFile) truncate(fh gofs.FileHandle, size int) syscall.Errno {
	if h, ok := fh.(*settingHandle); ok && h.w != nil {
		return toErrno(h.w.Truncate(size, true))
	}
	f.mu.Lock()
	writers := len(f.writers)
	for h := range f.writers {
		_ = h.w.Truncate(size, false) // only marks the session (store false): never fails
	}
	f.mu.Unlock()
	switch {
	case writers > 0:
		return 0
	}
	return toErrno(f.t.m.TruncateSetting(f.jobID, f.path, size))
}

// Open for reading holds nothing: each read renders the stored value (so
// any number of readers costs no memory). A write handle holds a write
// session of package jobs (jobs.SettingWrite), its buffer charged to the
// caller's budget (budget.go).
func (f *settingFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if !isWrite(flags) {
		if _, err := f.t.m.ReadSetting(f.jobID, f.path); err != nil {
			return nil, 0, toErrno(err)
		}
		return &settingHandle{f: f}, fuse.FOPEN_DIRECT_IO | noFlush, 0
	}
	if errno := f.t.need(ctx, f.jobID, jobs.RoleOwner); errno != 0 {
		return nil, 0, errno
	}
	h, errno := f.openWrite(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// openWrite makes a write handle: counted among the caller's open files
// (EMFILE past the limit), its buffer charged to the caller (ENOSPC).
func (f *settingFile) openWrite(ctx context.Context, flags uint32) (*settingHandle, syscall.Errno) {
	uid := f.t.callerUID(ctx)
	if err := f.t.temps.budget.open(uid); err != nil {
		return nil, f.refuse(err)
	}
	h := &settingHandle{f: f, uid: uid, counted: true}
	w, err := f.t.m.OpenSettingWrite(f.jobID, f.path, flags&syscall.O_TRUNC != 0, h.fit)
	if err != nil {
		h.uncount()
		return nil, f.refuse(err)
	}
	h.w = w
	f.mu.Lock()
	if f.writers == nil {
		f.writers = map[*settingHandle]bool{}
	}
	f.writers[h] = true
	f.mu.Unlock()
	return h, 0
}

// refuse logs a budget refusal's reason to the job log and returns its
// errno; other errors are returned as they are.
func (f *settingFile) refuse(err error) syscall.Errno {
	var le *limitError
	if errors.As(err, &le) {
		_ = f.t.m.Refuse(f.jobID, f.path, le.reason) // the line is what matters; the errno is le's
	}
	return toErrno(err)
}

// settingHandle is one open of a setting file. A write handle forwards
// bytes to its session (validation, commit, undo are package jobs'); the
// handle only keeps the session's buffer in the caller's budget.
type settingHandle struct {
	f *settingFile
	// w is the write session; nil when opened read-only: reads render the
	// stored value.
	w *jobs.SettingWrite
	// uid is whose budget the handle is counted in; charged the bytes
	// reserved for the session's buffer. Set for write handles only.
	uid     uint32
	mu      sync.Mutex // guards counted and charged
	counted bool
	charged int64
}

func (h *settingHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.w == nil {
		v, err := h.f.t.m.ReadSetting(h.f.jobID, h.f.path)
		if err != nil {
			return nil, toErrno(err)
		}
		return fuse.ReadResultData(sliceAt([]byte(v), dest, off)), 0
	}
	return fuse.ReadResultData(dest[:h.w.ReadAt(dest, off)]), 0
}

// fit makes sure the handle's budget covers n bytes of buffer, reserving
// the difference (in steps, so a value written line by line does not ask
// for every line). The session calls it before its buffer grows.
func (h *settingHandle) fit(n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if int64(n) <= h.charged {
		return nil
	}
	want := min(max(int64(n), h.charged+growStep), jobs.MaxSettingSize)
	if err := h.f.t.temps.budget.reserve(h.uid, want-h.charged); err != nil {
		return err
	}
	h.charged = want
	return nil
}

// uncount gives back what the handle holds in the budget.
func (h *settingHandle) uncount() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.counted {
		return
	}
	h.counted = false
	h.f.t.temps.budget.release(h.uid, h.charged)
	h.charged = 0
	h.f.t.temps.budget.close(h.uid)
}

// Write is validated by the session, where the shell's echo sees a
// refusal; a budget refusal's reason goes to the job log.
func (h *settingHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.w == nil {
		return 0, syscall.EBADF // opened read-only: the kernel sends no write
	}
	if err := h.w.Write(data, off); err != nil {
		return 0, h.f.refuse(err)
	}
	return uint32(len(data)), 0
}

// Fsync commits like Flush: editors fsync before they close.
func (h *settingHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.Flush(ctx)
}

// Flush commits what was written since the last flush, or a truncation
// that nothing was written after (`: > config/timeout`). The kernel waits
// for it in close(2), so the value is stored when the writer's close
// returns, and a refusal reaches close.
func (h *settingHandle) Flush(ctx context.Context) syscall.Errno {
	if h.w == nil {
		return 0
	}
	return toErrno(h.w.Flush())
}

// Release ends the session (it logs a reset that Flush stored, now that
// no value followed it) and gives back the handle's budget.
func (h *settingHandle) Release(ctx context.Context) syscall.Errno {
	if h.w == nil {
		return 0
	}
	h.f.mu.Lock()
	delete(h.f.writers, h)
	h.f.mu.Unlock()
	defer h.uncount()
	return toErrno(h.w.Close())
}

// writeAt copies data into buf at off, growing buf (zero-filled) as needed.
func writeAt(buf, data []byte, off int64) []byte {
	end := int(off) + len(data)
	if end > len(buf) {
		buf = append(buf, make([]byte, end-len(buf))...)
	}
	copy(buf[off:], data)
	return buf
}

// sliceAt returns the part of content a read of len(dest) at off sees.
func sliceAt(content, dest []byte, off int64) []byte {
	if off >= int64(len(content)) {
		return nil
	}
	end := min(int(off)+len(dest), len(content))
	return content[off:end]
}
