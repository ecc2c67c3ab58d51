package fs

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// tree is what every node of one mount shares.
type tree struct {
	m     *jobs.Manager
	owner jobs.Owner // the daemon's user: owner of every job of this mount
	gid   uint32
	start time.Time // mtime of nodes that have no better one
	temps temps     // tools' temporary files, in memory
	walks walks     // processes deleting a job folder whole (walk.go)
	dirs  dirTimes  // when folders the store keeps no time for changed
	multi bool      // shared mount: every caller has a namespace (allow_other)
	cache bool      // the kernel may keep job entries and attributes (cache.go)
	names jobNames  // with cache: the name each job folder was given under (cache.go)
	top   *rootDir  // the mount's top folder
}

func newTree(m *jobs.Manager, owner jobs.Owner) *tree {
	return &tree{m: m, owner: owner, gid: primaryGID(owner), start: time.Now()}
}

// primaryGID returns the primary group of uid, or uid itself when unknown.
func primaryGID(uid jobs.Owner) uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return uid
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return uid
	}
	return uint32(g)
}

// attr sets the owner, mode, times and link count common to all nodes.
func (t *tree) attr(a *fuse.Attr, mode uint32, mtime time.Time) {
	a.Mode = mode
	a.Uid = t.owner
	a.Gid = t.gid
	if mtime.IsZero() {
		mtime = t.start
	}
	a.SetTimes(&mtime, &mtime, &mtime)
	a.Nlink = 1
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		a.Nlink = 2
	}
	a.Blksize = 4096
	a.Blocks = (a.Size + 511) / 512
}

// caller returns the user behind a request: uid and all groups (the
// supplementary ones from /proc/<pid>/status).
func (t *tree) caller(ctx context.Context) jobs.Caller {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return jobs.Caller{UID: t.owner, GIDs: []uint32{t.gid}}
	}
	out := jobs.Caller{UID: c.Uid, GIDs: []uint32{c.Gid}}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(c.Pid), 10) + "/status")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.ParseUint(f, 10, 32); err == nil {
					out.GIDs = append(out.GIDs, uint32(g))
				}
			}
		}
	}
	return out
}

// namespace is whose jobs MOUNT/<job> names for this caller: the caller's
// own on a shared mount, the daemon user's on a single-user one.
func (t *tree) namespace(ctx context.Context) jobs.Owner {
	if !t.multi {
		return t.owner
	}
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid
	}
	return t.owner
}

// role is what the caller may do with a job.
func (t *tree) role(ctx context.Context, jobID string) jobs.Role {
	if !t.multi {
		return jobs.RoleOwner
	}
	j, err := t.m.JobByID(jobID)
	if err != nil {
		return jobs.NoRole
	}
	return t.m.RoleOf(j, t.caller(ctx))
}

// stillMay re-checks, for a handle of a shared job's file opened before,
// that its opener c still has role r: a share removed after the open takes
// back what the handle does next (a payload's run, a write to a staged
// file). EACCES, with the reason in the job's log, when not.
func (t *tree) stillMay(jobID string, c jobs.Caller, r jobs.Role, what string) syscall.Errno {
	if !t.multi || c.UID == 0 {
		return 0
	}
	j, err := t.m.JobByID(jobID)
	if err != nil {
		return syscall.ENOENT
	}
	if t.m.RoleOf(j, c) >= r {
		return 0
	}
	_ = t.m.RefuseRepeated(jobID, "share-gone:"+strconv.FormatUint(uint64(c.UID), 10), what,
		fmt.Sprintf("uid %d opened it when a share let it; the share is gone", c.UID)) // the errno is the answer
	return syscall.EACCES
}

// shareHolder is the opener of a handle on a job's file, when it holds it
// by a share (not as the job's owner or root): such a handle checks again,
// at each write or read, that the share is still there (stillMay).
type shareHolder struct {
	t      *tree
	jobID  string
	caller *jobs.Caller // nil: the owner or root, or a private mount
}

// holderOf is the opener of a handle the caller opens on jobID's file now.
func (t *tree) holderOf(ctx context.Context, jobID string) shareHolder {
	h := shareHolder{t: t, jobID: jobID}
	if t.multi {
		if c := t.caller(ctx); c.UID != 0 && t.role(ctx, jobID) < jobs.RoleOwner {
			h.caller = &c
		}
	}
	return h
}

// may is stillMay for the holder: 0 for an owner's handle.
func (h shareHolder) may(r jobs.Role, what string) syscall.Errno {
	if h.caller == nil {
		return 0
	}
	return h.t.stillMay(h.jobID, *h.caller, r, what)
}

// readOnly refuses to open a computed or run file for writing: EACCES,
// with the reason in the job's log when the caller owns the job (what a
// viewer tries does not go into the owner's log).
func (t *tree) readOnly(ctx context.Context, in *gofs.Inode, jobID string) syscall.Errno {
	if jobID != "" && t.role(ctx, jobID) >= jobs.RoleOwner {
		_ = t.m.Refuse(jobID, jobRelPath(in), "read-only: jobfs writes it") // logged; the answer is EACCES
	}
	return syscall.EACCES
}

// jobRelPath is the path of in below its job folder: runs/1/stream.
func jobRelPath(in *gofs.Inode) string {
	parts := strings.Split(in.Path(nil), "/")
	if len(parts) > 0 && strings.HasPrefix(parts[0], "@") {
		parts = parts[1:]
	}
	if len(parts) > 1 {
		parts = parts[1:]
	}
	return strings.Join(parts, "/")
}

