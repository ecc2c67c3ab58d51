package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/exec/beneath"
	"github.com/jobfs/jobfs/jobs"
)

// stageDir is MOUNT/<job>/input: what users stage for the next run, moved
// into the run's input when it is triggered. It is an ordinary folder kept
// on disk in the job's folder (root-owned, inside the 0700 state folder):
// subfolders, modes, times, symlinks that stay inside it, hard links,
// FIFOs and sockets, rename; the inode numbers are the disk's, so they do
// not change on rename and hard links share one. Whatever is made here
// belongs to the job's owner, the user the steps run as, so a step can
// read what a runner staged.
//
// The daemon follows no symlink here: every path is resolved below the
// stage folder with package beneath, and every call on the last name is
// the *at form that does not follow it. A symlink is made only when its
// target stays inside input/ (the kernel resolves it, never the daemon).
// Device nodes are refused. Permission checks are by role (runner or more
// may change it), not by the modes, which only travel into the run; chown
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
	jobID string // the job whose input/ made it; ref() is the place on disk
}

// stageRef is a node's place on disk: rel below the job's stage folder.
type stageRef struct {
	t     *tree
	jobID string
	root  string
	rel   string
}

// resolveFlags is beneath's: no symlink, no "..", no mount crossed.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

func (d *stageDir) ref() (stageRef, syscall.Errno) {
	return stageRef{t: d.t, jobID: d.jobID, root: d.t.m.StageDir(d.jobID)}, 0
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

// beneathErrno is toErrno for package beneath: a symlink on the way (ELOOP)
// or a mount crossed (EXDEV) means the name is not there, as the tree
// shows no symlinks.
func beneathErrno(err error) syscall.Errno {
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EXDEV) {
		return syscall.ENOENT
	}
	return toErrno(err)
}

// dirFD opens the folder r names (O_PATH) below the stage folder.
func (r stageRef) dirFD() (int, syscall.Errno) {
	fd, err := beneath.Open(r.root, r.rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, beneathErrno(err)
	}
	return fd, 0
}

// parentFD opens the folder holding r and returns it with r's last name.
func (r stageRef) parentFD() (int, string, syscall.Errno) {
	p := stageRef{t: r.t, jobID: r.jobID, root: r.root, rel: filepath.Dir(r.rel)}
	if p.rel == "." {
		p.rel = ""
	}
	fd, errno := p.dirFD()
	return fd, filepath.Base(r.rel), errno
}

// stat describes r itself, a symlink not followed.
func (r stageRef) stat() (unix.Stat_t, syscall.Errno) {
	var st unix.Stat_t
	if r.rel == "" {
		fd, errno := r.dirFD()
		if errno != 0 {
			return st, errno
		}
		defer beneath.CloseFd(fd)
		return st, toErrno(unix.Fstat(fd, &st))
	}
	pfd, name, errno := r.parentFD()
	if errno != 0 {
		return st, errno
	}
	defer beneath.CloseFd(pfd)
	return st, toErrno(unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW))
}

// stageAttr fills a from a disk stat: what the disk says, owner and modes
// included (the staged entries belong to the job's owner, see stageDir).
func stageAttr(st *unix.Stat_t, a *fuse.Attr) {
	a.Ino = st.Ino
	a.Size = uint64(st.Size)
	a.Blocks = uint64(st.Blocks)
	a.Mode = st.Mode
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
	r, _ := d.ref()
	st, errno := r.stat()
	if errno != 0 {
		return errno
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
		r, _ := d.ref()
		fd, errno := r.dirFD()
		if errno != 0 {
			return errno
		}
		defer beneath.CloseFd(fd)
		if errno := setTimes(fd, "", in); errno != 0 {
			return errno
		}
	}
	return d.fill(ctx, &out.Attr)
}

func (n *stagedFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r, errno := n.ref()
	if errno != 0 {
		return errno
	}
	st, errno := r.stat()
	if errno != 0 {
		return errno
	}
	stageAttr(&st, a)
	n.t.forCaller(ctx, a, r.jobID, jobs.Runner) // modes for whoever looks (owner.go)
	return 0
}

