package fs

import (
	"context"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// diskDir is a read-only view of a run's folder: its input/ and output/, a
// step's output/. Only folders and regular files are shown. Package jobs
// resolves every name below the run's folder without following a symlink
// (jobs.StatRunFile): a step may leave links there, or swap a folder for
// one after it was looked up, and the daemon must not follow them.
type diskDir struct {
	gofs.Inode
	t     *tree
	jobID string
	run   uint64
	rel   string // this folder, relative to the run's folder
	seed  uint64 // mixed into children's inode numbers
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
	if typ == syscall.S_IFREG {
		a.Nlink = uint32(st.Nlink) // hard links: one inode number for its names (entryIno)
	}
	if typ == syscall.S_IFREG && st.Mode&0o100 != 0 {
		a.Mode |= a.Mode & 0o444 >> 2
	}
}

// lookRunFile is lookStat for rel below run's folder, through no symlink,
// when it is still of type typ: a name a step swapped for a link (or a
// folder for a file) is not there, as the tree shows neither.
func (t *tree) lookRunFile(ctx context.Context, a *fuse.Attr, jobID string, run uint64, rel string, typ uint32) syscall.Errno {
	st, err := t.m.StatRunFile(jobID, run, rel)
	if err != nil {
		return toErrno(err)
	}
	if st.Mode&syscall.S_IFMT != typ {
		return syscall.ENOENT
	}
	t.lookStat(ctx, a, jobID, &st, computed)
	return 0
}

func (d *diskDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	return d.t.lookRunFile(ctx, a, d.jobID, d.run, d.rel, syscall.S_IFDIR)
}

func (d *diskDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *diskDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := d.t.m.ReadRunDir(d.jobID, d.run, d.rel)
	if err != nil {
		return nil, toErrno(err)
	}
	var ents []fuse.DirEntry
	for _, e := range list {
		if mode, ok := shownMode(e.Stat.Mode); ok {
			ents = append(ents, fuse.DirEntry{Name: e.Name, Mode: mode, Ino: d.entryIno(e.Name, &e.Stat)})
		}
	}
	return dirEntries(d, ents...), 0
}

// shownMode is the type a run folder's entry is listed with: folders,
// files, symlinks (read, never followed) and FIFOs (a FIFO node of a FUSE
// mount is the kernel's own: opening it never reaches this daemon or the
// FIFO on disk). Devices and sockets a step left are not shown.
func shownMode(mode uint32) (uint32, bool) {
	switch t := mode & syscall.S_IFMT; t {
	case syscall.S_IFDIR, syscall.S_IFREG, syscall.S_IFLNK, syscall.S_IFIFO:
		return t, true
	}
	return 0, false
}

func (d *diskDir) childIno(name string) uint64 {
	return ino(strconv.FormatUint(d.seed, 16), d.rel, name)
}

// entryIno is the inode number of entry name with attributes st: a file
// with hard links (staged with ln, a step's) is numbered by the file on
// disk, one number for all its names in the run, so du and tar count it
// once; anything else by its place.
func (d *diskDir) entryIno(name string, st *unix.Stat_t) uint64 {
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Nlink > 1 {
		return ino("link", d.jobID, strconv.FormatUint(d.run, 10), strconv.FormatUint(st.Dev, 16), strconv.FormatUint(st.Ino, 16))
	}
	return d.childIno(name)
}

func (d *diskDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	rel := filepath.Join(d.rel, name)
	st, err := d.t.m.StatRunFile(d.jobID, d.run, rel)
	if err != nil {
		return nil, toErrno(err)
	}
	mode := st.Mode & syscall.S_IFMT
	var node attrFiller
	switch mode {
	case syscall.S_IFREG:
		node = &diskFile{t: d.t, jobID: d.jobID, run: d.run, rel: rel}
	case syscall.S_IFDIR:
		node = &diskDir{t: d.t, jobID: d.jobID, run: d.run, rel: rel, seed: d.childIno(name)}
	case syscall.S_IFLNK, syscall.S_IFIFO:
		node = &diskOther{t: d.t, jobID: d.jobID, run: d.run, rel: rel, typ: mode}
	default:
		return nil, syscall.ENOENT // devices, sockets: not shown
	}
	return newChild(ctx, d.EmbeddedInode(), node, mode, d.entryIno(name, &st), out)
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
	run   uint64
	rel   string
}

func (f *diskFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	errno := f.t.lookRunFile(ctx, a, f.jobID, f.run, f.rel, syscall.S_IFREG)
	a.Blksize = diskBlksize
	return errno
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
	hold, errno := f.t.holdFD(ctx, f.jobID, "runs/"+strconv.FormatUint(f.run, 10)+"/"+f.rel)
	if errno != 0 {
		return nil, 0, errno
	}
	rf, err := f.t.m.OpenRunFile(f.jobID, f.run, f.rel)
	if err != nil {
		hold.release()
		return nil, 0, toErrno(err)
	}
	holder := f.t.holderOf(ctx, f.jobID)
	h := &readHandle{f: rf, hold: hold, holder: holder}
	if passthroughOK.Load() {
		// Only once its step is done: it may still replace the file, and
		// a node (numbered by path) passed through would keep the old.
		if r, err := f.t.m.Run(f.jobID, f.run); err == nil && r.Status.Terminal() {
			return f.t.offered(ctx, f.jobID, h), sharerFlags(holder, noFlush), 0
		}
	}
	return h, sharerFlags(holder, noFlush), 0
}

// diskOther is a symlink or a FIFO below a run's folder: its attributes,
// and a symlink's target as text. Neither is ever followed or opened here.
type diskOther struct {
	gofs.Inode
	t     *tree
	jobID string
	run   uint64
	rel   string
	typ   uint32 // S_IFLNK or S_IFIFO
}

func (o *diskOther) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	return o.t.lookRunFile(ctx, a, o.jobID, o.run, o.rel, o.typ)
}

func (o *diskOther) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return o.fill(ctx, &out.Attr)
}

func (o *diskOther) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if errno := current(ctx, o.EmbeddedInode()); errno != 0 {
		return nil, errno
	}
	if o.typ != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	target, err := o.t.m.ReadRunLink(o.jobID, o.run, o.rel)
	if err != nil {
		return nil, toErrno(err)
	}
	return target, 0
}
