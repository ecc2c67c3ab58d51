package fs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	// The handles open for writing, until their RELEASE (an open handle
	// pins this node, so all of them meet here).
	mu      sync.Mutex
	writers map[*dataHandle]struct{}
}

func (f *dataFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	f.t.look(ctx, a, f.jobID, syscall.S_IFREG, runnerSide, f.t.dataChanged(f.jobID))
	return 0
}

func (f *dataFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Setattr accepts truncation (the shell's `>`) and ignores the rest.
func (f *dataFile) Setattr(ctx context.Context, _ gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if errno := f.t.attrsByOwner(ctx, f.jobID, in); errno != 0 {
		return errno
	}
	return f.fill(ctx, &out.Attr)
}

// Open counts a handle open for writing against the caller's budget: past
// defaultUserHandles it is refused with EMFILE and a reason line.
func (f *dataFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := current(ctx, f.EmbeddedInode()); errno != 0 {
		return nil, 0, errno
	}
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
		h.holder = f.t.holderOf(ctx, f.jobID)
		h.buf = buffer{b: &f.t.temps.budget, uid: uid, limit: jobs.MaxPayload, what: "a payload"}
		h.opener, h.opened = callerPID(ctx), jobs.MarkPids()
		f.mu.Lock()
		if f.writers == nil {
			f.writers = map[*dataHandle]struct{}{}
		}
		f.writers[h] = struct{}{}
		f.mu.Unlock()
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// dataHandle buffers the payload written through one open of data (one
// open file description, shared by every dup and forked copy of the
// descriptor), charged to the writer's budget (budget.go). The payload is
// judged once: it starts one run or is refused. It is judged at the
// earliest point that is known to end it:
//
//   - a FLUSH (some close(2)) of a payload that is a whole object or array
//     (only white space may follow one: later white space is accepted and
//     changes nothing, anything else is refused as after any judgment);
//   - a FLUSH after which no process holds a descriptor of it open for
//     writing (jobs.ProcWriters): the last close, whose caller sees a
//     refusal as the error of close(2). A close by a forked child, or by a
//     parent whose child still writes, only flushes: a payload that may
//     still grow ({"a": so far, a blank line, a number) waits for the rest;
//   - a read on the handle (the clone pattern: open read-write, write, read
//     back the run id): the writer asks for the verdict, so the payload ends;
//   - fsync of a payload that is a complete value: it returns once the run
//     is recorded durably;
//   - RELEASE, if nothing above judged it: the refusal then only reaches
//     the job's log (see stillOpen for concurrent writers).
type dataHandle struct {
	f       *dataFile
	counted bool        // opened for writing: counted in the budget until Release
	holder  shareHolder // who opened it for writing, checked again at each write and at the verdict

	mu       sync.Mutex
	buf      buffer
	checked  bool // the job was found able to start at the first write
	pending  bool // written and not yet judged
	judged   bool // the payload started runID, or was refused
	failed   bool // refused: the rest of this write session is ignored
	tooLarge bool // refused for its size, which a writer may have seen only as a short count
	released bool
	runID    uint64
	// lastClosed: a FLUSH found no descriptor of it left (RELEASE pending).
	lastClosed atomic.Bool
	// opener (the caller's id; 0: unknown) and opened (the kernel's last
	// process id then) tell stillOpen who can hold a copy of it.
	opener   int
	opened   jobs.PidMark
	readBase int64 // offset of the first read of the run id; -1 before it
}

// Write buffers data: past the payload cap it is refused with EFBIG, past
// the writer's budget with ENOSPC, a job that cannot start (jobs.
// CheckStartable) and a payload that can no longer become valid JSON with
// EINVAL, each with a reason line.
func (h *dataHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.f.t.m
	if h.tooLarge {
		return 0, syscall.EFBIG // the rest of a write the kernel split at the cap (Python's retries it): the same reason
	}
	if h.failed || !h.counted || h.released {
		return 0, syscall.EINVAL
	}
	if errno := h.holder.may(jobs.Runner, "data"); errno != 0 {
		h.fail()
		return 0, errno
	}
	if h.judged {
		if jobs.OnlyJSONSpace(data) {
			// After an object or array judged at a close (Flush), only white
			// space can follow it in valid JSON: a trailing newline from the
			// process that still holds the file changes nothing.
			return uint32(len(data)), 0
		}
		return 0, toErrno(m.Refuse(h.f.jobID, "data", fmt.Sprintf("this open file already started run %d; open data again for another run", h.runID)))
	}
	if !h.checked {
		if err := m.CheckStartable(h.f.jobID); err != nil {
			h.fail()
			return 0, toErrno(err)
		}
		h.checked = true
	}
	if err := h.buf.write(data, off); err != nil {
		h.fail()
		errno := toErrno(m.RejectPayload(h.f.jobID, err))
		h.tooLarge = errno == syscall.EFBIG
		return 0, errno
	}
	h.pending = true
	// A small write is checked with all before it (the same rule as a
	// setting's: a big write continues), up to the payload's first 64 KiB:
	// a shell's payload is judged in write(), where the shell sees the
	// error. Past that, each check would scan the whole payload again: a
	// 4 MiB payload written 4 KiB at a time (dd, Python's json.dump) took
	// 20 s of the daemon's CPU. A payload that long is judged at its close.
	if len(data) < jobs.BigSettingWrite && len(h.buf.data) <= jobs.BigSettingWrite {
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

// refusedForSize reports whether the payload was refused for its size.
func (h *dataHandle) refusedForSize() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tooLarge
}

// waiting reports whether the payload still waits for its verdict.
func (h *dataHandle) waiting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending && !h.failed && !h.judged
}

// Flush judges the payload when this close(2) was the last one, or when
// it already is a whole object or array: nothing but white space can
// follow one, so who else still holds the file no longer matters, and the
// scan of every process's descriptors (stillOpen) is skipped. A bare
// trigger (only white space) or another value may still grow, and waits
// for the last close.
func (h *dataHandle) Flush(ctx context.Context) syscall.Errno {
	if h.refusedForSize() {
		// A write of more than the cap is split by the kernel and its
		// first part taken: write(2) returned a short count, not an error,
		// to a writer that then closes. Its close says so.
		return syscall.EFBIG
	}
	if !h.waiting() {
		return 0
	}
	if !h.wholeObject() && h.f.stillOpen(callerPID(ctx)) {
		return 0
	}
	// Found closed, or judged before the last close: either way, for the
	// counting of concurrent writers (stillOpen), as if it held none.
	h.lastClosed.Store(true)
	return h.judge()
}

// wholeObject says whether the payload is already one whole JSON object
// or array (jobs.PayloadWhole).
func (h *dataHandle) wholeObject() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return jobs.PayloadWhole(h.buf.data)
}

// Fsync ends a payload that is a complete value: it returns once its run
// is recorded durably (or with the refusal). A payload that is not complete
// yet has nothing durable to wait for.
func (h *dataHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.mu.Lock()
	complete := h.pending && !h.failed && !h.judged && jobs.PayloadComplete(h.buf.data)
	h.mu.Unlock()
	if !complete {
		return 0
	}
	return h.judge()
}

// judge starts the run of the payload, or refuses it, once.
func (h *dataHandle) judge() syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending || h.failed || h.judged {
		return 0
	}
	h.pending, h.judged = false, true
	if errno := h.holder.may(jobs.Runner, "data"); errno != 0 {
		h.buf.free()
		h.failed = true
		return errno
	}
	id, err := h.f.t.m.TriggerAs(h.f.jobID, h.buf.data, jobs.Manual, h.buf.uid)
	h.buf.free()
	if err != nil {
		h.failed = true
		return toErrno(err)
	}
	h.runID, h.readBase = id, -1
	return 0
}

// Release judges a payload nothing else judged, frees what the handle
// still buffers and uncounts it.
func (h *dataHandle) Release(ctx context.Context) syscall.Errno {
	if !h.counted {
		return 0
	}
	_ = h.judge() // no caller left to tell: the refusal is in the job's log
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return 0
	}
	h.released = true
	h.buf.free()
	h.f.t.temps.budget.close(h.buf.uid)
	h.f.mu.Lock()
	delete(h.f.writers, h)
	h.f.mu.Unlock()
	return 0
}

