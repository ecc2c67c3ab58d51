package exec

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// tail follows a log file another process (a step's shim) appends to:
// inotify says when it grew; drain copies what is new to the tee and rings
// notify, so live readers wake up without the output passing through here.
type tail struct {
	path   string
	f      *os.File // the log, read from off; nil without a tee
	off    int64
	tee    io.Writer
	notify func()
	ino    *os.File // the inotify descriptor; nil where there is none
	events chan struct{}
}

func newTail(path string, from int64, tee io.Writer, notify func()) *tail {
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
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		_ = unix.Close(fd) // nothing was read from it
		return t
	}
	t.ino = os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	go t.watch()
	return t
}

// watch turns inotify events into one pending wake-up on events.
func (t *tail) watch() {
	buf := make([]byte, 4096)
	for {
		if _, err := t.ino.Read(buf); err != nil {
			return // closed
		}
		select {
		case t.events <- struct{}{}:
		default:
		}
	}
}

// drain copies the log's new bytes to the tee and rings notify.
func (t *tail) drain() {
	st, err := os.Lstat(t.path)
	if err != nil || st.Size() <= t.off {
		return
	}
	if t.f != nil {
		n, _ := io.Copy(t.tee, io.NewSectionReader(t.f, t.off, st.Size()-t.off)) // the tee reports its own failures
		t.off += n
	} else {
		t.off = st.Size()
	}
	if t.notify != nil {
		t.notify()
	}
}

func (t *tail) close() {
	if t.ino != nil {
		_ = t.ino.Close() // ends watch
	}
	if t.f != nil {
		_ = t.f.Close() // read only
	}
}
