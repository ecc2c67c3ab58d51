package fs

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// stageDir is MOUNT/<job>/input: what users stage for the next run, moved
// into the run's input when it is triggered. It behaves as an ordinary
// folder: subfolders, modes, times, symlinks that stay inside it, hard
// links, FIFOs and sockets, rename; the inode numbers are the disk's, so
// they do not change on rename and hard links share one.
//
// Package jobs keeps it (jobs/stagefs.go): it resolves every place below
// the job's stage folder through no symlink, makes what is made the job
// owner's, refuses device nodes and symlinks that leave input/, and hands
// back attributes and open files (jobs.StagedFile), never a path. This
// file names places (rel below input/) and checks roles: runner or more
// may change it, not by the modes, which only travel into the run; chown
// is root's.
type stageDir struct {
	gofs.Inode
	t     *tree
	jobID string
}

// stagedFile is a folder, file, symlink, FIFO or socket below input/. It
// holds no path: it finds it from the tree (a rename or a hard link moves
// the node, the disk keeps its identity), so go-fuse may hand the same node
// to every name of one inode.
type stagedFile struct {
	gofs.Inode
	t     *tree
	jobID string // the job whose input/ made it; ref() is its place
}

// stageRef is a node's place: rel below the job's input/ ("" for input/).
type stageRef struct {
	t     *tree
	jobID string
	rel   string
}

// at is the place of name in the folder r.
func (r stageRef) at(name string) string { return filepath.Join(r.rel, name) }

func (d *stageDir) ref() (stageRef, syscall.Errno) {
	return stageRef{t: d.t, jobID: d.jobID}, 0
}

func (n *stagedFile) ref() (stageRef, syscall.Errno) {
	in := n.EmbeddedInode()
	_, p := in.Parent()
	for depth := 0; p != nil && depth < 4096; depth++ {
		if sd, ok := p.Operations().(*stageDir); ok {
			r, _ := sd.ref()
			r.rel = in.Path(p)
			if strings.HasPrefix(r.rel, ".go-fuse.") || strings.Contains(r.rel, "/.go-fuse.") {
				return r, syscall.ENOENT // removed or moved into a run
			}
			return r, 0
		}
		_, p = p.Parent()
	}
	return stageRef{}, syscall.ENOENT
}

// stager is both kinds of node: what the shared folder operations need.
type stager interface {
	gofs.InodeEmbedder
	ref() (stageRef, syscall.Errno)
}

// refOf returns the stage reference of a node of this package's stage, or
// ENOENT/EXDEV when in is elsewhere (another job, another folder).
func refOf(in gofs.InodeEmbedder, jobID string) (stageRef, syscall.Errno) {
	s, ok := in.(stager)
	if !ok {
		return stageRef{}, syscall.EXDEV
	}
	r, errno := s.ref()
	if errno == 0 && r.jobID != jobID {
		return r, syscall.EXDEV
	}
	return r, errno
}

// stageAttr fills a from a disk stat: what the disk says, owner and modes
// included (the staged entries belong to the job's owner, see stageDir),
// but for the set-ID bits input/ does not keep (jobs.SetIDDropped), which
// only a file staged by an older jobfs can have: shown, a root's cp -a out
// of input/ would copy them.
func stageAttr(st *unix.Stat_t, a *fuse.Attr) {
	a.Ino = st.Ino
	a.Size = uint64(st.Size)
	a.Blocks = uint64(st.Blocks)
	a.Mode = st.Mode &^ jobs.SetIDDropped(st.Mode, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	a.Nlink = uint32(st.Nlink)
	a.Uid, a.Gid = st.Uid, st.Gid
	a.Rdev = uint32(st.Rdev)
	a.Blksize = uint32(st.Blksize)
	a.Atime, a.Atimensec = uint64(st.Atim.Sec), uint32(st.Atim.Nsec)
	a.Mtime, a.Mtimensec = uint64(st.Mtim.Sec), uint32(st.Mtim.Nsec)
	a.Ctime, a.Ctimensec = uint64(st.Ctim.Sec), uint32(st.Ctim.Nsec)
}

// fill shows input/ as the job's own folder (on disk it is root's), with
// its true times and link count.
func (d *stageDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	st, err := d.t.m.Staging(d.jobID).Stat("")
	if err != nil {
		return toErrno(err)
	}
	stageAttr(&st, a)
	a.Mode = syscall.S_IFDIR | 0o755
	a.Uid, a.Gid = d.t.owner, d.t.gid
	if j, err := d.t.m.JobByID(d.jobID); err == nil {
		a.Uid, a.Gid = j.Owner, primaryGID(j.Owner)
	}
	d.t.forCaller(ctx, a, d.jobID, jobs.Runner) // modes for whoever looks (owner.go)
	return 0
}

func (d *stageDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

// Setattr of input/ itself keeps its times (touch, rsync -a of a tree's
// top folder); its mode and owner are the job's.
func (d *stageDir) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_MTIME) != 0 {
		if errno := d.t.need(ctx, d.jobID, jobs.Runner); errno != 0 {
			return errno
		}
		a := stageTimes(in)
		if _, err := d.t.m.Staging(d.jobID).Setattr("", nil, a); err != nil {
			return toErrno(err)
		}
	}
	return d.fill(ctx, &out.Attr)
}