// need returns 0 when the caller has at least role r on the job: ENOENT
// when the job is not visible to them at all, EACCES when it is but the
// role is too weak.
func (t *tree) need(ctx context.Context, jobID string, r jobs.Role) syscall.Errno {
	switch have := t.role(ctx, jobID); {
	case have >= r:
		return 0
	case have == jobs.NoRole:
		return syscall.ENOENT
	}
	return syscall.EACCES
}

// attrsByOwner answers a SETATTR of a job's node that asks for more than a
// size (mode, owner, times): accepted for the job's owner (and root),
// which the node keeps or drops as it says, so copying tools do not fail;
// EPERM for anyone else, as chmod or touch -d of another user's file on
// ext4, instead of a success that changed nothing.
func (t *tree) attrsByOwner(ctx context.Context, jobID string, in *fuse.SetAttrIn) syscall.Errno {
	plain := uint32(fuse.FATTR_SIZE | fuse.FATTR_FH | fuse.FATTR_LOCKOWNER | fuse.FATTR_KILL_SUIDGID | fuse.FATTR_CTIME)
	if in.Valid&fuse.FATTR_SIZE != 0 { // truncate(2) by path stamps the times along: not a touch
		plain |= fuse.FATTR_MTIME | fuse.FATTR_MTIME_NOW | fuse.FATTR_ATIME | fuse.FATTR_ATIME_NOW
	}
	if in.Valid&^plain == 0 {
		return 0
	}
	switch errno := t.need(ctx, jobID, jobs.RoleOwner); errno {
	case 0, syscall.ENOENT:
		return errno
	}
	return syscall.EPERM
}

// jobOwner is the uid and gid a job's nodes show: its owner's on a shared
// mount, the daemon user's on a single-user one (the only user who can
// look, and the owner of all its jobs).
func (t *tree) jobOwner(jobID string) (uint32, uint32) {
	if !t.multi {
		return t.owner, t.gid
	}
	j, err := t.m.JobByID(jobID)
	if err != nil {
		return t.owner, t.gid
	}
	return j.Owner, primaryGID(j.Owner)
}

// nobody is a role no caller has: what nobody may do.
const nobody = jobs.RoleOwner + 1

// perm says who may do what with a node below a job: read (and enter, for
// a folder) from role read, change from role write.
type perm struct{ read, write jobs.Role }

// The perms of the tree's kinds of node.
var (
	computed   = perm{jobs.Viewer, nobody}         // status, log, a run's files
	setting    = perm{jobs.Viewer, jobs.RoleOwner} // config/*, description, shared/*
	runnerSide = perm{jobs.Viewer, jobs.Runner}    // data, ctl, input/
)

// bits are the rwx bits of role r: r and x (folders) from p.read, w from
// p.write.
func (p perm) bits(r jobs.Role, dir bool) uint32 {
	var b uint32
	if r >= p.read {
		b |= 4
		if dir {
			b |= 1
		}
	}
	if r >= p.write {
		b |= 2
	}
	return b
}

// look fills owner, mode and times of a node of job jobID as the caller
// sees it: uid and gid are the job's owner's; the owner bits say what the
// owner may do; group and other bits say what the caller may do when the
// caller is not the owner (root, a viewer, a runner), else what a reader
// of the job may do. So `ls -l`, access(2) (Access) and `test -w` agree
// with what a write does, for every caller.
func (t *tree) look(ctx context.Context, a *fuse.Attr, jobID string, typ uint32, p perm, mtime time.Time) {
	uid, gid := t.owner, t.gid
	dir := typ == syscall.S_IFDIR
	rest := p.bits(jobs.Viewer, dir)
	if t.multi {
		// One read of the job for its owner and the caller's role.
		if j, err := t.m.JobByID(jobID); err == nil {
			uid, gid = j.Owner, primaryGID(j.Owner)
			if t.callerUID(ctx) != uid {
				rest = p.bits(t.m.RoleOf(j, t.caller(ctx)), dir)
			}
		}
	}
	mode := typ | p.bits(jobs.RoleOwner, dir)<<6 | rest<<3 | rest
	if typ == syscall.S_IFLNK {
		mode = typ | 0o777
	}
	t.attr(a, mode, mtime)
	a.Uid, a.Gid = uid, gid
}

// forCaller makes the group and other bits of a (a node whose owner bits
// are its own, like a staged file's chmod) say what the caller may do when
// the caller is not its owner: the owner's bits, without w below role
// write, nothing without a role. The owner sees a as it is.
func (t *tree) forCaller(ctx context.Context, a *fuse.Attr, jobID string, write jobs.Role) {
	if !t.multi || t.callerUID(ctx) == a.Uid {
		return
	}
	b := a.Mode >> 6 & 7
	switch r := t.role(ctx, jobID); {
	case r < jobs.Viewer:
		b = 0
	case r < write:
		b &^= 2
	}
	a.Mode = a.Mode&^0o77 | b<<3 | b
}

// access answers access(2) (FUSE's ACCESS) from the attributes node shows
// the caller, with no exception for root: the bits that apply to the
// caller (owner bits for the owner, else the others' bits, which look
// made the caller's own) must hold every bit of mask.
func (t *tree) access(ctx context.Context, node attrFiller, mask uint32) syscall.Errno {
	var a fuse.Attr
	if errno := node.fill(ctx, &a); errno != 0 {
		return errno
	}
	bits := a.Mode & 7
	if t.callerUID(ctx) == a.Uid {
		bits = a.Mode >> 6 & 7
	}
	if mask&7&^bits != 0 {
		return syscall.EACCES
	}
	return 0
}
