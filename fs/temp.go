package fs

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// Editors and copying tools rarely write a file in place: vim writes
// .chains.swp and chains~ (and probes with 4913), sed -i writes sedXXXXXX,
// rsync .chains.XXXXXX, emacs #chains# and .#chains, Python's mkstemp
// tmpXXXXXXXX, install and others names of their own; each renames its
// temporary file over the original. In config/ (and config/limits/) any
// file created that is not a setting is such a temporary file; in the job
// folder and config/env/ only the names below, so that a mistyped name
// there is refused with its reason. Temporary files live in memory only,
// are listed while they exist and vanish with the daemon; renaming one
// over a setting (or a secret) is an atomic, validated write of it.
var tempNameRE = regexp.MustCompile(`^(\..+|.+~|sed[A-Za-z0-9]{6}|tmp[a-z0-9_]{8}|4913|#.+#|.+\.(swp|swx|tmp|bak|save))$`)

// isTempName reports whether name is one a tool uses for a temporary file.
func isTempName(name string) bool { return tempNameRE.MatchString(name) }

// temps holds the temporary files of one mount, keyed by job id and path
// below the job folder. It also carries the mount's memory budget
// (budget.go), which temporary files and data handles share.
type temps struct {
	mu     sync.Mutex
	files  map[string]*tempData
	budget budget
	// unlinked holds, per setting, the process that last removed it
	// (reset it): to that process alone the name is gone until it creates
	// it again, so install's and tar's unlink-then-create (O_EXCL) works
	// while everyone else still sees the setting (at its default).
	unlinked map[string]proc
}

// callerProc is the process behind a request.
func callerProc(ctx context.Context) (proc, bool) {
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return proc{}, false
	}
	return procOf(int(c.Pid))
}

// markUnlinked records that the caller removed the setting at path.
func (ts *temps) markUnlinked(ctx context.Context, jobID, path string) {
	p, ok := callerProc(ctx)
	if !ok {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.unlinked == nil {
		ts.unlinked = map[string]proc{}
	}
	ts.unlinked[ts.key(jobID, path)] = p
}

// unlinkedBy reports whether the caller removed the setting at path and
// has not created it since: to it the name does not exist.
func (ts *temps) unlinkedBy(ctx context.Context, jobID, path string) bool {
	ts.mu.Lock()
	p, ok := ts.unlinked[ts.key(jobID, path)]
	ts.mu.Unlock()
	if !ok {
		return false
	}
	c, ok := callerProc(ctx) // reads /proc: outside the lock
	return ok && c == p
}

// created forgets the removal of the setting at path.
func (ts *temps) created(jobID, path string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.unlinked, ts.key(jobID, path))
}

// tempData is the content of one temporary file. Its bytes are charged to
// the job's owner; they go back to the budget when the file is removed
// and no handle has it open any more.
type tempData struct {
	mu      sync.Mutex
	buf     buffer
	mode    uint32
	mtime   time.Time
	timed   bool // mtime was given (touch, rsync's times on its temp file) after the last write
	handles int  // open handles
	gone    bool // removed (unlink, rename over it, job deleted)
	freed   bool // gone, and its bookkeeping given back
}

func (ts *temps) key(jobID, path string) string { return jobID + "/" + path }

func (ts *temps) get(jobID, path string) *tempData {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.files[ts.key(jobID, path)]
}

// newData makes an empty temporary file charged to uid, or refuses with
// ENOSPC when uid's budget cannot take even its bookkeeping.
func (ts *temps) newData(uid uint32, mode uint32) (*tempData, error) {
	if err := ts.budget.reserve(uid, tempOverhead); err != nil {
		return nil, err
	}
	buf := buffer{b: &ts.budget, uid: uid, limit: maxTemp, what: "a temporary file"}
	return &tempData{buf: buf, mode: mode & 0o777, mtime: time.Now()}, nil
}

// put stores d at path; a temporary file it replaces is removed.
func (ts *temps) put(jobID, path string, d *tempData) {
	ts.mu.Lock()
	if ts.files == nil {
		ts.files = map[string]*tempData{}
	}
	k := ts.key(jobID, path)
	old := ts.files[k]
	ts.files[k] = d
	ts.mu.Unlock()
	if old != nil && old != d {
		old.remove()
	}
}

// take forgets the temporary file at path and returns it, or nil.
func (ts *temps) take(jobID, path string) *tempData {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	k := ts.key(jobID, path)
	d := ts.files[k]
	delete(ts.files, k)
	return d
}

// remove deletes the temporary file at path, reporting whether there was one.
func (ts *temps) remove(jobID, path string) bool {
	d := ts.take(jobID, path)
	if d != nil {
		d.remove()
	}
	return d != nil
}

