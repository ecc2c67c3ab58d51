package fs

import (
	"context"
	"strconv"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// dataFile is MOUNT/<job>/data: writing a payload and closing starts a run.
type dataFile struct {
	gofs.Inode
	t     *tree
	jobID string
}

func (f *dataFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, runnerSide, f.t.dataChanged(f.jobID))
	return 0
}

func (f *dataFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Setattr accepts truncation (the shell's `>`) and ignores the rest.
func (f *dataFile) Setattr(ctx context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Open counts a handle open for writing against the caller's budget: past
// defaultUserHandles it is refused with EMFILE and a reason line.
func (f *dataFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	h := &dataHandle{f: f}
	if isWrite(flags) {
		if errno := f.t.need(ctx, f.jobID, jobs.Runner); errno != 0 {
			return nil, 0, errno
		}
		uid := f.t.callerUID(ctx)
		if err := f.t.temps.budget.open(uid); err != nil {
			return nil, 0, toErrno(f.t.m.RejectPayload(f.jobID, err))
		}
		h.counted = true
		h.buf = buffer{b: &f.t.temps.budget, uid: uid, limit: jobs.MaxPayload, what: "a payload"}
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// dataHandle buffers the payload written through one open of data, charged
// to the writer's budget (budget.go). The first flush after a write starts
// exactly one run with it; a handle opened read-write then reads back that
// run's id.
type dataHandle struct {
	f       *dataFile
	counted bool // opened for writing: counted in the budget until Release

	mu       sync.Mutex
	buf      buffer
	pending  bool // written since the last run started
	failed   bool // refused: the rest of this write session is ignored
	released bool
	runID    uint64
}

// Write buffers data: past the payload cap it is refused with EFBIG, past
// the writer's budget with ENOSPC, either with a reason line.
func (h *dataHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.f.t.m
	if h.failed || !h.counted || h.released {
		return 0, syscall.EINVAL
	}
	if err := h.buf.write(data, off); err != nil {
		h.fail()
		return 0, toErrno(m.RejectPayload(h.f.jobID, err))
	}
	h.pending = true
	if len(data) < bigWrite {
		if err := jobs.CheckPayloadPrefix(h.buf.data); err != nil {
			h.fail()
			return 0, toErrno(m.RejectPayload(h.f.jobID, err))
		}
	}
	return uint32(len(data)), 0
}

// fail ends the write session and frees its buffer. h.mu is held.
func (h *dataHandle) fail() {
	h.failed = true
	h.buf.free()
}

func (h *dataHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending || h.failed {
		return 0
	}
	h.pending = false
	id, err := h.f.t.m.Trigger(h.f.jobID, h.buf.data, jobs.Manual)
	h.buf.free()
	if err != nil {
		h.failed = true
		return toErrno(err)
	}
	h.runID = id
	return 0
}

// Release frees what the handle still buffers and uncounts it.
func (h *dataHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released || !h.counted {
		return 0
	}
	h.released = true
	h.buf.free()
	h.f.t.temps.budget.close(h.buf.uid)
	return 0
}

// Read returns the id of the run this handle started, if any.
func (h *dataHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runID == 0 {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(sliceAt([]byte(strconv.FormatUint(h.runID, 10)+"\n"), dest, off)), 0
}
