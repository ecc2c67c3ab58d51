package jobs

import (
	"sync"
	"time"
)

// SettingWrite is one open-for-writing of a setting file: it buffers the
// file's content as that writer sees it, validates each write (so the
// shell's echo sees a refusal), commits at Flush and undoes what it
// committed when a later part is refused (a value committed in parts, a
// flush per closed copy of the descriptor). The file system only forwards
// bytes to it and maps its errors.
//
// A truncation with nothing written after it (`: > config/timeout`) resets
// the setting at the flush, so a read right after close sees the default;
// that reset is logged, and told to events' readers, only once no value
// can follow: at a later flush with nothing written between, or at Close
// (bash's `echo x > f` flushes once before echo writes: one
// setting.changed, not a reset and then the value).
type SettingWrite struct {
	m     *Manager
	jobID string
	path  string
	// reserve is asked before the buffer grows to n bytes: the adapter's
	// memory budget; its error refuses the write (and fails the session).
	reserve func(n int) error

	mu        sync.Mutex
	buf       []byte     // the file's content as this writer sees it
	truncated bool       // set to empty by O_TRUNC or a truncation
	wrote     bool       // a write arrived since the last commit
	wroteAny  bool       // any write arrived
	failed    bool       // a write was refused: nothing more is committed
	cleared   bool       // the truncation was stored: the setting was reset
	unlogged  bool       // that reset changed the setting and is not logged yet
	committed bool       // a written value was stored (and logged)
	mtime     *time.Time // a time given while a write waited for its commit: set after it
	// before is the stored value before the first commit: a value
	// committed in parts is undone when a later part is refused.
	before *SettingState
}

// BigSettingWrite is the write size from which a value is assumed to
// continue in a further write (cat of a large file), so it is validated at
// Flush instead.
const BigSettingWrite = 64 << 10

// OpenSettingWrite starts a write session on a setting. truncate (O_TRUNC)
// starts it empty; otherwise it starts from the stored value, whose size
// is asked of reserve first. reserve may be nil.
func (m *Manager) OpenSettingWrite(jobID, path string, truncate bool, reserve func(n int) error) (*SettingWrite, error) {
	if reserve == nil {
		reserve = func(int) error { return nil }
	}
	w := &SettingWrite{m: m, jobID: jobID, path: path, reserve: reserve, truncated: truncate}
	if truncate {
		return w, nil
	}
	v, err := m.ReadSetting(jobID, path)
	if err == nil {
		err = reserve(len(v))
	}
	if err != nil {
		return nil, err
	}
	w.buf = []byte(v)
	return w, nil
}

// Written reports whether the writer changed what it sees (a write or a
// truncation): its size is then Len, not the stored value's.
func (w *SettingWrite) Written() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wroteAny || w.truncated
}

// Len is the size of the content as the writer sees it.
func (w *SettingWrite) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// ReadAt copies the content as the writer sees it at off into p.
func (w *SettingWrite) ReadAt(p []byte, off int64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off < 0 || off >= int64(len(w.buf)) {
		return 0
	}
	return copy(p, w.buf[off:])
}

// Write takes data at off. A value too large, a refused reservation or a
// value no further line can cure fails the session: what it committed is
// undone and every later write is refused.
func (w *SettingWrite) Write(data []byte, off int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return errorf(ErrInvalid, "%s: an earlier write to this open file was refused", w.path)
	}
	if !fitsAt(off, len(data), MaxSettingSize) {
		err := w.m.refuseTooLarge(w.jobID, w.path, uint64(max(off, 0))+uint64(len(data)))
		w.fail()
		return err
	}
	if err := w.reserve(max(int(off)+len(data), len(w.buf))); err != nil {
		w.fail()
		return err
	}
	// Bytes left after the write's end are an older value's tail, which a
	// truncation may still cut (an in-place rewrite: write at 0, then
	// ftruncate, as Python's r+ and truncate()): such a write waits for it
	// and is judged at Flush. A shell's > and >> leave no tail.
	tail := off+int64(len(data)) < int64(len(w.buf))
	w.buf = writeAt(w.buf, data, off)
	w.wrote, w.wroteAny = true, true
	if len(data) < BigSettingWrite && !tail {
		// A multi-line value may be written a line at a time: only errors no
		// further line can cure fail the write; the rest wait for Flush.
		if mayComplete, err := w.m.checkPartialSetting(w.jobID, w.path, string(w.buf)); err != nil && !mayComplete {
			w.fail()
			return err
		}
	}
	return nil
}

// Truncate cuts the content to size. store (an ftruncate of this very
// writer) stores a truncation to empty of a writer nothing was written to
// at once; after a write, the next Flush commits the shorter value. A
// truncation by path while writers are open marks each (store false).
//
// An ftruncate of this writer to a size other than 0 with nothing written
// (`truncate -s 2 config/timeout`) is a value of its own, the stored one
// cut: it is judged and stored at once, so that a refusal fails the
// ftruncate itself, as it fails a write. Grown, it would end in zero
// bytes, which no setting takes: refused so.
func (w *SettingWrite) Truncate(size int, store bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return errorf(ErrInvalid, "%s: an earlier write to this open file was refused", w.path)
	}
	resized := size != len(w.buf)
	if size < len(w.buf) {
		w.buf = w.buf[:size]
	}
	w.truncated = true
	switch {
	case w.wroteAny:
		w.wrote = true
	case store && size == 0:
		return w.clear()
	case store && resized:
		if size > len(w.buf) {
			err := w.m.refuseGrown(w.jobID, w.path, len(w.buf), size)
			w.fail()
			return err
		}
		w.wrote, w.wroteAny = true, true
		return w.commit()
	}
	return nil
}

