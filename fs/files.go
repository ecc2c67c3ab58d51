package fs

import (
	"context"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// textFile is a read-only computed file (shortname, runs/<id>/status ...).
// Its content is computed at Getattr and snapshotted at Open; its mtime is
// when that content last changed, from the times of the record it shows.
type textFile struct {
	gofs.Inode
	t       *tree
	jobID   string
	content func() (string, time.Time, error)
}

func (f *textFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	s, mtime, err := f.content()
	if err != nil {
		return toErrno(err)
	}
	a.Size = uint64(len(s))
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, computed, mtime)
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
	s, _, err := f.content()
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
// log, a run's or a step's log). Getattr reports its current size and
// mtime. While the log is live, reads use direct I/O, so `tail -f` sees
// every append; once its run has ended the kernel reads the file itself
// (FUSE passthrough) when it may (see passthroughOK).
type logFile struct {
	gofs.Inode
	t     *tree
	jobID string
	run   uint64 // the run whose log this is; 0: the job's log, always live
	path  string
	since time.Time // the mtime while no line was written (no file yet)
}

// finished reports whether the log's run has ended: no step writes to it
// any more, so the kernel may read it without the daemon.
func (f *logFile) finished() bool {
	if f.run == 0 {
		return false
	}
	r, err := f.t.m.Run(f.jobID, f.run)
	return err == nil && r.Status.Terminal()
}

func (f *logFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Stat(f.path, &st); err == nil {
		a.Size = uint64(st.Size)
		// The kernel's file times are coarse (a clock tick behind the
		// daemon's): a log is never older than what it logs.
		f.t.look(ctx, a, f.jobID, syscall.S_IFREG, computed, jobs.Latest(timeOf(st.Mtim), f.since))
		return 0
	}
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, computed, f.since)
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
	if passthroughOK.Load() && f.finished() {
		// No FOPEN_DIRECT_IO: the kernel lets it override passthrough.
		return gofs.NewLoopbackFile(fd), 0, 0
	}
	return gofs.NewLoopbackFile(fd), fuse.FOPEN_DIRECT_IO, 0
}

// passthroughOK is set by Mount when the kernel let the daemon register a
// backing file (FUSE passthrough: Linux 6.9+, CAP_SYS_ADMIN). Without it a
// finished log keeps direct I/O through the daemon; go-fuse offers the
// kernel each LoopbackFile (a run's finished log, its input, output and
// result files) and falls back to reads through the daemon when refused.
var passthroughOK atomic.Bool

func timeOf(ts syscall.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
