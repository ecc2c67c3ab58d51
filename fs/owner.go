package fs

import (
	"context"
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
	multi bool      // shared mount: every caller has a namespace (allow_other)
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

// readOnly refuses to open a computed or run file for writing: EACCES,
// with the reason in the job's log when the caller owns the job (what a
// viewer tries does not go into the owner's log).
func (t *tree) readOnly(ctx context.Context, in *gofs.Inode, jobID string) syscall.Errno {
	if jobID != "" && t.role(ctx, jobID) >= jobs.RoleOwner {
		t.m.Refuse(jobID, jobRelPath(in), "read-only: jobfs writes it")
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

// attrJob is attr for a node of a job: owned by the job's owner.
func (t *tree) attrJob(a *fuse.Attr, jobID string, mode uint32, mtime time.Time) {
	t.attr(a, mode, mtime)
	if !t.multi {
		return
	}
	if j, err := t.m.JobByID(jobID); err == nil {
		a.Uid, a.Gid = j.Owner, primaryGID(j.Owner)
	}
}
