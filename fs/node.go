package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// ino derives a stable inode number from a node's identity (job id and path
// inside the job), so the kernel and go-fuse see one inode per file however
// often it is looked up.
func ino(parts ...string) uint64 {
	// FNV-1a (hash/fnv's New64a) by hand: no hasher or byte slice to
	// allocate, 100,000 times for a listing of the top folder.
	const offset64, prime64 = 14695981039346656037, 1099511628211
	n := uint64(offset64)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			n = (n ^ uint64(p[i])) * prime64
		}
		n *= prime64 // the 0 after each part: n ^ 0 is n
	}
	if n <= 1 || n == ^uint64(0) {
		n = 2
	}
	return n
}

// attrFiller is implemented by every node of this package: it fills the
// attributes that Getattr and Lookup report.
type attrFiller interface {
	gofs.InodeEmbedder
	fill(ctx context.Context, a *fuse.Attr) syscall.Errno
}

// newChild registers node under parent and fills out for a Lookup or Create.
// Every lookup below a job checks the caller's role now (current).
func newChild(ctx context.Context, parent *gofs.Inode, node attrFiller, mode uint32, id uint64, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := current(ctx, parent); errno != 0 {
		return nil, errno
	}
	if errno := node.fill(ctx, &out.Attr); errno != 0 {
		return nil, errno
	}
	return parent.NewInode(ctx, node, gofs.StableAttr{Mode: mode, Ino: id}), 0
}

// isWrite reports whether open flags ask for writing.
func isWrite(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY
}

// dirEntries turns names and modes into the directory stream of self,
// led by "." and ".." with their inode numbers, as on a disk folder (ls -a
// lists them; go-fuse looks neither up).
func dirEntries(self gofs.InodeEmbedder, ents ...fuse.DirEntry) gofs.DirStream {
	return gofs.NewListDirStream(append(dotEntries(self, len(ents)), ents...))
}

// dotEntries returns the . and .. entries of self's listing, with room for
// n more.
func dotEntries(self gofs.InodeEmbedder, n int) []fuse.DirEntry {
	in := self.EmbeddedInode()
	up := in
	if _, parent := in.Parent(); parent != nil {
		up = parent
	}
	all := make([]fuse.DirEntry, 0, n+2)
	return append(all,
		fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: in.StableAttr().Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: up.StableAttr().Ino})
}

// fitsAt reports whether a write of n bytes at off ends within limit, with
// no overflow for any offset a caller sends (pwrite at 2^63-1).
func fitsAt(off int64, n int, limit int64) bool {
	return off >= 0 && off <= limit && int64(n) <= limit-off
}

// current returns 0 when the caller may still see the job that in belongs
// to (in itself or the job folder above it), ENOENT when not. Roles are
// checked at every lookup, listing and open below a job, not only when the
// job folder is looked up: a shell whose working folder is inside a job
// keeps no access once its share is removed.
func current(ctx context.Context, in *gofs.Inode) syscall.Errno {
	jd := jobOf(in)
	if jd == nil || !jd.t.multi {
		return 0
	}
	return jd.t.need(ctx, jd.job.ID, jobs.Viewer)
}

// jobOf returns the job folder in is or lies in, nil above the jobs.
func jobOf(in *gofs.Inode) *jobDir {
	for depth := 0; in != nil && depth < 64; depth++ {
		if jd, ok := in.Operations().(*jobDir); ok {
			return jd
		}
		_, in = in.Parent()
	}
	return nil
}
