package fs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// stageDir is MOUNT/<job>/input: files put here are moved into the next
// run's input when it is triggered. It is a plain read-write view of a
// folder on disk; only regular files may be created in it.
type stageDir struct {
	gofs.Inode
	t     *tree
	jobID string
}

func (d *stageDir) path() string { return d.t.m.StageDir(d.jobID) }

func (d *stageDir) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	return d.t.statLookSince(ctx, a, d.jobID, d.path(), runnerSide, d.t.jobCreated(d.jobID))
}

func (d *stageDir) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *stageDir) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return d.fill(ctx, &out.Attr)
}

func (d *stageDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	list, err := os.ReadDir(d.path())
	if err != nil {
		return nil, toErrno(err)
	}
	var ents []fuse.DirEntry
	for _, e := range list {
		if e.Type().IsRegular() {
			ents = append(ents, fuse.DirEntry{Name: e.Name(), Mode: syscall.S_IFREG, Ino: d.childIno(e.Name())})
		}
	}
	return dirEntries(ents...), 0
}

func (d *stageDir) childIno(name string) uint64 { return ino(d.jobID, "input", name) }

func (d *stageDir) child(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	node := &stagedFile{t: d.t, jobID: d.jobID, path: filepath.Join(d.path(), name)}
	return newChild(ctx, d.EmbeddedInode(), node, syscall.S_IFREG, d.childIno(name), out)
}

func (d *stageDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	st, err := os.Lstat(filepath.Join(d.path(), name))
	if err != nil {
		return nil, toErrno(err)
	}
	if !st.Mode().IsRegular() {
		return nil, syscall.ENOENT
	}
	return d.child(ctx, name, out)
}

func (d *stageDir) checkName(name string) syscall.Errno {
	if name == "input.json" {
		return toErrno(d.t.m.Refuse(d.jobID, "input/input.json", "the name is taken by the data payload; write the payload to data"))
	}
	return 0
}

func (d *stageDir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.Runner); errno != 0 {
		return nil, nil, 0, errno
	}
	if errno := d.checkName(name); errno != 0 {
		return nil, nil, 0, errno
	}
	p := filepath.Join(d.path(), name)
	fd, err := syscall.Open(p, int(flags)|syscall.O_CREAT|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, nil, 0, gofs.ToErrno(err)
	}
	in, errno := d.child(ctx, name, out)
	if errno != 0 {
		syscall.Close(fd)
		return nil, nil, 0, errno
	}
	return in, gofs.NewLoopbackFile(fd), 0, 0
}

func (d *stageDir) Mkdir(ctx context.Context, name string, _ uint32, _ *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.t.need(ctx, d.jobID, jobs.Runner); errno != 0 {
		return nil, errno
	}
	return nil, toErrno(d.t.m.Refuse(d.jobID, "input/"+name, "input/ holds files only; copy the files of a folder, or an archive of it"))
}

func (d *stageDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.Runner); errno != 0 {
		return errno
	}
	if d.t.walking(ctx, d.jobID) {
		return 0 // the job is being deleted whole (walk.go)
	}
	return gofs.ToErrno(syscall.Unlink(filepath.Join(d.path(), name)))
}

func (d *stageDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := d.t.need(ctx, d.jobID, jobs.Runner); errno != 0 {
		return errno
	}
	if newParent.EmbeddedInode() != d.EmbeddedInode() || flags != 0 {
		return syscall.EXDEV
	}
	if errno := d.checkName(newName); errno != 0 {
		return errno
	}
	return gofs.ToErrno(os.Rename(filepath.Join(d.path(), name), filepath.Join(d.path(), newName)))
}

// stagedFile is one file in input/, read and written on disk.
type stagedFile struct {
	gofs.Inode
	t     *tree
	jobID string
	path  string
}

func (f *stagedFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	return f.t.statLook(ctx, a, f.jobID, f.path, runnerSide)
}

func (f *stagedFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Setattr applies a size change; mode, owner and times are accepted and
// ignored (copying tools set them).
func (f *stagedFile) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		if errno := f.t.need(ctx, f.jobID, jobs.Runner); errno != 0 {
			return errno
		}
		if err := os.Truncate(f.path, int64(size)); err != nil {
			return toErrno(err)
		}
	}
	return f.fill(ctx, &out.Attr)
}

func (f *stagedFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		if errno := f.t.need(ctx, f.jobID, jobs.Runner); errno != 0 {
			return nil, 0, errno
		}
	}
	fd, err := syscall.Open(f.path, int(flags)&^syscall.O_CREAT|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, gofs.ToErrno(err)
	}
	return gofs.NewLoopbackFile(fd), 0, 0
}
