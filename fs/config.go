package fs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"

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

func (d *configDir) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
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
	return dirEntries(append(d.entries(), d.temp().entries()...)...), 0
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
	return toErrno(d.t.m.Refuse(d.jobID, d.prefix+name, "settings cannot be renamed"))
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
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, setting, f.t.m.SettingTime(f.jobID, f.path))
	return 0
}

func (f *settingFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*settingHandle); ok && h.written() {
		if errno := f.fill(ctx, &out.Attr); errno != 0 {
			return errno
		}
		out.Size = uint64(h.size())
		return 0
	}
	return f.fill(ctx, &out.Attr)
}

// Setattr truncates. The kernel sends the truncation of `open(O_TRUNC)`
// (the shell's `>`) without a file handle, so a truncation reaches every
// handle open for writing; see Flush for when it is stored. With no writer
// open (`truncate(2)` by path) it resets the setting at once, and so does
// an ftruncate to 0 of a handle nothing was written to (`truncate -s 0`):
// an error reaches the caller. Mode, owner and times are accepted and
// ignored, so copying tools do not fail.
func (f *settingFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		if errno := f.t.need(ctx, f.jobID, jobs.RoleOwner); errno != 0 {
			return errno
		}
		if errno := f.truncate(fh, int(size)); errno != 0 {
			return errno
		}
	}
	return f.Getattr(ctx, fh, out)
}

func (f *settingFile) truncate(fh gofs.FileHandle, size int) syscall.Errno {
	if h, ok := fh.(*settingHandle); ok {
		return h.truncate(size, true)
	}
	f.mu.Lock()
	writers := len(f.writers)
	for h := range f.writers {
		_ = h.truncate(size, false) // only marks the handle (store false): never fails
	}
	f.mu.Unlock()
	switch {
	case writers > 0:
		return 0
	case size == 0:
		return toErrno(f.t.m.ResetSetting(f.jobID, f.path))
	}
	return syscall.EINVAL
}

// Open for reading holds nothing: each read renders the stored value (so
// any number of readers costs no memory). A write handle holds the value
// it edits, charged to the caller's budget (budget.go).
func (f *settingFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if !isWrite(flags) {
		if _, err := f.t.m.ReadSetting(f.jobID, f.path); err != nil {
			return nil, 0, toErrno(err)
		}
		return &settingHandle{f: f, lazy: true}, fuse.FOPEN_DIRECT_IO, 0
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
	if flags&syscall.O_TRUNC != 0 {
		h.truncated = true
	} else {
		v, err := f.t.m.ReadSetting(f.jobID, f.path)
		if err == nil {
			err = h.fit(len(v))
		}
		if err != nil {
			h.uncount()
			return nil, f.refuse(err)
		}
		h.buf = []byte(v)
	}
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

// settingHandle buffers one open of a setting file.
type settingHandle struct {
	f *settingFile
	// lazy: opened read-only; reads render the stored value, buf is unused.
	lazy bool
	// uid is whose budget the handle is counted in; charged the bytes
	// reserved for buf. Set for write handles only.
	uid     uint32
	counted bool
	charged int64

	mu        sync.Mutex
	buf       []byte // the file's content as this handle sees it
	truncated bool   // set to empty by O_TRUNC or setattr
	wrote     bool   // a write arrived since the last commit
	wroteAny  bool   // any write arrived on this handle
	failed    bool   // a write was refused: nothing more is committed
	cleared   bool   // the truncation was stored: the setting was reset
	unlogged  bool   // that reset changed the setting and is not logged yet
	committed bool   // a written value was stored (and logged)
	// before is the stored value before this handle's first commit: a
	// value committed in parts is undone when a later part is refused.
	before *jobs.SettingState
}

// fail marks the handle failed and undoes what it committed. h.mu is held.
func (h *settingHandle) fail() {
	h.failed = true
	h.unlogged = false
	if h.before != nil {
		h.f.t.m.RestoreSetting(h.f.jobID, h.f.path, *h.before, h.committed)
		h.before = nil
	}
}

// bigWrite is the write size from which a value is assumed to continue in a
// further write (cat of a large file), so it is validated at flush instead.
const bigWrite = 64 << 10

func (h *settingHandle) written() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wroteAny || h.truncated
}

func (h *settingHandle) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.buf)
}

