package exec

import (
	"fmt"
	"io"
	"os"
)

// logSink appends a step's output to the run's log file. It enforces the
// per-run cap (the step keeps running; its further output is drained and
// dropped) and rings notify after every append so live readers wake up.
type logSink struct {
	f      *os.File
	n, max int64     // bytes in the file; cap (0 = none)
	tee    io.Writer // may be nil
	notify func()
	capped bool
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

func (w *logSink) Write(p []byte) (int, error) {
	if w.capped {
		return len(p), nil
	}
	keep := p
	if w.max > 0 && w.n+int64(len(p)) > w.max {
		keep = p[:max(w.max-w.n, 0)]
		w.capped = true
	}
	n, err := w.f.Write(keep)
	w.n += int64(n)
	if w.tee != nil && n > 0 {
		w.tee.Write(keep[:n])
	}
	if err == nil && w.capped {
		_, err = fmt.Fprintf(w.f, "\njobfs: log truncated at %d bytes (--max-log); the step keeps running, its further output is dropped\n", w.max)
	}
	w.notify()
	if err != nil {
		return n, err
	}
	return len(p), nil
}