func (n *stagedFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r, errno := n.ref()
	if errno != 0 {
		return errno
	}
	st, err := n.t.m.Staging(r.jobID).Stat(r.rel)
	if err != nil {
		return toErrno(err)
	}
	stageAttr(&st, a)
	n.t.forCaller(ctx, a, r.jobID, jobs.Runner) // modes for whoever looks (owner.go)
	return 0
}

// Getattr describes the open file itself when there is a handle (also
// after its name was removed), else the name.
func (n *stagedFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*stagedHandle); ok {
		st, err := h.f.Stat()
		if err != nil {
			return toErrno(err)
		}
		stageAttr(&st, &out.Attr)
		if r, errno := n.ref(); errno == 0 {
			n.t.forCaller(ctx, &out.Attr, r.jobID, jobs.Runner)
		}
		return 0
	}
	return n.fill(ctx, &out.Attr)
}

// Folder operations, the same on input/ and on its subfolders.

func (d *stageDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageLookup(ctx, d, name, out)
}
func (n *stagedFile) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageLookup(ctx, n, name, out)
}
func (d *stageDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return stageReaddir(ctx, d)
}
func (n *stagedFile) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return stageReaddir(ctx, n)
}
func (d *stageDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMkdir(ctx, d, name, mode, out)
}
func (n *stagedFile) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMkdir(ctx, n, name, mode, out)
}
func (d *stageDir) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMknod(ctx, d, name, mode, out)
}
func (n *stagedFile) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMknod(ctx, n, name, mode, out)
}
func (d *stageDir) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageSymlink(ctx, d, target, name, out)
}
func (n *stagedFile) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageSymlink(ctx, n, target, name, out)
}
func (d *stageDir) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageLink(ctx, d, target, name, out)
}
func (n *stagedFile) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageLink(ctx, n, target, name, out)
}
func (d *stageDir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return stageCreate(ctx, d, name, flags, mode, out)
}
func (n *stagedFile) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return stageCreate(ctx, n, name, flags, mode, out)
}
func (d *stageDir) Unlink(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, d, name, false)
}
func (n *stagedFile) Unlink(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, n, name, false)
}
func (d *stageDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, d, name, true)
}
func (n *stagedFile) Rmdir(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, n, name, true)
}
func (d *stageDir) Rename(ctx context.Context, name string, np gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return stageRename(ctx, d, name, np, newName, flags)
}
func (n *stagedFile) Rename(ctx context.Context, name string, np gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return stageRename(ctx, n, name, np, newName, flags)
}

// writable returns the folder's place once the caller may change it
// (runner or more).
func writable(ctx context.Context, dir stager) (stageRef, syscall.Errno) {
	r, errno := dir.ref()
	if errno != 0 {
		return r, errno
	}
	return r, r.t.need(ctx, r.jobID, jobs.Runner)
}

// newStageChild registers the entry of folder dir that st describes.
func newStageChild(ctx context.Context, dir stager, r stageRef, st *unix.Stat_t, out *fuse.EntryOut) *gofs.Inode {
	stageAttr(st, &out.Attr)
	node := &stagedFile{t: r.t, jobID: r.jobID}
	return dir.EmbeddedInode().NewInode(ctx, node, gofs.StableAttr{Mode: st.Mode & unix.S_IFMT, Ino: stageIno(st.Ino)})
}

// made registers what a jobs.Stage* call made in dir, or maps its error.
func made(ctx context.Context, dir stager, r stageRef, st unix.Stat_t, err error, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if err != nil {
		return nil, toErrno(err)
	}
	return newStageChild(ctx, dir, r, &st, out), 0
}

// stageIno keeps the disk's inode number, but for the two go-fuse reserves.
func stageIno(ino uint64) uint64 {
	if ino == 0 || ino == ^uint64(0) {
		return 2
	}
	return ino
}

func stageLookup(ctx context.Context, dir stager, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := current(ctx, dir.EmbeddedInode()); errno != 0 {
		return nil, errno
	}
	r, errno := dir.ref()
	if errno != 0 {
		return nil, errno
	}
	st, err := r.t.m.Staging(r.jobID).Stat(r.at(name))
	return made(ctx, dir, r, st, err, out)
}