// truncate cuts the handle's content. store (an ftruncate of this handle)
// stores a truncation to empty of a handle nothing was written to at once;
// after a write, the next flush commits the shorter value.
func (h *settingHandle) truncate(size int, store bool) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if size < len(h.buf) {
		h.buf = h.buf[:size]
	}
	h.truncated = true
	switch {
	case h.wroteAny:
		h.wrote = true
	case store && size == 0:
		return h.clear()
	}
	return 0
}

// emptied reports whether the handle holds a truncation and nothing
// written after it. h.mu is held.
func (h *settingHandle) emptied() bool {
	return h.truncated && !h.wroteAny && len(h.buf) == 0
}

// clear stores the truncation of a handle nothing was written to: the
// setting is reset now, before the writer's close (or ftruncate) returns,
// so a read or a run right after sees the default. The reset is logged at
// release, unless a value is written after it (bash's `echo v > f` closes a
// copy of the descriptor, flushing, before echo writes). h.mu is held.
func (h *settingHandle) clear() syscall.Errno {
	if h.cleared || h.failed {
		return 0
	}
	st := h.f.t.m.SettingState(h.f.jobID, h.f.path)
	changed, err := h.f.t.m.ClearSetting(h.f.jobID, h.f.path)
	if err != nil {
		return toErrno(err)
	}
	h.cleared = true
	if changed {
		h.unlogged = true
		if h.before == nil {
			h.before = &st
		}
	}
	return 0
}

func (h *settingHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.lazy {
		v, err := h.f.t.m.ReadSetting(h.f.jobID, h.f.path)
		if err != nil {
			return nil, toErrno(err)
		}
		return fuse.ReadResultData(sliceAt([]byte(v), dest, off)), 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return fuse.ReadResultData(append([]byte(nil), sliceAt(h.buf, dest, off)...)), 0
}

// fit makes sure the handle's budget covers n bytes of buffer, reserving
// the difference (in steps, so a value written line by line does not ask
// for every line).
func (h *settingHandle) fit(n int) error {
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
	if !h.counted {
		return
	}
	h.counted = false
	h.f.t.temps.budget.release(h.uid, h.charged)
	h.charged = 0
	h.f.t.temps.budget.close(h.uid)
}

func (h *settingHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed {
		return 0, syscall.EINVAL
	}
	if !fitsAt(off, len(data), jobs.MaxSettingSize) {
		err := h.f.t.m.RefuseTooLarge(h.f.jobID, h.f.path, uint64(max(off, 0))+uint64(len(data)))
		h.fail()
		return 0, toErrno(err)
	}
	if err := h.fit(max(int(off)+len(data), len(h.buf))); err != nil {
		h.fail()
		return 0, h.f.refuse(err)
	}
	h.buf = writeAt(h.buf, data, off)
	h.wrote, h.wroteAny = true, true
	if len(data) < bigWrite {
		// A multi-line value may be written a line at a time: only errors no
		// further line can cure fail the write; the rest wait for Flush.
		if mayComplete, err := h.f.t.m.CheckPartialSetting(h.f.jobID, h.f.path, string(h.buf)); err != nil && !mayComplete {
			h.fail()
			return 0, toErrno(err)
		}
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
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed {
		return 0
	}
	if !h.wrote {
		if h.emptied() {
			return h.clear()
		}
		return 0
	}
	h.wrote = false
	var before *jobs.SettingState // read once: only the first commit needs it
	if h.before == nil {
		st := h.f.t.m.SettingState(h.f.jobID, h.f.path)
		before = &st
	}
	if err := h.f.t.m.WriteSetting(h.f.jobID, h.f.path, string(h.buf)); err != nil {
		h.fail()
		return toErrno(err)
	}
	if before != nil {
		h.before = before
	}
	h.committed, h.unlogged = true, false // its log line says what the value is now
	return 0
}

// Release logs a reset that Flush stored, now that no value followed it.
// A truncation no flush stored (none is expected: close flushes) is stored
// here.
func (h *settingHandle) Release(ctx context.Context) syscall.Errno {
	if h.lazy {
		return 0
	}
	h.f.mu.Lock()
	delete(h.f.writers, h)
	h.f.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.uncount()
	if h.emptied() && !h.failed {
		if errno := h.clear(); errno != 0 {
			return errno
		}
	}
	if h.unlogged {
		h.unlogged = false
		h.f.t.m.LogReset(h.f.jobID, h.f.path)
	}
	return 0
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
