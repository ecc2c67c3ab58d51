package jobs

import (
	"bytes"
	"os"
	"sync"
)

// sharedLog is the log of a multi-step run: every step's lines, each
// prefixed with [label], in order of arrival. Steps write whole lines only,
// so lines of parallel steps never mix.
type sharedLog struct {
	mu   sync.Mutex
	f    *os.File
	bell *bell
	err  error // the first failed write, reported by Close
}

func openSharedLog(path string, b *bell) (*sharedLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &sharedLog{f: f, bell: b}, nil
}

func (l *sharedLog) write(p []byte) {
	l.mu.Lock()
	if _, err := l.f.Write(p); err != nil && l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.bell.ring()
}

// Close closes the file and returns the first error writing to it.
func (l *sharedLog) Close() error {
	err := l.f.Close()
	if l.err != nil {
		return l.err
	}
	return err
}

// Prefixed returns a writer for one step; Close it when the step ends to
// write a last line that had no newline.
func (l *sharedLog) Prefixed(label string) *prefixWriter {
	return &prefixWriter{log: l, prefix: []byte("[" + label + "] ")}
}

// prefixWriter buffers a step's partial line until its newline.
type prefixWriter struct {
	log     *sharedLog
	prefix  []byte
	partial []byte
}

// maxPartial bounds a line held back waiting for its newline.
const maxPartial = 64 << 10

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	end := bytes.LastIndexByte(w.partial, '\n') + 1
	if end == 0 && len(w.partial) < maxPartial {
		return len(p), nil
	}
	if end == 0 {
		end = len(w.partial)
	}
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(w.partial[:end], []byte("\n")) {
		if len(line) > 0 {
			out.Write(w.prefix)
			out.Write(line)
		}
	}
	if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
		out.WriteByte('\n')
	}
	w.log.write(out.Bytes())
	w.partial = append(w.partial[:0], w.partial[end:]...)
	return len(p), nil
}

// Close writes a last line that had no newline.
func (w *prefixWriter) Close() error {
	if len(w.partial) > 0 {
		w.log.write(append(append(append([]byte(nil), w.prefix...), w.partial...), '\n'))
		w.partial = nil
	}
	return nil
}
