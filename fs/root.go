package fs

import (
	"context"
	"errors"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// rootDir is the mount's top folder: one sub-folder per job.
type rootDir struct {
	gofs.Inode
	t *tree
}

// NewRoot returns the root node of a mount. A single-user mount serves
// owner's jobs; a shared one (multi, mounted with allow_other) gives every
// caller their own jobs at MOUNT/<job> and the jobs others share with them
// at MOUNT/@<owner>/<job>.
func NewRoot(m *jobs.Manager, owner jobs.Owner, multi bool) gofs.InodeEmbedder {
	t := newTree(m, owner)
	t.multi = multi
	t.cache = cacheable(m, multi)
	t.top = &rootDir{t: t}
	if t.cache {
		go t.watchStore()
	}
	return t.top
}

// fill: on a shared mount the top folder is each caller's own namespace
// (their jobs live there, they mkdir there), so it shows as theirs. Its
// mtime is when a job in it was last made, renamed or deleted.
func (r *rootDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r.t.attr(a, syscall.S_IFDIR|0o755, r.t.rootChanged(ctx))
	if r.t.multi {
		uid := r.t.callerUID(ctx)
		a.Uid, a.Gid = uid, primaryGID(uid)
	}
	return 0
}

func (r *rootDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return r.fill(ctx, &out.Attr)
}

func (r *rootDir) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return r.fill(ctx, &out.Attr)
}

func (r *rootDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name == dotJobfs {
		return newChild(ctx, r.EmbeddedInode(), &dotDir{t: r.t}, syscall.S_IFDIR, ino(dotJobfs), out)
	}
	if strings.HasPrefix(name, "@") && r.t.multi {
		return r.ownerChild(ctx, name, out)
	}
	j, err := r.t.m.Job(r.t.namespace(ctx), name)
	if err != nil {
		return nil, toErrno(err)
	}
	return r.jobChild(ctx, j, out)
}

// jobChild is the entry of job j in the top folder, which the kernel may
// keep (cache.go).
func (r *rootDir) jobChild(ctx context.Context, j jobs.Job, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	in, errno := newChild(ctx, r.EmbeddedInode(), &jobDir{t: r.t, job: j, fresh: true}, syscall.S_IFDIR, ino(j.ID), out)
	if errno == 0 && r.t.cache {
		r.t.names.set(j.ID, j.Name)
		r.t.cacheEntry(out)
	}
	return in, errno
}

// ownerUID is the uid of @<name> as Readdir lists it (jobs.UserName): a
// user's name, or the number of a uid that has no user any more (its jobs
// are still there, and a listed name must look up).
func ownerUID(name string) (uint64, bool) {
	if u, err := user.Lookup(name); err == nil {
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		return uid, err == nil
	}
	uid, err := strconv.ParseUint(name, 10, 32)
	return uid, err == nil && strconv.FormatUint(uid, 10) == name
}

// ownerChild is MOUNT/@<owner>: shown only when the caller may see at least
// one of that owner's jobs (root: any owner with jobs).
func (r *rootDir) ownerChild(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	uid, ok := ownerUID(name[1:])
	if !ok {
		return nil, syscall.ENOENT
	}
	visible, err := r.t.m.VisibleJobs(jobs.Owner(uid), r.t.caller(ctx))
	if err != nil {
		return nil, toErrno(err) // a failed read is not "no such owner"
	}
	if len(visible) == 0 {
		return nil, syscall.ENOENT
	}
	node := &ownerDir{t: r.t, owner: jobs.Owner(uid)}
	return newChild(ctx, r.EmbeddedInode(), node, syscall.S_IFDIR, ino(name), out)
}

// Mkdir creates a job; a bad name (an @owner folder's among them) is
// refused with EINVAL, its reason in MOUNT/.jobfs/events and the daemon's
// log (there is no job log yet).
func (r *rootDir) Mkdir(ctx context.Context, name string, _ uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	j, err := r.t.m.CreateJob(r.t.namespace(ctx), name)
	if err != nil {
		return nil, toErrno(err)
	}
	return r.jobChild(ctx, j, out)
}

func (r *rootDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if name == dotJobfs {
		return syscall.EPERM // the overview is not a job
	}
	return r.t.deleteJob(r.t.namespace(ctx), name)
}

// rootChanged is when the caller's top folder last changed: the newest
// job's creation, or a rename or deletion since the daemon started (those
// are not stored: a restart forgets them).
func (t *tree) rootChanged(ctx context.Context) time.Time {
	ns := t.namespace(ctx)
	mtime := t.dirs.get(nsKey(ns))
	if newest, err := t.m.NewestJob(ns); err == nil { // not a listing: the mount's first stat
		mtime = jobs.Latest(mtime, newest)
	}
	return mtime
}

// nsKey is the dirTimes key of a namespace's top folder.
func nsKey(o jobs.Owner) string { return "@" + strconv.FormatUint(uint64(o), 10) }

// dirTimes remembers when a folder's entries changed where the store has
// no time for it: a namespace's top folder when a job was renamed or
// deleted, a job folder when a temporary file came or went (temporary
// files never outlive the daemon, and neither need these times).
type dirTimes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (r *dirTimes) get(key string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[key]
}

func (r *dirTimes) touch(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]time.Time{}
	}
	r.m[key] = time.Now()
}

func (t *tree) deleteJob(owner jobs.Owner, name string) syscall.Errno {
	j, err := t.m.Job(owner, name)
	if err != nil {
		return toErrno(err)
	}
	if err := t.m.DeleteJob(owner, name); err != nil {
		return toErrno(err)
	}
	t.dirs.touch(nsKey(owner))
	t.names.drop(j.ID) // the kernel removes the entry itself (rmdir)
	t.temps.dropJob(j.ID)
	t.walks.dropJob(j.ID)
	return 0
}