// Read returns the id of the run this handle started, judging a payload
// that waits for its verdict first (the clone pattern). The id line starts
// at the offset of the first read: after a write, the descriptor's offset
// is the payload's end, and after a seek to 0 it is 0.
func (h *dataHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.waiting() {
		if errno := h.judge(); errno != 0 {
			return nil, errno
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.runID == 0 {
		return fuse.ReadResultData(nil), 0
	}
	if h.readBase < 0 {
		h.readBase = off
	}
	if off < h.readBase {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(sliceAt([]byte(strconv.FormatUint(h.runID, 10)+"\n"), dest, off-h.readBase)), 0
}

// callerPID is the id of the process (its thread) behind a request; 0 when
// unknown.
func callerPID(ctx context.Context) int {
	if c, ok := fuse.FromContext(ctx); ok {
		return int(c.Pid)
	}
	return 0
}

// stillOpen reports whether a process still holds this data file open for
// writing after a close(2) by closer: then that close was not the payload's
// last. Only the handles' openers, the closer and the processes made since
// the earliest open are looked at (jobs.ProcWritersSince).
// With one handle open for writing, any descriptor is one of its copies.
// With several (concurrent writers), the descriptors are counted: each
// handle not yet found closed holds at least one, so fewer descriptors
// than such handles mean the closing one holds none. Where that cannot be
// told (a handle with several copies beside a closing one), the payload
// waits for its RELEASE, which starts it moments later.
func (f *dataFile) stillOpen(closer int) bool {
	f.mu.Lock()
	open := 0
	openers := []int{closer}
	var since jobs.PidMark // the earliest open's
	unknown := false
	for h := range f.writers {
		if !h.lastClosed.Load() {
			open++
		}
		openers = append(openers, h.opener)
		unknown = unknown || h.opened.Last == 0
		if since.Last == 0 || h.opened.At.Before(since.At) {
			since = h.opened
		}
	}
	f.mu.Unlock()
	if unknown {
		since = jobs.PidMark{} // the whole scan
	}
	ino := f.EmbeddedInode().StableAttr().Ino
	counts, complete := jobs.ProcWritersSince(map[uint64]bool{ino: true}, func(target string) bool { return strings.HasSuffix(target, "/data") }, since, openers)
	if !complete {
		return true // unknown: the payload waits for its RELEASE
	}
	n := counts[ino]
	if open <= 1 {
		return n > 0
	}
	return n >= open
}
