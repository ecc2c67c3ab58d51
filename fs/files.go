package fs

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	return bytesHandle(s), fuse.FOPEN_DIRECT_IO | noFlush, 0
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
	run   uint64    // the run whose log this is; 0: the job's log, always live
	rel   string    // a step's log below the run's folder; "": the run's (job's) log
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
	defer func() { a.Blksize = diskBlksize }()
	if st, ok := f.t.m.StatLog(f.jobID, f.run, f.rel); ok {
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
	hold, errno := f.t.holdFD(ctx, f.jobID, "log")
	if errno != 0 {
		return nil, 0, errno
	}
	rf, err := f.t.m.OpenLog(f.jobID, f.run, f.rel)
	if err != nil {
		hold.release()
	}
	if errors.Is(err, syscall.ENOENT) {
		return bytesHandle(nil), fuse.FOPEN_DIRECT_IO | noFlush, 0
	}
	if err != nil {
		return nil, 0, toErrno(err)
	}
	holder := f.t.holderOf(ctx, f.jobID)
	if passthroughOK.Load() && f.finished() {
		// No FOPEN_DIRECT_IO: the kernel lets it override passthrough.
		return f.t.offered(ctx, f.jobID, &readHandle{f: rf, hold: hold, holder: holder}), sharerFlags(holder, noFlush), 0
	}
	return &readHandle{f: rf, hold: hold, holder: holder}, fuse.FOPEN_DIRECT_IO | noFlush, 0
}

// noFlush is an open flag of a handle that only reads: its close(2) needs
// no FLUSH (FOPEN_NOFLUSH, Linux 5.16+; older kernels ignore it), one
// round trip to the daemon fewer for every `cat` of a computed file, a log
// or runs/<id>/wait. RELEASE still ends the handle.
const noFlush = fuse.FOPEN_NOFLUSH

// diskBlksize is the st_blksize of a log and of a run's file (result,
// output/): the size a tool that sizes its buffer by it (cat, cp, Python's
// open) reads in. Each read(2) of a FUSE file passes FUSE's file
// operations even through passthrough (about 1.4 us a call here), so cat
// of a finished 1 GiB log read 0.89-0.94 of the disk's speed at its
// default 128 KiB and 0.98-1.04 at 1 MiB. A preferred size, not a limit:
// any size still reads.
const diskBlksize = 1 << 20

// readHandle reads a file package jobs opened (jobs.ReadFile): a log, a
// run's input or output file, its result. When the file has a descriptor
// (the local implementation), backingFS offers it to the kernel for
// passthrough (see passthroughOK) and lseek reaches it.
type readHandle struct {
	f      jobs.ReadFile
	hold   fdHold      // its count in the caller's budget of descriptors
	holder shareHolder // a share's holder is checked again at each read
}

// sharerFlags: a share's holder's handle is direct I/O: each read and
// write is asked of the daemon, which checks the share again. Staged files
// and run files alike.
func sharerFlags(holder shareHolder, flags uint32) uint32 {
	if holder.caller != nil {
		return flags | fuse.FOPEN_DIRECT_IO
	}
	return flags
}

func (h *readHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := h.holder.may(jobs.Viewer, "read"); errno != 0 {
		return nil, errno
	}
	n, err := h.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// backingFd returns the file's descriptor, which stays open until
// Release; a file without one is read through the daemon.
func (h *readHandle) backingFd() (int, bool) {
	if h.holder.caller != nil {
		return -1, false
	}
	c, ok := h.f.(syscall.Conn)
	if !ok {
		return -1, false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if rc.Control(func(d uintptr) { fd = int(d) }) != nil {
		return -1, false
	}
	return fd, fd >= 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE (cp, tar) from the file itself.
func (h *readHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	s, ok := h.f.(io.Seeker)
	if !ok {
		return 0, syscall.ENOSYS
	}
	n, err := s.Seek(int64(off), int(whence))
	if err != nil {
		return 0, toErrno(err)
	}
	return uint64(n), 0
}

// Release closes the file: it was opened for reading, nothing to flush.
func (h *readHandle) Release(ctx context.Context) syscall.Errno {
	h.hold.release()
	return toErrno(h.f.Close())
}

// passthroughOK is set by Mount when the kernel let the daemon register a
// backing file (FUSE passthrough: Linux 6.9+, CAP_SYS_ADMIN). Without it a
// finished log keeps direct I/O through the daemon. Otherwise a finished
// run's log, input, output and result files (readHandle) and a job's
// staged files (stagedHandle) are offered (tree.offered) to backingFS,
// which passes them through when the kernel lets it and reads them
// through the daemon when not.
var passthroughOK atomic.Bool

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
