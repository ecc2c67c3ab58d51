package fs

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// budget bounds the memory that users can make the daemon hold: the
// payloads buffered by open `data` handles (charged to the writer: a runner
// cannot spend the owner's budget) and the editors' temporary files
// (temp.go; charged to the job's owner, as they outlive their handles) are
// charged by the capacity they really hold; the handles that buffer are
// counted per caller. A request past a limit is refused with an errno that
// reads right and a reason for the job log, and allocates nothing:
//
//   - one buffer holds at most its own cap (16 MiB for data and temporary
//     files): EFBIG ("File too large");
//   - a user holds at most defaultUserBytes (64 MiB, four largest payloads
//     at once) in all their buffers, and all users together at most
//     defaultTotalBytes (1 GiB): ENOSPC ("No space left on device");
//   - a user has at most defaultUserHandles (256) buffering handles open:
//     EMFILE ("Too many open files");
//   - a user has at most userFDs() handles open that keep one of the
//     daemon's descriptors (a staged file, a log, a run's file): EMFILE.
//     The daemon's own user is not counted.
//
// A temporary file counts tempOverhead bytes even when empty, so a user
// cannot make unbounded numbers of them either. The zero value is ready to
// use, with the defaults; no method does I/O or calls out with b.mu held.
type budget struct {
	mu      sync.Mutex
	bytes   map[uint32]int64 // charged bytes per uid
	handles map[uint32]int   // open buffering handles per uid
	fds     map[uint32]int   // open handles holding a descriptor, per uid
	total   int64            // charged bytes of all users

	// Limits; zero means the default (tests set small ones).
	userBytes, totalBytes int64
	userHandles           int
}

const (
	defaultUserBytes   = 64 << 20
	defaultTotalBytes  = 1 << 30
	defaultUserHandles = 256
	// tempOverhead is what a temporary file counts before its content.
	tempOverhead = 4 << 10
	// growStep rounds a buffer's new capacity up, so a payload written in
	// small pieces is not copied at every write.
	growStep = 64 << 10
)

// limitError is a refusal by the budget: the errno the caller sees and the
// reason for the job log.
type limitError struct {
	errno  syscall.Errno
	reason string
}

func (e *limitError) Error() string { return e.reason }
func (e *limitError) Unwrap() error { return e.errno }

func (b *budget) limits() (userBytes, totalBytes int64, userHandles int) {
	userBytes, totalBytes, userHandles = b.userBytes, b.totalBytes, b.userHandles
	if userBytes == 0 {
		userBytes = defaultUserBytes
	}
	if totalBytes == 0 {
		totalBytes = defaultTotalBytes
	}
	if userHandles == 0 {
		userHandles = defaultUserHandles
	}
	return
}

// reserve charges n more bytes to uid, or refuses with ENOSPC.
func (b *budget) reserve(uid uint32, n int64) error {
	if n <= 0 {
		return nil
	}
	userMax, totalMax, _ := b.limits()
	b.mu.Lock()
	defer b.mu.Unlock()
	if have := b.bytes[uid]; have+n > userMax {
		return &limitError{syscall.ENOSPC, fmt.Sprintf(
			"uid %d already buffers %s in open data handles and temporary files, the limit is %s per user: finish or close other writes first",
			uid, mib(have), mib(userMax))}
	}
	if b.total+n > totalMax {
		return &limitError{syscall.ENOSPC, fmt.Sprintf(
			"jobfs already buffers %s for all users, the limit is %s: try again when other writes have finished",
			mib(b.total), mib(totalMax))}
	}
	if b.bytes == nil {
		b.bytes = map[uint32]int64{}
	}
	b.bytes[uid] += n
	b.total += n
	return nil
}

// release gives back n bytes charged to uid.
func (b *budget) release(uid uint32, n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bytes[uid] -= n
	b.total -= n
	if b.bytes[uid] <= 0 {
		delete(b.bytes, uid)
	}
}

// open counts one more buffering handle of uid, or refuses with EMFILE.
func (b *budget) open(uid uint32) error {
	_, _, max := b.limits()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handles[uid] >= max {
		return &limitError{syscall.EMFILE, fmt.Sprintf(
			"uid %d already has %d files of jobfs open for writing, the limit is %d per user: close some first",
			uid, b.handles[uid], max)}
	}
	if b.handles == nil {
		b.handles = map[uint32]int{}
	}
	b.handles[uid]++
	return nil
}

// userFDs bounds the handles of one user that each keep a descriptor of
// the daemon open: an eighth of the daemon's descriptors, at least 256.
// Unbounded, one user's opens of a staged file (21,000, by a hostile-user
// trial) took them all, and every other user's runs failed ("too many
// open files") until they were closed.
var userFDs = sync.OnceValue(func() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 16
	}
	return max(int(rl.Cur/8), 256)
})