func stageReaddir(ctx context.Context, dir stager) (gofs.DirStream, syscall.Errno) {
	if errno := current(ctx, dir.EmbeddedInode()); errno != 0 {
		return nil, errno
	}
	r, errno := dir.ref()
	if errno != 0 {
		return nil, errno
	}
	list, err := r.t.m.Staging(r.jobID).ReadDir(r.rel)
	if err != nil {
		return nil, toErrno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(list))
	for _, e := range list {
		ents = append(ents, fuse.DirEntry{Name: e.Name, Mode: e.Type, Ino: stageIno(e.Ino)})
	}
	return dirEntries(dir, ents...), 0
}

func stageMkdir(ctx context.Context, dir stager, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir)
	if errno != 0 {
		return nil, errno
	}
	st, err := r.t.m.Staging(r.jobID).Mkdir(r.rel, name, mode)
	return made(ctx, dir, r, st, err, out)
}

func stageMknod(ctx context.Context, dir stager, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir)
	if errno != 0 {
		return nil, errno
	}
	st, err := r.t.m.Staging(r.jobID).Mknod(r.rel, name, mode)
	return made(ctx, dir, r, st, err, out)
}

// stageSymlink makes a symlink whose target stays inside input/.
func stageSymlink(ctx context.Context, dir stager, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir)
	if errno != 0 {
		return nil, errno
	}
	st, err := r.t.m.Staging(r.jobID).Symlink(r.rel, target, name)
	return made(ctx, dir, r, st, err, out)
}

func stageLink(ctx context.Context, dir stager, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir)
	if errno != 0 {
		return nil, errno
	}
	tr, errno := refOf(target, r.jobID)
	if errno != 0 {
		return nil, errno
	}
	st, err := r.t.m.Staging(r.jobID).Link(tr.rel, r.rel, name)
	return made(ctx, dir, r, st, err, out)
}

func stageCreate(ctx context.Context, dir stager, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	r, errno := writable(ctx, dir)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	hold, errno := r.t.holdFD(ctx, r.jobID, filepath.Join("input", r.rel, name))
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f, st, err := r.t.m.Staging(r.jobID).Create(r.rel, name, flags, mode)
	if err != nil {
		hold.release()
		return nil, nil, 0, toErrno(err)
	}
	h := &stagedHandle{f: f, hold: hold, holder: r.t.holderOf(ctx, r.jobID)}
	return newStageChild(ctx, dir, r, &st, out), r.t.offered(ctx, r.jobID, h), sharerFlags(h.holder, 0), 0
}

func stageRemove(ctx context.Context, dir stager, name string, isDir bool) syscall.Errno {
	r, errno := dir.ref()
	if errno != 0 {
		return errno
	}
	if errno := r.t.need(ctx, r.jobID, jobs.Runner); errno != 0 {
		return errno
	}
	if r.t.walking(ctx, r.jobID) {
		return 0 // the job is being deleted whole (walk.go)
	}
	return toErrno(r.t.m.Staging(r.jobID).Remove(r.rel, name, isDir))
}

func stageRename(ctx context.Context, dir stager, name string, np gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	r, errno := writable(ctx, dir)
	if errno != 0 {
		return errno
	}
	nr, errno := refOf(np, r.jobID)
	if errno != 0 {
		return errno
	}
	return toErrno(r.t.m.Staging(r.jobID).Rename(r.rel, name, nr.rel, newName, flags))
}

// Readlink returns a symlink's target, read without following it.
func (n *stagedFile) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if errno := current(ctx, n.EmbeddedInode()); errno != 0 {
		return nil, errno
	}
	r, errno := n.ref()
	if errno != 0 {
		return nil, errno
	}
	target, err := n.t.m.Staging(r.jobID).Readlink(r.rel)
	if err != nil {
		return nil, toErrno(err)
	}
	return target, 0
}

// Setattr applies mode, owner (root only), size and times, on the open
// file when there is a handle, else on the name (never through a symlink).
func (n *stagedFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	r, errno := n.ref()
	h, _ := fh.(*stagedHandle)
	if errno != 0 && h == nil {
		return errno
	}
	if errno := n.t.need(ctx, n.jobID, jobs.Runner); errno != 0 {
		return errno
	}
	var f *jobs.StagedFile
	if h != nil {
		f = h.f
	}
	st, err := n.t.m.Staging(n.jobID).Setattr(r.rel, f, stageSetattr(ctx, in))
	if err != nil {
		return toErrno(err)
	}
	stageAttr(&st, &out.Attr)
	return 0
}