// Getattr describes the open file itself when there is a handle (also
// after its name was removed), else the name.
func (n *stagedFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*stagedHandle); ok {
		var st unix.Stat_t
		if err := unix.Fstat(h.fd, &st); err != nil {
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
	return stageMake(ctx, d, name, out, func(fd int) error { return unix.Mkdirat(fd, name, mode&0o7777) }, mode)
}
func (n *stagedFile) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMake(ctx, n, name, out, func(fd int) error { return unix.Mkdirat(fd, name, mode&0o7777) }, mode)
}
func (d *stageDir) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMknod(ctx, d, name, mode, dev, out)
}
func (n *stagedFile) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return stageMknod(ctx, n, name, mode, dev, out)
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
	return stageRemove(ctx, d, name, 0)
}
func (n *stagedFile) Unlink(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, n, name, 0)
}
func (d *stageDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, d, name, unix.AT_REMOVEDIR)
}
func (n *stagedFile) Rmdir(ctx context.Context, name string) syscall.Errno {
	return stageRemove(ctx, n, name, unix.AT_REMOVEDIR)
}
func (d *stageDir) Rename(ctx context.Context, name string, np gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return stageRename(ctx, d, name, np, newName, flags)
}
func (n *stagedFile) Rename(ctx context.Context, name string, np gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return stageRename(ctx, n, name, np, newName, flags)
}

// writable returns the folder's reference once the caller may change it
// (runner or more) and name may be made in it.
func writable(ctx context.Context, dir stager, name string) (stageRef, syscall.Errno) {
	r, errno := dir.ref()
	if errno != 0 {
		return r, errno
	}
	if errno := r.t.need(ctx, r.jobID, jobs.Runner); errno != 0 {
		return r, errno
	}
	if r.rel == "" && name == "input.json" {
		return r, toErrno(r.t.m.Refuse(r.jobID, "input/input.json", "the name is taken by the data payload; write the payload to data"))
	}
	return r, 0
}

// newStageChild registers the entry name of folder dir (open as pfd).
func newStageChild(ctx context.Context, dir stager, pfd int, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, toErrno(err)
	}
	stageAttr(&st, &out.Attr)
	r, _ := dir.ref()
	node := &stagedFile{t: dir.(interface{ tree() *tree }).tree(), jobID: r.jobID}
	return dir.EmbeddedInode().NewInode(ctx, node, gofs.StableAttr{Mode: st.Mode & unix.S_IFMT, Ino: stageIno(st.Ino)}), 0
}

func (d *stageDir) tree() *tree   { return d.t }
func (n *stagedFile) tree() *tree { return n.t }

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
	pfd, errno := r.dirFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(pfd)
	return newStageChild(ctx, dir, pfd, name, out)
}

func stageReaddir(ctx context.Context, dir stager) (gofs.DirStream, syscall.Errno) {
	if errno := current(ctx, dir.EmbeddedInode()); errno != 0 {
		return nil, errno
	}
	r, errno := dir.ref()
	if errno != 0 {
		return nil, errno
	}
	pfd, errno := r.dirFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(pfd)
	list, err := beneath.ReadDir(r.root, r.rel)
	if err != nil {
		return nil, beneathErrno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(list))
	for _, e := range list {
		var st unix.Stat_t
		if unix.Fstatat(pfd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue // removed meanwhile: Lookup would not find it
		}
		ents = append(ents, fuse.DirEntry{Name: e.Name(), Mode: st.Mode & unix.S_IFMT, Ino: stageIno(st.Ino)})
	}
	return dirEntries(ents...), 0
}

// stageMake makes name in dir with mk (mkdirat, mknodat), then gives it
// mode (the daemon's umask must not apply) and the job owner.
func stageMake(ctx context.Context, dir stager, name string, out *fuse.EntryOut, mk func(pfd int) error, mode uint32) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir, name)
	if errno != 0 {
		return nil, errno
	}
	pfd, errno := r.dirFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(pfd)
	if err := mk(pfd); err != nil {
		return nil, toErrno(err)
	}
	fd, err := beneath.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW)
	if err == nil {
		r.giveToOwner(fd, "") // first: a chown clears set-id bits
		if errno := chmodFD(fd, mode&0o7777); errno != 0 {
			_ = r.t.m.Refuse(r.jobID, "input/"+filepath.Join(r.rel, name), "mode not applied: "+errno.Error()) // logged; the entry exists
		}
		beneath.CloseFd(fd)
	}
	return newStageChild(ctx, dir, pfd, name, out)
}