// list returns the names of the temporary files directly in dir (a path
// prefix below the job folder, "" or "config/").
func (ts *temps) list(jobID, dir string) []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []string
	prefix := ts.key(jobID, dir)
	for k := range ts.files {
		if name, ok := strings.CutPrefix(k, prefix); ok && !strings.Contains(name, "/") {
			out = append(out, name)
		}
	}
	return out
}

// dropJob forgets every temporary file of a job (it was deleted).
func (ts *temps) dropJob(jobID string) {
	var dropped []*tempData
	ts.mu.Lock()
	for k, d := range ts.files {
		if strings.HasPrefix(k, jobID+"/") {
			delete(ts.files, k)
			dropped = append(dropped, d)
		}
	}
	for k := range ts.unlinked {
		if strings.HasPrefix(k, jobID+"/") {
			delete(ts.unlinked, k)
		}
	}
	ts.mu.Unlock()
	for _, d := range dropped {
		d.remove()
	}
}

// remove marks a temporary file removed; its memory goes back to the budget
// now, or at the Release of its last open handle.
func (d *tempData) remove() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
	d.freeIfIdle()
}

// freeIfIdle gives back the memory of a removed file no handle has open.
// d.mu is held.
func (d *tempData) freeIfIdle() {
	if !d.gone || d.handles > 0 {
		return
	}
	d.buf.free() // again after a handle opened in a race with the removal
	if !d.freed {
		d.freed = true
		d.buf.b.release(d.buf.uid, tempOverhead)
	}
}

// truncate sets the size (ftruncate, or open with O_TRUNC). d.mu is held.
func (d *tempData) truncate(size uint64) error {
	if err := d.buf.truncate(size); err != nil {
		return err
	}
	d.mtime, d.timed = time.Now(), false
	return nil
}

// tempFile is the node of a temporary file. It finds its content by path
// at each call: go-fuse reuses a node for the same inode number, and a
// file removed and made again under the same name has new content.
type tempFile struct {
	gofs.Inode
	t     *tree
	jobID string
	path  string // below the job folder: config/.script.swp
}

func (f *tempFile) data() *tempData { return f.t.temps.get(f.jobID, f.path) }

// allowed checks the caller's role now: a temporary file is the owner's
// scratch (only the owner creates one), so changing it needs the owner,
// or a viewer could edit what the owner's editor then renames over
// config/script; one in config/env/ holds a secret's plain value, which
// only the owner may read.
func (f *tempFile) allowed(ctx context.Context, change bool) syscall.Errno {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return errno
	}
	if change || strings.HasPrefix(f.path, "config/env/") {
		return f.t.need(ctx, f.jobID, jobs.RoleOwner)
	}
	return 0
}

// refuse logs why an operation on the file was refused and returns its
// errno. Called with no lock held: the log is written to disk.
func (f *tempFile) refuse(err error) syscall.Errno {
	var le *limitError
	if errors.As(err, &le) {
		// The log line is what matters here; Refuse's own error (EINVAL)
		// is not the errno to return.
		_ = f.t.m.Refuse(f.jobID, f.path, le.reason)
	}
	return toErrno(err)
}

func (f *tempFile) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	d := f.data()
	if d == nil {
		return syscall.ENOENT
	}
	d.fill(f.t, a)
	a.Uid, a.Gid = f.t.jobOwner(f.jobID)
	return 0
}

func (d *tempData) fill(t *tree, a *fuse.Attr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a.Size = uint64(len(d.buf.data))
	t.attr(a, syscall.S_IFREG|d.mode, d.mtime)
}

func (f *tempFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*tempHandle); ok {
		h.d.fill(f.t, &out.Attr)
		out.Uid, out.Gid = f.t.jobOwner(f.jobID)
		return 0
	}
	return f.fill(ctx, &out.Attr)
}

// Setattr applies size, mode and mtime, as tools expect of a scratch file.
// A size past the cap is refused (EFBIG) before anything is allocated.
func (f *tempFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.allowed(ctx, true); errno != 0 {
		return errno
	}
	d := f.data()
	if h, ok := fh.(*tempHandle); ok {
		d = h.d // ftruncate: the open file, even when removed since
	}
	if d == nil {
		return syscall.ENOENT
	}
	if size, ok := in.GetSize(); ok {
		d.mu.Lock()
		err := d.truncate(size)
		d.mu.Unlock()
		if err != nil {
			return f.refuse(err)
		}
	}
	d.mu.Lock()
	if mode, ok := in.GetMode(); ok {
		d.mode = mode & 0o777
	}
	if mtime, ok := in.GetMTime(); ok {
		d.mtime, d.timed = mtime, true
	}
	d.mu.Unlock()
	d.fill(f.t, &out.Attr)
	return 0
}