// stageSetattr translates a SETATTR; only root may give an owner.
func stageSetattr(ctx context.Context, in *fuse.SetAttrIn) jobs.StageAttr {
	a := stageTimes(in)
	a.Mode, a.SetMode = in.GetMode()
	a.UID, a.SetUID = in.GetUID()
	a.GID, a.SetGID = in.GetGID()
	a.Size, a.SetSize = in.GetSize()
	c, ok := fuse.FromContext(ctx)
	a.ByRoot = !ok || c.Uid == 0
	return a
}

// stageTimes translates the times of a SETATTR (now, a given time, or
// left as they are).
func stageTimes(in *fuse.SetAttrIn) jobs.StageAttr {
	a := jobs.StageAttr{Atime: unix.Timespec{Nsec: unix.UTIME_OMIT}, Mtime: unix.Timespec{Nsec: unix.UTIME_OMIT}}
	if in.Valid&fuse.FATTR_ATIME != 0 {
		a.Atime = unix.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			a.Atime = unix.Timespec{Nsec: unix.UTIME_NOW}
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		a.Mtime = unix.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			a.Mtime = unix.Timespec{Nsec: unix.UTIME_NOW}
		}
	}
	return a
}

// Open opens a staged file; package jobs tells its Manager of a handle
// open for writing, so a run leaves the file staged while it is written.
func (n *stagedFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, n.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	r, errno := n.ref()
	if errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) || flags&unix.O_TRUNC != 0 {
		if errno := n.t.need(ctx, r.jobID, jobs.Runner); errno != 0 {
			return nil, 0, errno
		}
	}
	if errno := n.ownerModeAllows(ctx, flags); errno != 0 {
		return nil, 0, errno
	}
	hold, errno := n.t.holdFD(ctx, r.jobID, filepath.Join("input", r.rel))
	if errno != 0 {
		return nil, 0, errno
	}
	f, err := n.t.m.Staging(r.jobID).Open(r.rel, flags)
	if err != nil {
		hold.release()
		return nil, 0, toErrno(err)
	}
	h := &stagedHandle{f: f, hold: hold, holder: n.t.holderOf(ctx, r.jobID)}
	return n.t.offered(ctx, r.jobID, h), sharerFlags(h.holder, 0), 0
}

// ownerModeAllows checks an open by the file's owner against the owner's
// bits of its mode, as ext4 would (the daemon opens it with its own
// rights): after chmod 000, ls, access(2) and an open agree. Root, like
// on ext4, and a share's holder, whose role decides, are not checked.
func (n *stagedFile) ownerModeAllows(ctx context.Context, flags uint32) syscall.Errno {
	uid := n.t.callerUID(ctx)
	if uid == 0 {
		return 0
	}
	var a fuse.Attr
	if errno := n.fill(ctx, &a); errno != 0 || a.Uid != uid || a.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return errno
	}
	need := uint32(4) // read
	switch {
	case flags&syscall.O_ACCMODE == syscall.O_WRONLY:
		need = 2
	case flags&syscall.O_ACCMODE == syscall.O_RDWR:
		need = 6
	}
	if flags&syscall.O_TRUNC != 0 {
		need |= 2
	}
	if need&^(a.Mode>>6&7) != 0 {
		return syscall.EACCES
	}
	return 0
}

// stagedHandle forwards to an open staged file (jobs.StagedFile).
type stagedHandle struct {
	f      *jobs.StagedFile
	hold   fdHold      // its count in the caller's budget of descriptors
	holder shareHolder // a share's holder is checked again at each read and write
}

func (h *stagedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := h.holder.may(jobs.Viewer, "input"); errno != 0 {
		return nil, errno
	}
	n, err := h.f.ReadAt(dest, off)
	if err != nil {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *stagedHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := h.holder.may(jobs.Runner, "input"); errno != 0 {
		return 0, errno
	}
	n, err := h.f.WriteAt(data, off)
	return uint32(n), toErrno(err)
}

func (h *stagedHandle) Flush(ctx context.Context) syscall.Errno {
	return toErrno(h.f.Flush())
}

func (h *stagedHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno(h.f.Sync())
}

func (h *stagedHandle) Release(ctx context.Context) syscall.Errno {
	h.hold.release()
	return toErrno(h.f.Close())
}

func (h *stagedHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	n, err := h.f.Seek(int64(off), int(whence))
	if err != nil {
		return 0, toErrno(err)
	}
	return uint64(n), 0
}

func (h *stagedHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if errno := h.holder.may(jobs.Runner, "input"); errno != 0 {
		return errno
	}
	return toErrno(h.f.Allocate(off, size, mode))
}

// backingFd lets the kernel read and write the file itself when it may
// (see backingFS), as before the handle reached the daemon; not for a
// share's holder, whose reads and writes the daemon checks again.
func (h *stagedHandle) backingFd() (int, bool) {
	return int(h.f.Fd()), h.holder.caller == nil
}
