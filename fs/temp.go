package fs

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Editors and copying tools rarely write a file in place: vim writes
// .chains.swp and chains~ (and probes with 4913), sed -i writes sedXXXXXX,
// rsync .chains.XXXXXX, emacs #chains# and .#chains, and each renames its
// temporary file over the original. Such names may be created in a job
// folder and its config folders. They live in memory only, are listed while
// they exist and vanish with the daemon; renaming one over a setting is an
// atomic, validated write of that setting.
var tempNameRE = regexp.MustCompile(`^(\..+|.+~|sed[A-Za-z0-9]{6}|4913|#.+#|.+\.(swp|swx|tmp|bak|save))$`)

// isTempName reports whether name is one a tool uses for a temporary file.
func isTempName(name string) bool { return tempNameRE.MatchString(name) }

// temps holds the temporary files of one mount, keyed by job id and path
// below the job folder.
type temps struct {
	mu    sync.Mutex
	files map[string]*tempData
}

// tempData is the content of one temporary file.
type tempData struct {
	mu    sync.Mutex
	data  []byte
	mode  uint32
	mtime time.Time
}

func (ts *temps) key(jobID, path string) string { return jobID + "/" + path }

func (ts *temps) get(jobID, path string) *tempData {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.files[ts.key(jobID, path)]
}

func (ts *temps) put(jobID, path string, d *tempData) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.files == nil {
		ts.files = map[string]*tempData{}
	}
	ts.files[ts.key(jobID, path)] = d
}

func (ts *temps) remove(jobID, path string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	k := ts.key(jobID, path)
	_, ok := ts.files[k]
	delete(ts.files, k)
	return ok
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
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for k := range ts.files {
		if strings.HasPrefix(k, jobID+"/") {
			delete(ts.files, k)
		}
	}
}

// tempFile is the node of a temporary file.
type tempFile struct {
	gofs.Inode
	t *tree
	d *tempData
}

func (f *tempFile) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	a.Size = uint64(len(f.d.data))
	f.t.attr(a, syscall.S_IFREG|f.d.mode, f.d.mtime)
	return 0
}

func (f *tempFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Setattr applies size, mode and mtime, as tools expect of a scratch file.
func (f *tempFile) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f.d.mu.Lock()
	if size, ok := in.GetSize(); ok {
		if int(size) <= len(f.d.data) {
			f.d.data = f.d.data[:size]
		} else {
			f.d.data = append(f.d.data, make([]byte, int(size)-len(f.d.data))...)
		}
		f.d.mtime = time.Now()
	}
	if mode, ok := in.GetMode(); ok {
		f.d.mode = mode & 0o777
	}
	if mtime, ok := in.GetMTime(); ok {
		f.d.mtime = mtime
	}
	f.d.mu.Unlock()
	return f.fill(ctx, &out.Attr)
}

func (f *tempFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		f.d.mu.Lock()
		f.d.data = nil
		f.d.mu.Unlock()
	}
	return &tempHandle{d: f.d}, fuse.FOPEN_DIRECT_IO, 0
}

type tempHandle struct{ d *tempData }

func (h *tempHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	return fuse.ReadResultData(append([]byte(nil), sliceAt(h.d.data, dest, off)...)), 0
}

func (h *tempHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if off+int64(len(data)) > maxTemp {
		return 0, syscall.EFBIG
	}
	h.d.data = writeAt(h.d.data, data, off)
	h.d.mtime = time.Now()
	return uint32(len(data)), 0
}

func (h *tempHandle) Flush(ctx context.Context) syscall.Errno               { return 0 }
func (h *tempHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

// maxTemp bounds a temporary file: a setting is at most 1 MiB, and a swap
// file of one is larger, but not by much.
const maxTemp = 16 << 20

// tempDir gives a folder of the job tree its temporary files.
type tempDir struct {
	t     *tree
	jobID string
	dir   string // "" (the job folder), "config/", "config/limits/"
}

func (d tempDir) node(name string) (*tempFile, uint64, bool) {
	td := d.t.temps.get(d.jobID, d.dir+name)
	if td == nil {
		return nil, 0, false
	}
	return &tempFile{t: d.t, d: td}, ino(d.jobID, "temp", d.dir+name), true
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

// create makes (or truncates) a temporary file, or refuses a name no tool
// would use with the reason in the job log.
func (d tempDir) create(ctx context.Context, parent *gofs.Inode, name string, mode uint32, out *fuse.EntryOut, refuse func() error) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if !isTempName(name) {
		return nil, nil, 0, toErrno(refuse())
	}
	td := d.t.temps.get(d.jobID, d.dir+name)
	if td == nil {
		td = &tempData{mode: mode & 0o777, mtime: time.Now()}
		d.t.temps.put(d.jobID, d.dir+name, td)
	}
	in, errno := d.lookup(ctx, parent, name, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, &tempHandle{d: td}, fuse.FOPEN_DIRECT_IO, 0
}

func (d tempDir) unlink(name string) bool { return d.t.temps.remove(d.jobID, d.dir+name) }

// rename handles a rename inside one folder where either side is a
// temporary file: temp over a setting writes the setting (validated; a
// refusal keeps both the old value and the temp file); a setting to a temp
// name copies its content (the setting itself cannot vanish); temp to temp
// moves it. handled is false when neither side is a temporary file.
func (d tempDir) rename(name, newName string, isSetting func(string) bool) (handled bool, errno syscall.Errno) {
	m := d.t.m
	src := d.t.temps.get(d.jobID, d.dir+name)
	switch {
	case src != nil && isSetting(newName):
		src.mu.Lock()
		content := string(src.data)
		src.mu.Unlock()
		if err := m.WriteSetting(d.jobID, d.dir+newName, content); err != nil {
			return true, toErrno(err)
		}
		d.t.temps.remove(d.jobID, d.dir+name)
		return true, 0
	case src != nil && isTempName(newName):
		d.t.temps.remove(d.jobID, d.dir+name)
		d.t.temps.put(d.jobID, d.dir+newName, src)
		return true, 0
	case src == nil && isSetting(name) && isTempName(newName):
		v, err := m.ReadSetting(d.jobID, d.dir+name)
		if err != nil {
			return true, toErrno(err)
		}
		d.t.temps.put(d.jobID, d.dir+newName, &tempData{data: []byte(v), mode: 0o644, mtime: time.Now()})
		return true, 0
	}
	return false, 0
}