// Create refuses files at the top: jobs are folders.
func (r *rootDir) Create(ctx context.Context, name string, _, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

func (r *rootDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if _, err := r.t.m.Job(r.t.namespace(ctx), name); err != nil {
		return toErrno(err) // ErrNotFound: ENOENT
	}
	return syscall.EISDIR
}

// Rename renames a job. Moving a job into another folder is refused.
func (r *rootDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&^uint32(renameNoReplace) != 0 {
		return syscall.EINVAL
	}
	if newParent.EmbeddedInode() != r.EmbeddedInode() {
		// A job moves only within the top folder (a rename): EPERM, which
		// mv words as "Operation not permitted", not EINVAL, which it
		// words as a move into a subfolder of itself.
		j, err := r.t.m.Job(r.t.namespace(ctx), name)
		if err != nil {
			return toErrno(err)
		}
		return renameRefused(r.t.m.Refuse(j.ID, "rename", "a job folder stays at the top of the mount: rename it there (mv "+name+" NEWNAME), it cannot move into another folder"))
	}
	if name == dotJobfs || newName == dotJobfs {
		return syscall.EPERM // the overview is not a job, and no job takes its name
	}
	return r.t.renameJob(r.t.namespace(ctx), name, newName, flags)
}

// renameJob renames owner ns's job name to newName, as a rename in its
// folder (the top one, or @owner/) answers.
func (t *tree) renameJob(ns jobs.Owner, name, newName string, flags uint32) syscall.Errno {
	if err := t.m.RenameJob(ns, name, newName); err != nil {
		if errors.Is(err, jobs.ErrExists) && flags&renameNoReplace == 0 {
			// rename(2) onto a folder that is not empty, as on ext4: a
			// job folder never is (mv -T a b says "Directory not empty").
			return syscall.ENOTEMPTY
		}
		return renameRefused(err) // a bad new name: the reason is in the job's log
	}
	t.dirs.touch(nsKey(ns))
	if t.cache { // the kernel moves its entry itself; the name is kept for watchStore
		if j, err := t.m.Job(ns, newName); err == nil {
			t.names.set(j.ID, newName)
		}
	}
	return 0
}

// renameNoReplace is RENAME_NOREPLACE: a job rename never replaces anyway.
const renameNoReplace = 1

// ownerDir is MOUNT/@<owner>: that owner's jobs shared with the caller.
type ownerDir struct {
	gofs.Inode
	t     *tree
	owner jobs.Owner
}

// fill: the mtime is the newest creation of the jobs the caller sees.
func (d *ownerDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	var mtime time.Time
	if list, err := d.t.m.VisibleJobs(d.owner, d.t.caller(ctx)); err == nil {
		for _, j := range list {
			mtime = jobs.Latest(mtime, j.Created)
		}
	}
	// The owner and root may delete a job here (Rmdir); others only read.
	mode := uint32(0o755)
	if d.t.callerUID(ctx) == 0 {
		mode = 0o777
	}
	d.t.attr(a, syscall.S_IFDIR|mode, mtime)
	a.Uid, a.Gid = d.owner, primaryGID(d.owner)
	return 0
}

func (d *ownerDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *ownerDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := d.t.m.VisibleJobs(d.owner, d.t.caller(ctx))
	if err != nil {
		return nil, toErrno(err)
	}
	var ents []fuse.DirEntry
	for _, j := range list {
		ents = append(ents, fuse.DirEntry{Name: j.Name, Mode: syscall.S_IFDIR, Ino: ino(j.ID)})
	}
	return dirEntries(d, ents...), 0
}

func (d *ownerDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	j, err := d.t.m.Job(d.owner, name)
	if err != nil {
		return nil, toErrno(err)
	}
	if d.t.m.RoleOf(j, d.t.caller(ctx)) == jobs.NoRole {
		return nil, syscall.ENOENT
	}
	return newChild(ctx, d.EmbeddedInode(), &jobDir{t: d.t, job: j, fresh: true}, syscall.S_IFDIR, ino(j.ID), out)
}

// Rmdir deletes another owner's job: root only (the owner does it in
// their own namespace).
func (d *ownerDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	j, err := d.t.m.Job(d.owner, name)
	if err != nil {
		return toErrno(err)
	}
	if errno := d.t.need(ctx, j.ID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	return d.t.deleteJob(d.owner, name)
}

func (d *ownerDir) Mkdir(ctx context.Context, name string, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EACCES
}

// Rename renames another owner's job in their folder: root only, as
// Rmdir (the owner does it in their own namespace; others get EACCES, not
// go-fuse's EOPNOTSUPP). It moves out of the folder no more than a job
// moves out of the top one.
func (d *ownerDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&^uint32(renameNoReplace) != 0 {
		return syscall.EINVAL
	}
	j, err := d.t.m.Job(d.owner, name)
	if err != nil {
		return toErrno(err)
	}
	if errno := d.t.need(ctx, j.ID, jobs.RoleOwner); errno != 0 {
		return errno
	}
	if newParent.EmbeddedInode() != d.EmbeddedInode() {
		return renameRefused(d.t.m.Refuse(j.ID, "rename", "a job folder stays in its owner's folder: rename it there (mv "+name+" NEWNAME), it cannot move into another folder"))
	}
	return d.t.renameJob(d.owner, name, newName, flags)
}
