package exec

import (
	"bytes"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tail follows a log file another process (a step's shim) appends to:
// inotify says when it grew; drain copies what is new to the tee and rings
// notify, so live readers wake up without the output passing through here.
//
// The inotify events are handled by the goroutine that reads them (watch),
// not handed to the caller's loop: a line's way to a stream reader is one
// goroutine wake-up shorter (issue 20: child write -> stream p99). events
// then only fires where there is no inotify (never: the caller's ticker
// drains) and stays for the callers that select on it.
type tail struct {
	path   string
	mu     sync.Mutex // serialises drain: watch and the caller's last drain
	f      *os.File   // the log, read from off; nil without a tee
	off    int64
	tee    io.Writer
	notify func()
	ino    *os.File // the inotify descriptor; nil where there is none
	events chan struct{}
	// ringAll: another file is watched too (the run log the shim writes
	// itself, which the stream readers read): its events ring notify, and
	// the log's own do not, since the shim writes the log's bytes before
	// the run log's and a reader woken then finds nothing yet.
	ringAll bool
	logWD   int32 // the log's watch
}

// also are more files (a run log a shim writes) whose growth rings
// notify.
func newTail(path string, from int64, tee io.Writer, notify func(), also ...string) *tail {
	t := &tail{path: path, off: from, tee: tee, notify: notify, events: make(chan struct{}, 1)}
	if tee != nil {
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0); err == nil {
			t.f = f
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return t // the caller's ticker drains: slower, still complete
	}
	wd, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY)
	if err != nil {
		_ = unix.Close(fd) // nothing was read from it
		return t
	}
	t.logWD = int32(wd)
	for _, p := range also {
		if p == "" {
			continue
		}
		if _, err := unix.InotifyAddWatch(fd, p, unix.IN_MODIFY); err == nil {
			t.ringAll = true
		}
	}
	t.ino = os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	go t.watch()
	return t
}

// watch handles the inotify events as they come (see the type's comment).
func (t *tail) watch() {
	buf := make([]byte, 4096)
	for {
		n, err := t.ino.Read(buf)
		if err != nil {
			return // closed
		}
		t.handle(buf[:n])
	}
}

// handle drains after a batch of inotify events; in ringAll mode it rings
// notify for an event of the other file (the run log) only.
func (t *tail) handle(evs []byte) {
	if !t.ringAll {
		t.drain()
		return
	}
	other := false
	for len(evs) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&evs[0]))
		other = other || ev.Wd != t.logWD
		evs = evs[min(len(evs), unix.SizeofInotifyEvent+int(ev.Len)):]
	}
	t.drainQuiet()
	if other && t.notify != nil {
		t.notify()
	}
}

// event drains after an inotify event; one of another file rings notify
// even when the log did not grow.
func (t *tail) event() {
	if !t.drain() && t.ringAll && t.notify != nil {
		t.notify()
	}
}

// drainQuiet is drain without the ring (ringAll: the run log's events
// ring).
func (t *tail) drainQuiet() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.copyNew()
}

// drain copies the log's new bytes to the tee and rings notify; it reports
// whether the log grew.
func (t *tail) drain() bool {
	t.mu.Lock()
	grew := t.copyNew()
	t.mu.Unlock()
	if grew && t.notify != nil {
		t.notify()
	}
	return grew
}

// copyNew copies the log's new bytes to the tee (with t.mu held) and
// reports whether the log grew.
func (t *tail) copyNew() bool {
	st, err := os.Lstat(t.path)
	if err != nil || st.Size() <= t.off {
		return false
	}
	if t.f != nil {
		n, _ := io.Copy(t.tee, io.NewSectionReader(t.f, t.off, st.Size()-t.off)) // the tee reports its own failures
		t.off += n
	} else {
		t.off = st.Size()
	}
	return true
}

func (t *tail) close() {
	if t.ino != nil {
		// Closing an inotify instance waits for an SRCU grace period of the
		// kernel's fsnotify (measured: 10-20 ms), which every step's end
		// paid before its status was recorded: closed aside instead.
		go func() { _ = t.ino.Close() }() // ends watch; nothing to flush
	}
	t.mu.Lock() // watch may still drain: it finds no file, so copies nothing
	defer t.mu.Unlock()
	if t.f != nil {
		_ = t.f.Close() // read only
		t.f = nil
	}
}

// linePrefixer writes each line it gets to a file after a prefix, whole
// lines in one write each: appends of several writers (the shims of a
// run's steps) never mix within a line. A line without its newline is
// held back, up to maxLinePart bytes, until it comes or Close.
type linePrefixer struct {
	f       *os.File
	prefix  []byte
	partial []byte
}

// maxLinePart bounds a line held back waiting for its newline.
const maxLinePart = 64 << 10

func newLinePrefixer(f *os.File, prefix string) *linePrefixer {
	return &linePrefixer{f: f, prefix: []byte(prefix)}
}

// Write takes all of p; a failed write of the file is dropped (the step's
// own log has every byte, and the step must not block on it).
func (w *linePrefixer) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	end := bytes.LastIndexByte(w.partial, '\n') + 1
	if end == 0 && len(w.partial) < maxLinePart {
		return len(p), nil
	}
	if end == 0 {
		end = len(w.partial)
	}
	w.write(w.partial[:end])
	w.partial = append(w.partial[:0], w.partial[end:]...)
	return len(p), nil
}

// write writes lines (the last one given its newline), each after the
// prefix, in one write.
func (w *linePrefixer) write(lines []byte) {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(lines, []byte("\n")) {
		if len(line) > 0 {
			out.Write(w.prefix)
			out.Write(line)
		}
	}
	if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
		out.WriteByte('\n')
	}
	_, _ = w.f.Write(out.Bytes()) // see Write
}

// Close writes a last line that had no newline and closes the file.
func (w *linePrefixer) Close() {
	if len(w.partial) > 0 {
		w.write(w.partial)
		w.partial = nil
	}
	_ = w.f.Close() // written with plain writes: nothing buffered
}
