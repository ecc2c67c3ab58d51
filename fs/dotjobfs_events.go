package fs

import (
	"context"
	"encoding/json"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// eventsFile is .jobfs/events: a read blocks until something happens to a
// job the reader may see, then returns one JSON line per event, from the
// open on, until the reader stops (Ctrl-C) or the daemon does (EOF). Not
// listed: reachable by name only, like a run's stream.
type eventsFile struct {
	gofs.Inode
	t *tree
}

func (f *eventsFile) fill(ctx context.Context, a *fuse.Attr) syscall.Errno {
	f.t.attr(a, syscall.S_IFREG|0o444, f.t.start)
	return 0
}

func (f *eventsFile) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return f.fill(ctx, &out.Attr)
}

// Open subscribes: each open is a reader of its own, which gets every
// event it may see exactly once, in order.
func (f *eventsFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if isWrite(flags) {
		return nil, 0, syscall.EACCES
	}
	// Each reader holds a queue of its own (jobs.subscriberQueue): the
	// handles are counted per user like the buffering ones (EMFILE).
	uid := f.t.callerUID(ctx)
	if err := f.t.temps.budget.open(uid); err != nil {
		return nil, 0, toErrno(err)
	}
	sub := f.t.m.Subscribe(f.t.caller(ctx), !f.t.multi)
	return &eventsHandle{t: f.t, sub: sub, uid: uid}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_STREAM, 0
}

// eventsBatch bounds the events encoded for one read: the rest wait in
// the subscription's bounded queue, not in the handle.
const eventsBatch = 64

type eventsHandle struct {
	t       *tree
	sub     *jobs.Subscription
	uid     uint32     // counted in the budget's handles until Release
	mu      sync.Mutex // serialises reads; guards pending
	pending []byte     // encoded lines a short read left
}

// Read returns whole lines when dest has room for them (a line longer than
// dest comes in pieces over several reads).
func (h *eventsHandle) Read(ctx context.Context, dest []byte, _ int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pending) == 0 {
		evs, err := h.sub.Next(ctx, h.t.m.Closing(), eventsBatch)
		if err != nil {
			return nil, syscall.EINTR
		}
		for _, e := range evs {
			b, err := json.Marshal(e)
			if err != nil {
				continue // an Event always marshals; nothing to tell the reader
			}
			h.pending = append(append(h.pending, b...), '\n')
		}
	}
	n := len(h.pending)
	if n > len(dest) {
		n = lastLineEnd(h.pending[:len(dest)])
		if n == 0 {
			n = len(dest)
		}
	}
	out := append([]byte(nil), h.pending[:n]...)
	h.pending = h.pending[n:]
	if len(h.pending) == 0 {
		h.pending = nil
	}
	return fuse.ReadResultData(out), 0
}

// lastLineEnd is the length of b's whole lines.
func lastLineEnd(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i + 1
		}
	}
	return 0
}

func (h *eventsHandle) Release(ctx context.Context) syscall.Errno {
	h.sub.Close(h.t.m)
	h.t.temps.budget.close(h.uid)
	return 0
}
