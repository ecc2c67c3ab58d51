package exec

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jobfs/jobfs/crypt"
	"golang.org/x/sys/unix"
)

// markerRoom is kept allocated past the end of a step's log (fallocate,
// KEEP_SIZE) so that the marker of output dropped on a full disk always
// has room; reserveChunk is how far ahead the log's blocks are allocated
// at a time (one fallocate per chunk of output).
const (
	markerRoom   = 4 << 10
	reserveChunk = 64 << 10
)

// logSink appends a step's output to the run's log file. It enforces the
// per-run cap (the step keeps running; its further output is drained and
// dropped) and rings notify after every append so live readers wake up.
//
// A write that fails (a full disk) never stops the draining: the step
// would block on a full pipe until its timeout. What could not be written
// is counted and reported by one marker line once writing works again, or
// at the end (finish), so a log never loses lines silently. Where the file
// system can allocate ahead (fallocate), the log's blocks are allocated
// before output is written, with markerRoom to spare: on a full disk the
// output is dropped while the final marker still fits.
type logSink struct {
	f       *os.File
	n, max  int64     // bytes in the file; cap (0 = none)
	tee     io.Writer // may be nil
	notify  func()
	capped  bool
	midLine bool  // the last byte written was not a newline
	dropped int64 // bytes lost to failed writes and not yet reported
	dropErr error // why the first of them was lost
	// allocated is the offset up to which the file's blocks are allocated
	// ahead; -1 when the file system cannot (no room is kept).
	allocated int64
}

func newLogSink(f *os.File, max int64, tee io.Writer, notify func()) *logSink {
	var n int64
	if st, err := f.Stat(); err == nil {
		n = st.Size()
	}
	if notify == nil {
		notify = func() {}
	}
	w := &logSink{f: f, n: n, max: max, tee: tee, notify: notify, allocated: n}
	if w.allocate(0) != nil {
		w.allocated = -1 // already full: the end marker may be lost, as without fallocate
	}
	return w
}

// allocate makes sure the next size bytes and a marker after them have
// blocks; an error (ENOSPC) means the disk is full.
func (w *logSink) allocate(size int64) error {
	need := w.n + size + markerRoom
	if w.allocated < 0 || need <= w.allocated {
		return nil
	}
	// Only past what is allocated already (a page boundary): a fallocate
	// that fails on tmpfs frees every unwritten page of its range, the
	// marker's room among them.
	from := max(w.allocated, w.n)
	for _, end := range []int64{pageUp(need + reserveChunk), pageUp(need)} {
		err := unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, from, end-from)
		if err == nil {
			w.allocated = end
			return nil
		}
		if !errors.Is(err, unix.ENOSPC) {
			w.allocated = -1 // no fallocate here (a pipe, /dev/full, NFS): plain writes
			return nil
		}
	}
	return &os.PathError{Op: "write", Path: w.f.Name(), Err: unix.ENOSPC}
}

// pageUp rounds n up to a whole page.
func pageUp(n int64) int64 {
	page := int64(os.Getpagesize())
	return (n + page - 1) / page * page
}

// Write always takes all of p (see the type's comment); its error is nil.
func (w *logSink) Write(p []byte) (int, error) {
	if w.capped {
		return len(p), nil
	}
	if w.dropped > 0 && !w.reportDropped(int64(len(p)), false) {
		w.dropped += int64(len(p)) // still failing: keep counting
		return len(p), nil
	}
	keep := p
	if w.max > 0 && w.n+int64(len(p)) > w.max {
		keep = p[:max(w.max-w.n, 0)]
		w.capped = true
	}
	if !w.append(keep, false) {
		return len(p), nil
	}
	if w.capped {
		w.append(w.ownLine(fmt.Sprintf("jobfs: log truncated at %d bytes (--max-log); the step keeps running, its further output is dropped\n", w.max)), true)
	}
	return len(p), nil
}

// append writes b to the file (and the tee); what it cannot write is
// counted as dropped. It reports whether all of b was written. A marker
// (jobfs's own line) uses the room kept for it; output needs its blocks
// allocated first, and is dropped whole when they cannot be.
func (w *logSink) append(b []byte, marker bool) bool {
	var err error
	n := 0
	if marker {
		n, err = w.f.Write(b)
	} else if err = w.allocate(int64(len(b))); err == nil {
		n, err = w.f.Write(b)
	}
	w.n += int64(n)
	if n > 0 {
		w.midLine = b[n-1] != '\n'
		if w.tee != nil {
			_, _ = w.tee.Write(b[:n]) // the tee reports its own failures
		}
		w.notify()
	}
	if err != nil {
		if w.dropped == 0 {
			w.dropErr = err
		}
		w.dropped += int64(len(b) - n)
		return false
	}
	return true
}