// chmodFD sets the mode of what an O_PATH descriptor refers to (not a
// symlink) through its /proc/self/fd link, which names that very inode.
func chmodFD(fd int, mode uint32) syscall.Errno {
	return toErrno(unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0))
}

// giveToOwner makes fd (or name below it, not followed) the job owner's,
// when the daemon may: a runner's staged files are read by steps running
// as the owner. A daemon that is not root owns them already.
func (r stageRef) giveToOwner(fd int, name string) {
	if os.Geteuid() != 0 {
		return
	}
	j, err := r.t.m.JobByID(r.jobID)
	if err != nil {
		return // the job is gone: nothing will run it
	}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	// A failure leaves it root's: the step may not read it, and says so.
	_ = unix.Fchownat(fd, name, int(j.Owner), int(primaryGID(j.Owner)), flags)
}

func stageMknod(ctx context.Context, dir stager, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFREG:
	default:
		if r, errno := dir.ref(); errno == 0 {
			_ = r.t.m.Refuse(r.jobID, "input/"+filepath.Join(r.rel, name), "device nodes cannot be staged") // EPERM is the answer
		}
		return nil, syscall.EPERM
	}
	return stageMake(ctx, dir, name, out, func(fd int) error { return unix.Mknodat(fd, name, mode, 0) }, mode)
}

// stageSymlink makes a symlink whose target stays inside input/.
func stageSymlink(ctx context.Context, dir stager, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir, name)
	if errno != 0 {
		return nil, errno
	}
	if !insideStage(r.rel, target) {
		return nil, refusePerm(r, filepath.Join(r.rel, name), "a symlink in input/ must point inside input/ (relative, not climbing out): "+target)
	}
	pfd, errno := r.dirFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(pfd)
	if err := unix.Symlinkat(target, pfd, name); err != nil {
		return nil, toErrno(err)
	}
	r.giveToOwner(pfd, name)
	return newStageChild(ctx, dir, pfd, name, out)
}

// refusePerm logs why and answers EPERM.
func refusePerm(r stageRef, rel, reason string) syscall.Errno {
	_ = r.t.m.Refuse(r.jobID, "input/"+rel, reason) // the answer is EPERM, not the refusal's EINVAL
	return syscall.EPERM
}

// insideStage reports whether a symlink in folder dir (relative to input/)
// with this target names something inside input/.
func insideStage(dir, target string) bool {
	if target == "" || filepath.IsAbs(target) {
		return false
	}
	p := filepath.Clean(filepath.Join("/", dir, target))
	q := filepath.Clean(filepath.Join(dir, target))
	return p == "/"+q || (q == "." && p == "/")
}

func stageLink(ctx context.Context, dir stager, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r, errno := writable(ctx, dir, name)
	if errno != 0 {
		return nil, errno
	}
	tr, errno := refOf(target, r.jobID)
	if errno != 0 {
		return nil, errno
	}
	if tr.rel == "" {
		return nil, syscall.EPERM // input/ itself
	}
	tpfd, tname, errno := tr.parentFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(tpfd)
	pfd, errno := r.dirFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(pfd)
	if err := unix.Linkat(tpfd, tname, pfd, name, 0); err != nil {
		return nil, toErrno(err)
	}
	return newStageChild(ctx, dir, pfd, name, out)
}

