package fs

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// streamFile is runs/<id>/stream: the run's log from its first byte, then
// live bytes as they come; EOF when the run has ended. It is left out of
// directory listings so recursive tools (grep -r, cp -r, rsync) never block
// on it; it is reachable by name.
type streamFile struct {
	gofs.Inode
	t     *tree
	jobID string
	id    uint64
	since time.Time // the mtime while the log is not there
}

// fill: like the log it streams, with no size (it never ends while the
// run is active).
func (f *streamFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	mtime := f.since
	if st, ok := f.t.m.StatLog(f.jobID, f.id, ""); ok {
		mtime = jobs.Latest(timeOf(st.Mtim), f.since) // see logFile.fill
	}
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, computed, mtime)
	return 0
}

func (f *streamFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *streamFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		return nil, 0, f.t.readOnly(ctx, f.EmbeddedInode(), f.jobID)
	}
	hold, errno := f.t.holdFD(ctx, f.jobID, "runs/"+strconv.FormatUint(f.id, 10)+"/stream")
	if errno != 0 {
		return nil, 0, errno
	}
	rf, err := f.t.m.OpenLog(f.jobID, f.id, "")
	if err != nil {
		hold.release()
		return nil, 0, toErrno(err)
	}
	f.t.m.StreamReader(1)
	return &streamHandle{f: f, rf: rf, hold: hold, holder: f.t.holderOf(ctx, f.jobID)}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_STREAM | noFlush, 0
}

// streamHandle keeps its own position: with FOPEN_STREAM the kernel sends
// offset 0 on every read.
type streamHandle struct {
	f      *streamFile
	mu     sync.Mutex // serialises reads; guards pos
	rf     jobs.ReadFile
	pos    int64
	hold   fdHold      // its count in the caller's budget of descriptors
	holder shareHolder // a share's holder is checked again at each read
}

// Read returns bytes past pos, or waits for the log to grow. It ends with
// EOF once the run is terminal and every byte was read, with EINTR when the
// reader is interrupted (Ctrl-C), and with ESHUTDOWN when the daemon stops
// while the run goes on (its runs outlive it): an EOF would read as the
// log's end. (--stop-runs-on-exit ends the runs before the stop: EOF.)
func (h *streamHandle) Read(ctx context.Context, dest []byte, _ int64) (fuse.ReadResult, syscall.Errno) {
	if errno := h.holder.may(jobs.Viewer, "stream"); errno != 0 {
		return nil, errno
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.f.t.m
	for {
		grew, ended, budget, active := m.Follow(h.f.jobID, h.f.id)
		buf, giveBack := dest, func(int) {}
		if active {
			// The readers of a run share a budget while it is active.
			var share int
			share, giveBack = budget.Share(ctx, len(dest))
			if share == 0 {
				if ctx.Err() != nil {
					return nil, syscall.EINTR
				}
				return nil, syscall.ESHUTDOWN // the daemon stops
			}
			buf = dest[:share]
		}
		n, err := h.rf.ReadAt(buf, h.pos)
		giveBack(len(buf) - n)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, toErrno(err)
		}
		if n > 0 || !active {
			h.pos += int64(n)
			return fuse.ReadResultData(dest[:n]), 0
		}
		select {
		case <-grew:
		case <-ended:
		case <-m.Closing():
			return nil, syscall.ESHUTDOWN
		case <-ctx.Done():
			return nil, syscall.EINTR
		}
	}
}

func (h *streamHandle) Release(ctx context.Context) syscall.Errno {
	h.hold.release()
	h.f.t.m.StreamReader(-1)
	return toErrno(h.rf.Close())
}

// waitFile is runs/<id>/wait: a read blocks until the run has ended, then
// returns its status line. Like stream, it is not listed.
type waitFile struct {
	gofs.Inode
	t     *tree
	jobID string
	id    uint64
}

// fill: its status line is there once the run has ended.
func (f *waitFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r, err := f.t.m.Run(f.jobID, f.id)
	if err != nil {
		return toErrno(err)
	}
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, computed, runEnded(r))
	return 0
}

func (f *waitFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *waitFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		return nil, 0, f.t.readOnly(ctx, f.EmbeddedInode(), f.jobID)
	}
	return &waitHandle{f: f}, fuse.FOPEN_DIRECT_IO | noFlush, 0
}

type waitHandle struct {
	f       *waitFile
	mu      sync.Mutex
	content []byte // the status line, once the run has ended
	done    bool
}

func (h *waitHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		r, err := h.f.t.m.Wait(ctx, h.f.jobID, h.f.id)
		if err != nil {
			return nil, toErrno(err)
		}
		if !r.Status.Terminal() {
			// The daemon stops before the run ended: a script waiting on
			// `status=$(cat wait)` must see a failure, not an empty status,
			// and one that ends it: cat and Go read again after EINTR. A
			// run this daemon does not hold yet (an outlived one before
			// Start re-attaches it) is EINTR after Wait's 2 s: read again.
			select {
			case <-h.f.t.m.Closing():
				return nil, syscall.ESHUTDOWN
			default:
				return nil, syscall.EINTR
			}
		}
		h.content = []byte(string(r.Status) + "\n")
		h.done = true
	}
	return fuse.ReadResultData(sliceAt(h.content, dest, off)), 0
}

// ctlFile is runs/<id>/ctl: write `stop` (SIGTERM, grace, SIGKILL) or
// `kill` (SIGKILL now).
type ctlFile struct {
	gofs.Inode
	t     *tree
	jobID string
	id    uint64
}

// fill: runners may write it; it reads empty since the run was queued.
func (f *ctlFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	r, err := f.t.m.Run(f.jobID, f.id)
	if err != nil {
		return toErrno(err)
	}
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, runnerSide, r.Queued)
	return 0
}

func (f *ctlFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

func (f *ctlFile) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.t.attrsByOwner(ctx, f.jobID, in); errno != 0 {
		return errno
	}
	return f.fill(ctx, &out.Attr)
}

// Open for reading gives an empty file, so grep -r and cp -r pass over it.
func (f *ctlFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
	if isWrite(flags) {
		if errno := f.t.need(ctx, f.jobID, jobs.Runner); errno != 0 {
			return nil, 0, errno
		}
	}
	return &ctlHandle{f: f, holder: f.t.holderOf(ctx, f.jobID)}, fuse.FOPEN_DIRECT_IO, 0
}

type ctlHandle struct {
	f      *ctlFile
	holder shareHolder // a share's holder is checked again at each command
}

func (h *ctlHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(nil), 0
}

// Write acts at once: a command is one short line.
func (h *ctlHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := h.holder.may(jobs.Runner, "ctl"); errno != 0 {
		return 0, errno
	}
	m := h.f.t.m
	var err error
	switch cmd := strings.TrimSpace(string(data)); cmd {
	case "stop", "kill":
		err = m.StopRun(h.f.jobID, h.f.id, cmd == "kill")
	case "pause":
		err = m.Pause(h.f.jobID, h.f.id)
	case "resume":
		err = m.Resume(h.f.jobID, h.f.id)
	default:
		err = m.Refuse(h.f.jobID, "ctl", "write stop (SIGTERM, grace, SIGKILL), kill (SIGKILL now), pause or resume, not "+quote(cmd))
	}
	if err != nil {
		return 0, toErrno(err)
	}
	return uint32(len(data)), 0
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}
