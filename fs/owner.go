package fs

import (
	"os/user"
	"strconv"
	"syscall"
	"time"

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