// ownLine is a line of jobfs's own (ending in a newline) as the log takes
// it: on a line of its own after output that ended without one.
func (w *logSink) ownLine(line string) []byte {
	if w.midLine {
		line = "\n" + line
	}
	return []byte(line)
}

// reportDropped writes the marker line for the output dropped so far and
// reports whether it could. Before the end (not final) it does so only
// when the next bytes of output fit after it too, so a disk that stays full
// gets no marker after marker and the room kept for the last one stays.
func (w *logSink) reportDropped(next int64, final bool) bool {
	lost, err := w.dropped, w.dropErr
	why := err
	if pe, ok := why.(*os.PathError); ok {
		why = pe.Err // "no space left on device", without the path
	}
	line := w.ownLine(fmt.Sprintf("jobfs: %d bytes of output dropped: %v\n", lost, why))
	if !final && w.allocate(int64(len(line))+next) != nil {
		return false
	}
	w.dropped = 0
	if !w.append(line, true) {
		// The marker's own bytes are not output: not counted.
		w.dropped, w.dropErr = lost, err
		return false
	}
	return true
}

// finish writes the marker of output dropped at the end and gives back
// the blocks allocated past the end; it reports how many bytes were lost
// unreported.
func (w *logSink) finish() int64 {
	defer w.release()
	if w.dropped > 0 && !w.reportDropped(0, true) {
		return w.dropped
	}
	return 0
}

// release frees the blocks allocated past the file's end. The size is read
// from the file, so a line another writer appended is never punched out.
func (w *logSink) release() {
	if w.allocated <= 0 {
		return
	}
	st, err := w.f.Stat()
	if err != nil || st.Size() >= w.allocated {
		return // nothing to free, or no safe offset: the blocks go with the file
	}
	// Best effort: what stays allocated is freed with the file.
	_ = unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, st.Size(), w.allocated-st.Size())
	w.allocated = st.Size()
}

// LogOptions say how a step's log is written.
type LogOptions struct {
	Max int64 // cap in bytes; 0 = none
	// Tee, when set, also receives every byte appended to the log.
	Tee io.Writer
	// Notify is called after every append; it must not block.
	Notify func()
	// Secrets are masked as *** (values of 4 bytes or more).
	Secrets [][]byte
}

// Log is a step's log file as Run fills it: masked, capped, and never
// failing a write, so the step is never left blocked on its pipe (see
// logSink). A caller that hands Run a Log (Spec.Log) closes it after Run.
type Log struct {
	f      *os.File
	sink   *logSink
	masker *crypt.Masker // nil without secrets
	w      io.Writer
}

// OpenLog opens (appends to) the log file at path.
func OpenLog(path string, o LogOptions) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return newLog(f, o), nil
}

// newLog makes a Log of a file opened for appending.
func newLog(f *os.File, o LogOptions) *Log {
	l := &Log{f: f, sink: newLogSink(f, o.Max, o.Tee, o.Notify)}
	l.w = l.sink
	if len(o.Secrets) > 0 {
		// Masked before anything reaches a log, across write boundaries.
		l.masker = crypt.NewMasker(l.sink, o.Secrets)
		l.w = l.masker
	}
	return l
}

// Write takes all of p; its error is always nil.
func (l *Log) Write(p []byte) (int, error) { return l.w.Write(p) }

// Mark appends line (jobfs's own, ending in a newline) after what the step
// wrote: what the masker holds back first, on a line of its own, in the
// room kept for markers and past the cap (a line about the step's end is
// not its output, and a capped log still says how the step ended).
func (l *Log) Mark(line string) {
	if l.masker != nil {
		_ = l.masker.Flush() // into the sink, which never fails
	}
	if l.sink.dropped > 0 { // output lost before it is told first
		l.sink.reportDropped(0, true)
	}
	l.sink.append(l.sink.ownLine(line), true) // what it cannot write is counted as dropped
}

// Close writes what the masker holds back and the marker of dropped
// output, then closes the file. Its error says what the log lost: output
// no marker could report (the disk stayed full), or the close's own.
func (l *Log) Close() error {
	if l.masker != nil {
		_ = l.masker.Flush() // into the sink, which never fails
	}
	var err error
	if lost := l.sink.finish(); lost > 0 {
		err = fmt.Errorf("%d bytes of output dropped and not marked in the log: %v", lost, l.sink.dropErr)
	}
	if cerr := l.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("write log: %w", cerr)
	}
	return err
}
