package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// rootDir is the mount's top folder: one sub-folder per job.
type rootDir struct {
	gofs.Inode
	t *tree
}

// NewRoot returns the root node of a mount serving owner's jobs.
func NewRoot(m *jobs.Manager, owner jobs.Owner) gofs.InodeEmbedder {
	return &rootDir{t: newTree(m, owner)}
}

func (r *rootDir) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	r.t.attr(a, syscall.S_IFDIR|0o755, r.t.start)
	return 0
}

func (r *rootDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return r.fill(ctx, &out.Attr)
}

func (r *rootDir) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return r.fill(ctx, &out.Attr)
}

func (r *rootDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	j, err := r.t.m.Job(r.t.owner, name)
	if err != nil {
		return nil, toErrno(err)
	}
	return r.jobChild(ctx, j, out)
}

func (r *rootDir) jobChild(ctx context.Context, j jobs.Job, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return newChild(ctx, r.EmbeddedInode(), &jobDir{t: r.t, job: j}, syscall.S_IFDIR, ino(j.ID), out)
}

func (r *rootDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := r.t.m.Jobs(r.t.owner)
	if err != nil {
		return nil, toErrno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(list))
	for _, j := range list {
		ents = append(ents, fuse.DirEntry{Name: j.Name, Mode: syscall.S_IFDIR, Ino: ino(j.ID)})
	}
	return dirEntries(ents...), 0
}

func (r *rootDir) Mkdir(ctx context.Context, name string, _ uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	j, err := r.t.m.CreateJob(r.t.owner, name)
	if err != nil {
		return nil, toErrno(err)
	}
	return r.jobChild(ctx, j, out)
}

func (r *rootDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	j, err := r.t.m.Job(r.t.owner, name)
	if err != nil {
		return toErrno(err)
	}
	if err := r.t.m.DeleteJob(r.t.owner, name); err != nil {
		return toErrno(err)
	}
	r.t.temps.dropJob(j.ID)
	return 0
}

// Create refuses files at the top: jobs are folders.
func (r *rootDir) Create(ctx context.Context, name string, _, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

func (r *rootDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if _, err := r.t.m.Job(r.t.owner, name); err == nil {
		return syscall.EISDIR
	}
	return syscall.ENOENT
}

// Rename renames a job. Moving a job into another folder is refused.
func (r *rootDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if newParent.EmbeddedInode() != r.EmbeddedInode() || flags&^uint32(renameNoReplace) != 0 {
		return syscall.EINVAL
	}
	return toErrno(r.t.m.RenameJob(r.t.owner, name, newName))
}

// renameNoReplace is RENAME_NOREPLACE: a job rename never replaces anyway.
const renameNoReplace = 1

func (r *rootDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(r.t.m.StateDir(), &st); err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}