func (f *tempFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := f.allowed(ctx, isWrite(flags) || flags&syscall.O_TRUNC != 0); errno != 0 {
		return nil, 0, errno
	}
	d := f.data()
	if d == nil {
		return nil, 0, syscall.ENOENT
	}
	h, err := f.open(ctx, d)
	if err != nil {
		return nil, 0, f.refuse(err)
	}
	if flags&syscall.O_TRUNC != 0 {
		d.mu.Lock()
		err = d.truncate(0)
		d.mu.Unlock()
		if err != nil {
			_ = h.Release(ctx) // always 0; the truncation's error is the answer
			return nil, 0, f.refuse(err)
		}
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// open makes a handle on d, counted against the caller's budget (EMFILE
// past it).
func (f *tempFile) open(ctx context.Context, d *tempData) (*tempHandle, error) {
	uid := f.t.callerUID(ctx)
	if err := f.t.temps.budget.open(uid); err != nil {
		return nil, err
	}
	return f.handle(uid, d), nil
}

// handle makes a handle of uid on d; the caller counted it in the budget.
func (f *tempFile) handle(uid uint32, d *tempData) *tempHandle {
	d.mu.Lock()
	d.handles++
	d.mu.Unlock()
	return &tempHandle{f: f, d: d, uid: uid}
}

type tempHandle struct {
	f   *tempFile
	d   *tempData
	uid uint32 // whose handle count it is

	mu       sync.Mutex
	released bool
}

func (h *tempHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return fuse.ReadResultData(append([]byte(nil), sliceAt(h.d.buf.data, dest, off)...)), 0
}

// Write refuses (EFBIG) past maxTemp, and (ENOSPC) past the owner's budget.
func (h *tempHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.d.mu.Lock()
	err := h.d.buf.write(data, off)
	if err == nil {
		h.d.mtime, h.d.timed = time.Now(), false
	}
	h.d.mu.Unlock()
	if err != nil {
		return 0, h.f.refuse(err)
	}
	return uint32(len(data)), 0
}

func (h *tempHandle) Flush(ctx context.Context) syscall.Errno               { return 0 }
func (h *tempHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

// Release uncounts the handle, and frees a removed file's memory when it
// was the last one open.
func (h *tempHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	done := h.released
	h.released = true
	h.mu.Unlock()
	if done {
		return 0
	}
	h.f.t.temps.budget.close(h.uid)
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	h.d.handles--
	h.d.freeIfIdle()
	return 0
}

// maxTemp bounds a temporary file: a setting is at most 1 MiB, and a swap
// file of one is larger, but not by much.
const maxTemp = 16 << 20

// tempDir gives a folder of the job tree its temporary files.
type tempDir struct {
	t     *tree
	jobID string
	dir   string // "" (the job folder), "config/", "config/limits/", "config/env/"
	// anyName makes every created name that is not a target a temporary
	// file (config/); otherwise only the names tools use (tempNameRE).
	anyName bool
	// target is what a temporary file may be renamed over; nil: nothing.
	target tempTarget
}

// tempTarget is the folder's files a temporary file can replace: its
// settings, or its secrets.
type tempTarget interface {
	isTarget(name string) bool
	// writeTarget stores content as the file's new value, validated; a
	// refusal is logged and keeps the old value.
	writeTarget(name, content string) error
	// readTarget is what a read of the file gives.
	readTarget(name string) (string, error)
}

// timedTarget is a tempTarget whose files keep an mtime given to them:
// a temp file renamed over one passes on the time given to it (rsync
// sets its source's times on its temp file, then renames it).
type timedTarget interface {
	setTargetTime(name string, t time.Time) error
}

// settingTarget is a folder's settings as a tempTarget.
type settingTarget struct {
	t     *tree
	jobID string
	dir   string
	is    func(string) bool
}

func (s settingTarget) isTarget(name string) bool { return s.is(name) }

func (s settingTarget) writeTarget(name, content string) error {
	return s.t.m.WriteSetting(s.jobID, s.dir+name, content)
}

func (s settingTarget) setTargetTime(name string, t time.Time) error {
	return s.t.m.SetSettingTime(s.jobID, s.dir+name, t)
}

func (s settingTarget) readTarget(name string) (string, error) {
	return s.t.m.ReadSetting(s.jobID, s.dir+name)
}

// isTemp reports whether a file created as name is a temporary one.
func (d tempDir) isTemp(name string) bool {
	if d.target != nil && d.target.isTarget(name) {
		return false
	}
	return d.anyName || isTempName(name)
}

func (d tempDir) node(name string) (*tempFile, uint64, bool) {
	if d.t.temps.get(d.jobID, d.dir+name) == nil {
		return nil, 0, false
	}
	return &tempFile{t: d.t, jobID: d.jobID, path: d.dir + name}, ino(d.jobID, "temp", d.dir+name), true
}

func (d tempDir) entries() []fuse.DirEntry {
	var ents []fuse.DirEntry
	for _, name := range d.t.temps.list(d.jobID, d.dir) {
		ents = append(ents, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: ino(d.jobID, "temp", d.dir+name)})
	}
	return ents
}

func (d tempDir) lookup(ctx context.Context, parent *gofs.Inode, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	node, id, ok := d.node(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	return newChild(ctx, parent, node, syscall.S_IFREG, id, out)
}

// owner is whose budget the job's temporary files are charged to.
func (d tempDir) owner() uint32 {
	if j, err := d.t.m.JobByID(d.jobID); err == nil {
		return j.Owner
	}
	return d.t.owner // the job is gone: nothing will keep the file long
}

// create makes (or opens) a temporary file, or refuses a name no tool
// would use, a user with too many open files (EMFILE) or with a spent
// memory budget (ENOSPC), with the reason in the job log.
func (d tempDir) create(ctx context.Context, parent *gofs.Inode, name string, mode uint32, out *fuse.EntryOut, refuse func() error) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if !d.isTemp(name) {
		return nil, nil, 0, toErrno(refuse())
	}
	f := &tempFile{t: d.t, jobID: d.jobID, path: d.dir + name}
	uid := d.t.callerUID(ctx)
	if err := d.t.temps.budget.open(uid); err != nil {
		return nil, nil, 0, f.refuse(err) // before the file exists: nothing is left
	}
	td := d.t.temps.get(d.jobID, d.dir+name)
	if td == nil {
		var err error
		if td, err = d.t.temps.newData(d.owner(), mode); err != nil {
			d.t.temps.budget.close(uid)
			return nil, nil, 0, f.refuse(err)
		}
		d.t.temps.put(d.jobID, d.dir+name, td)
	}
	h := f.handle(uid, td)
	in, errno := d.lookup(ctx, parent, name, out)
	if errno != 0 {
		_ = h.Release(ctx) // always 0; the lookup's errno is the answer
		return nil, nil, 0, errno
	}
	return in, h, fuse.FOPEN_DIRECT_IO, 0
}

func (d tempDir) unlink(name string) bool { return d.t.temps.remove(d.jobID, d.dir+name) }

// rename handles a rename inside one folder where either side is a
// temporary file: temp over a target writes the target (validated; a
// refusal keeps both the old value and the temp file); a target to a temp
// name copies its content (the target itself cannot vanish); temp to temp
// moves it. handled is false when neither side is a temporary file.
// Without a target, the target is the folder's settings that isSetting
// names.
func (d tempDir) rename(name, newName string, isSetting func(string) bool) (handled bool, errno syscall.Errno) {
	if d.target == nil {
		d.target = settingTarget{t: d.t, jobID: d.jobID, dir: d.dir, is: isSetting}
	}
	src := d.t.temps.get(d.jobID, d.dir+name)
	isTarget := func(n string) bool { return d.target != nil && d.target.isTarget(n) }
	switch {
	case src != nil && isTarget(newName):
		src.mu.Lock()
		content, mtime, timed := string(src.buf.data), src.mtime, src.timed
		src.mu.Unlock()
		if err := d.target.writeTarget(newName, content); err != nil {
			return true, toErrno(err)
		}
		if tt, ok := d.target.(timedTarget); ok && timed {
			if err := tt.setTargetTime(newName, mtime); err != nil {
				return true, toErrno(err) // the value is stored; its time is not
			}
		}
		d.t.temps.remove(d.jobID, d.dir+name)
		return true, 0
	case src != nil && d.isTemp(newName):
		if d.t.temps.take(d.jobID, d.dir+name) != nil {
			d.t.temps.put(d.jobID, d.dir+newName, src)
		}
		return true, 0
	case src == nil && isTarget(name) && isTempName(newName) && !isTarget(newName):
		// Only a tool's backup name: `mv config/timeout config/other`
		// asks for a rename, which settings refuse.
		return true, d.copyTarget(name, newName)
	}
	return false, 0
}

// copyTarget makes temporary file newName with the content of target
// name (a tool backing a file up by renaming it), charged like a written
// one.
func (d tempDir) copyTarget(name, newName string) syscall.Errno {
	v, err := d.target.readTarget(name)
	if err != nil {
		return toErrno(err)
	}
	f := &tempFile{t: d.t, jobID: d.jobID, path: d.dir + newName}
	td, err := d.t.temps.newData(d.owner(), 0o644)
	if err != nil {
		return f.refuse(err)
	}
	if err := td.buf.write([]byte(v), 0); err != nil {
		td.remove()
		return f.refuse(err)
	}
	d.t.temps.put(d.jobID, d.dir+newName, td)
	return 0
}