// openFD counts a handle of uid that keeps a descriptor, or refuses with
// EMFILE; the daemon's own user is not counted (held false).
func (b *budget) openFD(uid uint32) (held bool, err error) {
	if int64(uid) == int64(os.Geteuid()) {
		return false, nil
	}
	max := userFDs()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fds[uid] >= max {
		return false, &limitError{syscall.EMFILE, fmt.Sprintf(
			"uid %d already has %d files of jobfs open, the limit is %d per user: close some first",
			uid, b.fds[uid], max)}
	}
	if b.fds == nil {
		b.fds = map[uint32]int{}
	}
	b.fds[uid]++
	return true, nil
}

// closeFD uncounts a handle openFD counted.
func (b *budget) closeFD(uid uint32) { b.uncount(true, uid) }

// uncount takes one from uid's count of descriptor-holding handles (fds)
// or of buffering ones; the maps are read under b.mu, which made them.
func (b *budget) uncount(fds bool, uid uint32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	counts := b.handles
	if fds {
		counts = b.fds
	}
	counts[uid]--
	if counts[uid] <= 0 {
		delete(counts, uid)
	}
}

// fdHold is a handle's count in the budget of descriptors (openFD).
type fdHold struct {
	b    *budget
	uid  uint32
	held bool
}

// holdFD counts a handle the caller is opening on jobID's file what,
// which keeps a descriptor of the daemon: EMFILE past the user's limit,
// with the reason in the job's log.
func (t *tree) holdFD(ctx context.Context, jobID, what string) (fdHold, syscall.Errno) {
	uid := t.callerUID(ctx)
	held, err := t.temps.budget.openFD(uid)
	if err != nil {
		_ = t.m.RefuseRepeated(jobID, fmt.Sprintf("open-limit:%d", uid), what, err.Error()) // the errno below is the caller's answer
		return fdHold{}, syscall.EMFILE
	}
	return fdHold{b: &t.temps.budget, uid: uid, held: held}, 0
}

// release uncounts the handle, once.
func (h *fdHold) release() {
	if h.held {
		h.held = false
		h.b.closeFD(h.uid)
	}
}

// close uncounts a handle that open counted.
func (b *budget) close(uid uint32) { b.uncount(false, uid) }

// used returns what uid has charged: bytes and open handles.
func (b *budget) used(uid uint32) (int64, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes[uid], b.handles[uid]
}

// buffer is a byte buffer whose capacity is charged to one user. Its
// methods are not safe for concurrent use: its owner's lock guards it.
type buffer struct {
	b     *budget
	uid   uint32
	limit int64  // largest size, the per-handle cap
	what  string // how a refusal names it: "a payload", "a temporary file"
	data  []byte
}

// tooLarge is the EFBIG refusal of a size past the buffer's cap.
func (c *buffer) tooLarge(size uint64) error {
	return &limitError{syscall.EFBIG, fmt.Sprintf("%s is at most %s; %d bytes refused", c.what, mib(c.limit), size)}
}

// write copies p into the buffer at off, growing it (zero-filled) as
// needed; nothing changes when it is refused.
func (c *buffer) write(p []byte, off int64) error {
	if off < 0 || off > c.limit || int64(len(p)) > c.limit-off {
		return c.tooLarge(uint64(max(off, 0)) + uint64(len(p)))
	}
	end := int(off) + len(p)
	if err := c.resize(max(end, len(c.data))); err != nil {
		return err
	}
	copy(c.data[off:], p)
	return nil
}

// truncate sets the size, zero-filling what it adds, like ftruncate.
func (c *buffer) truncate(size uint64) error {
	if size > uint64(c.limit) {
		return c.tooLarge(size)
	}
	return c.resize(int(size))
}

// resize sets len(c.data) to size. Growth rounds the capacity up a little
// (an eighth, to a growStep), never doubles it; a large shrink gives the
// memory back. The budget is charged before anything is allocated.
func (c *buffer) resize(size int) error {
	old := cap(c.data)
	switch {
	case size == 0:
		c.free()
		return nil
	case size <= old && old-size <= max(growStep, size/4):
		n := len(c.data)
		c.data = c.data[:size]
		if size > n {
			clear(c.data[n:]) // bytes a shrink cut off read as zeros
		}
		return nil
	}
	want := min(roundUp(size+size/8, growStep), int(c.limit))
	want = max(want, size)
	if err := c.b.reserve(c.uid, int64(want-old)); err != nil {
		if want == size {
			return err
		}
		want = size // not the slack, then: the exact size may still fit
		if err := c.b.reserve(c.uid, int64(want-old)); err != nil {
			return err
		}
	}
	next := make([]byte, size, want)
	copy(next, c.data)
	c.data = next
	c.b.release(c.uid, int64(old-want)) // a shrink: give back the rest
	return nil
}

// free drops the content and gives its memory back to the budget.
func (c *buffer) free() {
	c.b.release(c.uid, int64(cap(c.data)))
	c.data = nil
}

func roundUp(n, step int) int { return (n + step - 1) / step * step }

// mib formats a byte count for a reason line: 16 MiB, 1.5 MiB, 512 bytes.
func mib(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// callerUID is the user a request comes from, whose handles are counted.
func (t *tree) callerUID(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid
	}
	return t.owner
}
