package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// textFile is a read-only computed file (shortname, runs/<id>/status ...).
// Its content is computed at Getattr and snapshotted at Open.
type textFile struct {
	gofs.Inode
	t       *tree
	jobID   string
	content func() (string, error)
}

func (f *textFile) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	s, err := f.content()
	if err != nil {
		return toErrno(err)
	}
	a.Size = uint64(len(s))
	f.t.attr(a, syscall.S_IFREG|0o444, f.t.start)
	return 0
}

func (f *textFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *textFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		return nil, 0, f.t.readOnly(ctx, f.EmbeddedInode(), f.jobID)
	}
	s, err := f.content()
	if err != nil {
		return nil, 0, toErrno(err)
	}
	return bytesHandle(s), fuse.FOPEN_DIRECT_IO, 0
}

// bytesHandle serves a snapshot of a computed file.
type bytesHandle []byte

func (b bytesHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(sliceAt(b, dest, off)), 0
}

// logFile is a read-only view of an append-only file on disk (a job's event
// log, a run's log). Getattr reports its current size and mtime, and reads
// use direct I/O, so `tail -f` sees every append.
type logFile struct {
	gofs.Inode
	t     *tree
	jobID string
	path  string
}

func (f *logFile) fill(_ context.Context, a *fuse.Attr) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Stat(f.path, &st); err == nil {
		a.Size = uint64(st.Size)
		f.t.attr(a, syscall.S_IFREG|0o444, timeOf(st.Mtim))
		return 0
	}
	f.t.attr(a, syscall.S_IFREG|0o444, f.t.start)
	return 0
}

func (f *logFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *logFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		return nil, 0, f.t.readOnly(ctx, f.EmbeddedInode(), f.jobID)
	}
	fd, err := syscall.Open(f.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return bytesHandle(nil), fuse.FOPEN_DIRECT_IO, 0
	}
	if err != nil {
		return nil, 0, toErrno(err)
	}
	return gofs.NewLoopbackFile(fd), fuse.FOPEN_DIRECT_IO, 0
}

func timeOf(ts syscall.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