// Flush commits what was written since the last flush, or a truncation
// that nothing was written after. A refused value fails the session.
func (w *SettingWrite) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return nil
	}
	if !w.wrote {
		if w.emptied() {
			// A flush after the one that stored the reset, nothing
			// written between (bash's `: > f` flushes twice): no value
			// follows it, so it is told now, not at Close, which comes
			// after close(2) has returned.
			if w.cleared {
				w.tellReset()
			} else if err := w.clear(); err != nil {
				return err
			}
			return w.setPendingTime()
		}
		return nil
	}
	return w.commit()
}

// commit stores what the writer holds, judged as any value written. A
// refused value fails the session. w.mu is held.
func (w *SettingWrite) commit() error {
	w.wrote = false
	var before *SettingState // read once: only the first commit needs it
	if w.before == nil {
		st := w.m.settingState(w.jobID, w.path)
		before = &st
	}
	if err := w.m.WriteSetting(w.jobID, w.path, string(w.buf)); err != nil {
		w.fail()
		return err
	}
	if before != nil {
		w.before = before
	}
	w.committed = true
	if !w.m.resetsSetting(w.path, string(w.buf)) {
		w.unlogged = false // its log line says what the value is now
	} // else a blank value after O_TRUNC: the reset is still to be told (tellReset)
	return w.setPendingTime()
}

// SetTime gives the setting the mtime t (touch -d, a copy tool keeping
// its source's times): after the commit of a write not yet flushed (cp -a
// sets times on its descriptor before closing it), else at once.
func (w *SettingWrite) SetTime(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed {
		return nil // nothing of the session is stored: no time either
	}
	if w.wrote || w.emptied() && !w.cleared {
		w.mtime = &t
		return nil
	}
	return w.m.SetSettingTime(w.jobID, w.path, t)
}

// setPendingTime sets the time SetTime kept for the commit just made.
// w.mu is held.
func (w *SettingWrite) setPendingTime() error {
	if w.mtime == nil {
		return nil
	}
	t := *w.mtime
	w.mtime = nil
	return w.m.SetSettingTime(w.jobID, w.path, t)
}

// Close ends the session: a truncation no flush stored (none is expected:
// close flushes) is stored, and a reset that Flush stored is logged now
// that no value followed it.
func (w *SettingWrite) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	if w.emptied() && !w.failed {
		if err := w.clear(); err != nil {
			return err
		}
		err = w.setPendingTime()
	}
	w.tellReset() // told even when the time could not be set
	return err
}

// tellReset logs a reset the session stored and tells events' readers,
// once, and only while the setting is still unset (another writer may have
// set a value since). w.mu is held.
func (w *SettingWrite) tellReset() {
	if !w.unlogged {
		return
	}
	w.unlogged = false
	if _, set, err := w.m.store.Setting(w.jobID, w.path); err == nil && !set {
		w.m.logReset(w.jobID, w.path)
		w.m.emit(w.jobID, Event{Type: EventSetting, Setting: w.path})
	}
}

// Abort fails the session from outside (the adapter refused a write before
// it reached Write): what it committed is undone.
func (w *SettingWrite) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail()
}

// fail marks the session failed and undoes what it committed. w.mu is held.
func (w *SettingWrite) fail() {
	w.failed = true
	w.unlogged = false
	if w.before != nil {
		w.m.restoreSetting(w.jobID, w.path, *w.before, w.committed)
		w.before = nil
	}
}

// emptied reports whether the session holds a truncation and nothing
// written after it. w.mu is held.
func (w *SettingWrite) emptied() bool {
	return w.truncated && !w.wroteAny && len(w.buf) == 0
}

// clear stores the truncation of a session nothing was written to: the
// setting is reset now, before the writer's close (or ftruncate) returns.
// The reset is logged at Close, unless a value is written after it. w.mu
// is held.
func (w *SettingWrite) clear() error {
	if w.cleared || w.failed {
		return nil
	}
	st := w.m.settingState(w.jobID, w.path)
	changed, err := w.m.clearSettingUntold(w.jobID, w.path)
	if err != nil {
		return err
	}
	w.cleared = true
	if changed {
		w.unlogged = true
		if w.before == nil {
			w.before = &st
		}
	}
	return nil
}

// fitsAt reports whether a write of n bytes at off ends within limit, with
// no overflow for any offset a caller sends (pwrite at 2^63-1).
func fitsAt(off int64, n int, limit int64) bool {
	return off >= 0 && off <= limit && int64(n) <= limit-off
}

// writeAt copies data into buf at off, growing buf (zero-filled) as needed.
func writeAt(buf, data []byte, off int64) []byte {
	end := int(off) + len(data)
	if end > len(buf) {
		buf = append(buf, make([]byte, end-len(buf))...)
	}
	copy(buf[off:], data)
	return buf
}
