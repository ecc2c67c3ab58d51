package exec

import (
	"fmt"
	"io"
	"os"
)

// logSink appends a step's output to the run's log file. It enforces the
// per-run cap (the step keeps running; its further output is drained and
// dropped) and rings notify after every append so live readers wake up.
//
// A write that fails (a full disk) never stops the draining: the step
// would block on a full pipe until its timeout. What could not be written
// is counted and reported by one marker line once writing works again, or
// at the end (finish), so a log never loses lines silently.
type logSink struct {
	f       *os.File
	n, max  int64     // bytes in the file; cap (0 = none)
	tee     io.Writer // may be nil
	notify  func()
	capped  bool
	midLine bool  // the last byte written was not a newline
	dropped int64 // bytes lost to failed writes and not yet reported
	dropErr error // why the first of them was lost
}

func newLogSink(f *os.File, max int64, tee io.Writer, notify func()) *logSink {
	var n int64
	if st, err := f.Stat(); err == nil {
		n = st.Size()
	}
	if notify == nil {
		notify = func() {}
	}
	return &logSink{f: f, n: n, max: max, tee: tee, notify: notify}
}

// Write always takes all of p (see the type's comment); its error is nil.
func (w *logSink) Write(p []byte) (int, error) {
	if w.capped {
		return len(p), nil
	}
	if w.dropped > 0 && !w.reportDropped() {
		w.dropped += int64(len(p)) // still failing: keep counting
		return len(p), nil
	}
	keep := p
	if w.max > 0 && w.n+int64(len(p)) > w.max {
		keep = p[:max(w.max-w.n, 0)]
		w.capped = true
	}
	if !w.append(keep) {
		return len(p), nil
	}
	if w.capped {
		w.append(fmt.Appendf(nil, "\njobfs: log truncated at %d bytes (--max-log); the step keeps running, its further output is dropped\n", w.max))
	}
	return len(p), nil
}

// append writes b to the file (and the tee); what it cannot write is
// counted as dropped. It reports whether all of b was written.
func (w *logSink) append(b []byte) bool {
	n, err := w.f.Write(b)
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

// reportDropped writes the marker line for the output dropped so far and
// reports whether it could.
func (w *logSink) reportDropped() bool {
	lost, err := w.dropped, w.dropErr
	why := err
	if pe, ok := why.(*os.PathError); ok {
		why = pe.Err // "no space left on device", without the path
	}
	line := fmt.Sprintf("jobfs: %d bytes of output dropped: %v\n", lost, why)
	if w.midLine {
		line = "\n" + line
	}
	w.dropped = 0
	if !w.append([]byte(line)) {
		// The marker's own bytes are not output: not counted.
		w.dropped, w.dropErr = lost, err
		return false
	}
	return true
}

// finish writes the marker of output dropped at the end, if the disk has
// room again; it reports how many bytes were lost unreported.
func (w *logSink) finish() int64 {
	if w.dropped > 0 && !w.reportDropped() {
		return w.dropped
	}
	return 0
}