func stageCreate(ctx context.Context, dir stager, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	r, errno := writable(ctx, dir, name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	pfd, errno := r.dirFD()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	defer beneath.CloseFd(pfd)
	open := int(flags)&^(unix.O_CREAT|unix.O_EXCL) | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat2(pfd, name, &unix.OpenHow{Flags: uint64(open | unix.O_CREAT | unix.O_EXCL), Mode: uint64(mode & 0o7777), Resolve: resolveFlags})
	created := err == nil
	if err == unix.EEXIST && flags&unix.O_EXCL == 0 {
		fd, err = unix.Openat2(pfd, name, &unix.OpenHow{Flags: uint64(open), Resolve: resolveFlags})
	}
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	if created {
		r.giveToOwner(fd, "") // first: a chown clears set-id bits
		if err := unix.Fchmod(fd, mode&0o7777); err != nil {
			_ = unix.Close(fd) // nothing written yet; the chmod error is the answer
			return nil, nil, 0, toErrno(err)
		}
	}
	in, errno := newStageChild(ctx, dir, pfd, name, out)
	if errno != 0 {
		_ = unix.Close(fd) // nothing written yet; the lookup error is the answer
		return nil, nil, 0, errno
	}
	return in, newStagedHandle(r, fd, flags), 0, 0
}

func stageRemove(ctx context.Context, dir stager, name string, flags int) syscall.Errno {
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
	pfd, errno := r.dirFD()
	if errno != 0 {
		return errno
	}
	defer beneath.CloseFd(pfd)
	return toErrno(unix.Unlinkat(pfd, name, flags))
}

func stageRename(ctx context.Context, dir stager, name string, np gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	r, errno := writable(ctx, dir, name)
	if errno != 0 {
		return errno
	}
	nr, errno := refOf(np, r.jobID)
	if errno != 0 {
		return errno
	}
	if nr.rel == "" && newName == "input.json" {
		if flags != 0 {
			return syscall.EXDEV // mv's renameat2 then copies, and its create is refused with the reason
		}
		return toErrno(r.t.m.Refuse(r.jobID, "input/input.json", "the name is taken by the data payload; write the payload to data"))
	}
	pfd, errno := r.dirFD()
	if errno != 0 {
		return errno
	}
	defer beneath.CloseFd(pfd)
	npfd, errno := nr.dirFD()
	if errno != 0 {
		return errno
	}
	defer beneath.CloseFd(npfd)
	return toErrno(unix.Renameat2(pfd, name, npfd, newName, uint(flags)))
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
	pfd, name, errno := r.parentFD()
	if errno != 0 {
		return nil, errno
	}
	defer beneath.CloseFd(pfd)
	buf := make([]byte, 4096)
	k, err := unix.Readlinkat(pfd, name, buf)
	if err != nil {
		return nil, toErrno(err)
	}
	return buf[:k], 0
}

// Setattr applies mode, owner (root only), size and times, on the open
// file when there is a handle, else on the name (never through a symlink).
func (n *stagedFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	r, errno := n.ref()
	h, _ := fh.(*stagedHandle)
	if errno != 0 && h == nil {
		return errno
	}
	if errno := n.t.need(ctx, r.jobID, jobs.Runner); errno != 0 {
		return errno
	}
	fd, name, done, errno := r.target(h)
	if errno != 0 {
		return errno
	}
	defer done()
	if errno := setattrAt(ctx, fd, name, in); errno != 0 {
		return errno
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name)); err != nil {
		return toErrno(err)
	}
	stageAttr(&st, &out.Attr)
	return 0
}

// target returns an O_PATH descriptor and name for the *at calls: the open
// file's own descriptor and "" when there is a handle, else the parent
// folder and the last name.
func (r stageRef) target(h *stagedHandle) (fd int, name string, done func(), errno syscall.Errno) {
	if h != nil {
		return h.fd, "", func() {}, 0
	}
	pfd, name, errno := r.parentFD()
	if errno != 0 {
		return -1, "", nil, errno
	}
	return pfd, name, func() { beneath.CloseFd(pfd) }, 0
}

func emptyPath(name string) int {
	if name == "" {
		return unix.AT_EMPTY_PATH
	}
	return 0
}

// setattrAt applies one SETATTR to name below fd ("" for fd itself).
func setattrAt(ctx context.Context, fd int, name string, in *fuse.SetAttrIn) syscall.Errno {
	if mode, ok := in.GetMode(); ok {
		if errno := chmodAt(fd, name, mode&0o7777); errno != 0 {
			return errno
		}
	}
	if errno := chownAt(ctx, fd, name, in); errno != 0 {
		return errno
	}
	if size, ok := in.GetSize(); ok {
		if errno := truncateAt(fd, name, size); errno != 0 {
			return errno
		}
	}
	return setTimes(fd, name, in)
}

// chmodAt changes the mode of name (not a symlink: EOPNOTSUPP, as lchmod).
func chmodAt(fd int, name string, mode uint32) syscall.Errno {
	if name == "" {
		return chmodFD(fd, mode) // an open staged file or folder, not a symlink
	}
	pfd, err := beneath.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return beneathErrno(err)
	}
	defer beneath.CloseFd(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return toErrno(err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return syscall.EOPNOTSUPP
	}
	return chmodFD(pfd, mode)
}

// chownAt changes owner and group: root may give any, others only keep
// what is there.
func chownAt(ctx context.Context, fd int, name string, in *fuse.SetAttrIn) syscall.Errno {
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if !uok && !gok {
		return 0
	}
	u, g := -1, -1
	if uok {
		u = int(uid)
	}
	if gok {
		g = int(gid)
	}
	if c, ok := fuse.FromContext(ctx); ok && c.Uid != 0 {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name)); err != nil {
			return toErrno(err)
		}
		if (uok && uid != st.Uid) || (gok && gid != st.Gid) {
			return syscall.EPERM
		}
		return 0
	}
	return toErrno(unix.Fchownat(fd, name, u, g, unix.AT_SYMLINK_NOFOLLOW|emptyPath(name)))
}

func truncateAt(fd int, name string, size uint64) syscall.Errno {
	if name == "" {
		self := "/proc/self/fd/" + strconv.Itoa(fd) // the open file itself
		wfd, err := unix.Open(self, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return toErrno(err)
		}
		defer func() { _ = unix.Close(wfd) }() // only truncated: nothing buffered
		return toErrno(unix.Ftruncate(wfd, int64(size)))
	}
	wfd, err := beneath.Openat(fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return beneathErrno(err)
	}
	defer func() { _ = unix.Close(wfd) }() // only truncated: nothing buffered
	return toErrno(unix.Ftruncate(wfd, int64(size)))
}

// setTimes applies the times of a SETATTR (now, a given time, or left).
func setTimes(fd int, name string, in *fuse.SetAttrIn) syscall.Errno {
	if in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_MTIME) == 0 {
		return 0
	}
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if in.Valid&fuse.FATTR_ATIME != 0 {
		ts[0] = unix.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			ts[0] = unix.Timespec{Nsec: unix.UTIME_NOW}
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		ts[1] = unix.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			ts[1] = unix.Timespec{Nsec: unix.UTIME_NOW}
		}
	}
	if name != "" {
		return toErrno(unix.UtimesNanoAt(fd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW))
	}
	// The descriptor itself (O_PATH or open), through its /proc link.
	return toErrno(unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts[:], 0))
}

// Open opens a staged file; a handle open for writing is reported to the
// Manager, so a run leaves the file staged while it is written.
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
	pfd, name, errno := r.parentFD()
	if errno != 0 {
		return nil, 0, errno
	}
	defer beneath.CloseFd(pfd)
	open := int(flags)&^(unix.O_CREAT|unix.O_EXCL) | unix.O_NOFOLLOW | unix.O_NONBLOCK
	fd, err := beneath.Openat(pfd, name, open)
	if err != nil {
		return nil, 0, beneathErrno(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		// O_NONBLOCK only kept a FIFO from hanging the daemon here.
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK) // a regular file ignores it
		}
	}
	return newStagedHandle(r, fd, flags), 0, 0
}

// stagedHandle is an open staged file: a loopback file over fd, and for a
// writer the Manager's record of it (jobs.StageWriter).
type stagedHandle struct {
	fd int
	lb gofs.FileHandle
	w  *jobs.StageWriter
}

func newStagedHandle(r stageRef, fd int, flags uint32) *stagedHandle {
	h := &stagedHandle{fd: fd, lb: gofs.NewLoopbackFile(fd)}
	if isWrite(flags) {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			h.w = r.t.m.StageOpen(r.jobID, stageIno(st.Ino))
		}
	}
	return h
}

func (h *stagedHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lb.(gofs.FileReader).Read(ctx, dest, off)
}

func (h *stagedHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.w != nil {
		h.w.Wrote()
	}
	return h.lb.(gofs.FileWriter).Write(ctx, data, off)
}

func (h *stagedHandle) Flush(ctx context.Context) syscall.Errno {
	errno := h.lb.(gofs.FileFlusher).Flush(ctx)
	if h.w != nil {
		h.w.Flushed()
	}
	return errno
}

func (h *stagedHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return h.lb.(gofs.FileFsyncer).Fsync(ctx, flags)
}

func (h *stagedHandle) Release(ctx context.Context) syscall.Errno {
	if h.w != nil {
		h.w.Closed()
	}
	return h.lb.(gofs.FileReleaser).Release(ctx)
}

func (h *stagedHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lb.(gofs.FileLseeker).Lseek(ctx, off, whence)
}

func (h *stagedHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if h.w != nil {
		h.w.Wrote()
	}
	return h.lb.(gofs.FileAllocater).Allocate(ctx, off, size, mode)
}
