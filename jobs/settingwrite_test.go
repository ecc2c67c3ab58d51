package jobs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// A value committed in parts (a flush per closed copy of the descriptor)
// is undone when a later part is refused; a reservation refused by the
// adapter's budget fails the session the same way.
func TestSettingWriteUndo(t *testing.T) {
	m := newTestManager(t, Options{})
	j, err := m.CreateJob(uint32(os.Geteuid()), "undo")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteSetting(j.ID, "config/timeout", "30s"); err != nil {
		t.Fatal(err)
	}
	w, err := m.OpenSettingWrite(j.ID, "config/timeout", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("45s\n"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "45s" {
		t.Fatalf("after the first part: %q", v)
	}
	if err := w.Write([]byte("x"), 4); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an invalid second part: %v, want ErrInvalid", err)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "30s" {
		t.Errorf("after the refusal: %q, want 30s back", v)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}

	full := errors.New("over budget")
	w, err = m.OpenSettingWrite(j.ID, "config/timeout", false, func(n int) error {
		if n > 8 {
			return full
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Len(); got != len("30s\n") && got != len("30s") {
		t.Errorf("a session without O_TRUNC starts from the stored value: %d bytes", got)
	}
	if err := w.Write([]byte("123456789s"), 0); !errors.Is(err, full) {
		t.Errorf("a write past the reservation: %v, want the reserve's error", err)
	}
	if err := w.Flush(); err != nil {
		t.Errorf("flush of a failed session: %v", err)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "30s" {
		t.Errorf("after the refused reservation: %q, want 30s", v)
	}
}

// TestSettingWriteBlankLogged: echo ” > config/schedule (a truncating
// open, which clears the setting at once, then a blank line) logs the
// reset: the blank value found nothing left to reset, and its commit
// dropped the reset still to log.
func TestSettingWriteBlankLogged(t *testing.T) {
	m := newTestManager(t, Options{})
	j, err := m.CreateJob(uint32(os.Geteuid()), "blank")
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, m.WriteSetting(j.ID, "config/schedule", "@every 1h"))
	w, err := m.OpenSettingWrite(j.ID, "config/schedule", true, nil)
	mustOK(t, err)
	mustOK(t, w.Truncate(0, true)) // the kernel's truncation of the open, by its handle
	mustOK(t, w.Write([]byte("\n"), 0))
	mustOK(t, w.Flush())
	mustOK(t, w.Close())
	if v, _ := m.ReadSetting(j.ID, "config/schedule"); strings.TrimSpace(v) != "" {
		t.Errorf("after a blank line: %q, want the default", v)
	}
	if line := lastJobLogLine(t, m, j.ID); !strings.HasSuffix(line, "config/schedule reset to its default") {
		t.Errorf("last job log line %q, want config/schedule reset to its default", line)
	}
}

// TestSettingWriteInPlace: a value rewritten in place, shorter than the
// old (open r+, write at 0, then ftruncate, as Python's f.truncate()) is
// judged once truncated, not while the old value's tail follows it; left
// untruncated, the flush refuses it and the old value stays.
func TestSettingWriteInPlace(t *testing.T) {
	m := newTestManager(t, Options{})
	j, err := m.CreateJob(uint32(os.Geteuid()), "inplace")
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "100s"))
	w, err := m.OpenSettingWrite(j.ID, "config/timeout", false, nil)
	mustOK(t, err)
	mustOK(t, w.Write([]byte("2h\n"), 0))
	mustOK(t, w.Truncate(3, true))
	mustOK(t, w.Flush())
	mustOK(t, w.Close())
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); v != "2h\n" {
		t.Errorf("after the in-place rewrite: %q, want 2h", v)
	}

	w, err = m.OpenSettingWrite(j.ID, "config/timeout", false, nil)
	mustOK(t, err)
	mustOK(t, w.Write([]byte("x"), 0)) // "xh\n", the old tail after it: judged at the flush
	if err := w.Flush(); !errors.Is(err, ErrInvalid) {
		t.Errorf("flush of xh: %v, want ErrInvalid", err)
	}
	_ = w.Close() // the session failed: nothing more to store
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); v != "2h\n" {
		t.Errorf("after the refused flush: %q, want 2h kept", v)
	}
}

// TestSettingWriteOneEvent: bash's `echo 10m > config/timeout` (a flush of
// the truncation before echo writes, then the value's) tells events'
// readers one setting.changed, not a reset and then the value; `: >`
// (a truncation only, flushed twice by bash) stores the reset at the first
// flush, so a read right after sees the default, and tells it at the
// second, before close(2) returns; a reset another writer's value
// replaced before the close is not told.
func TestSettingWriteOneEvent(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "once")
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "30s"))
	s := m.Subscribe(Caller{UID: 0}, true)
	defer s.Close(m.Manager)
	settingEvents := func() int {
		n := 0
		for _, e := range drain(t, m, s) {
			if e.Type == EventSetting && e.Setting == "config/timeout" {
				n++
			}
		}
		return n
	}
	w, err := m.OpenSettingWrite(j.ID, "config/timeout", true, nil)
	mustOK(t, err)
	mustOK(t, w.Flush()) // bash's close of the descriptor it dup'ed
	mustOK(t, w.Write([]byte("10m\n"), 0))
	mustOK(t, w.Flush())
	mustOK(t, w.Close())
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); strings.TrimSpace(v) != "10m" {
		t.Errorf("after echo: %q", v)
	}
	if n := settingEvents(); n != 1 {
		t.Errorf("echo 10m > config/timeout: %d setting.changed events, want 1", n)
	}
	w, err = m.OpenSettingWrite(j.ID, "config/timeout", true, nil)
	mustOK(t, err)
	mustOK(t, w.Flush())
	if _, set, _ := m.store.Setting(j.ID, "config/timeout"); set {
		t.Errorf(": > config/timeout: still set after the flush")
	}
	mustOK(t, w.Flush())
	if n := settingEvents(); n != 1 {
		t.Errorf(": > config/timeout: %d setting.changed events at its second flush, want 1", n)
	}
	mustOK(t, w.Close())
	if n := settingEvents(); n != 0 {
		t.Errorf(": > config/timeout: %d more setting.changed events at its close, want 0", n)
	}
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "5m"))
	settingEvents()
	w, err = m.OpenSettingWrite(j.ID, "config/timeout", true, nil)
	mustOK(t, err)
	mustOK(t, w.Flush())                                    // the reset, stored
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "7m")) // another writer's value
	mustOK(t, w.Close())                                    // no reset to tell any more
	if n := settingEvents(); n != 1 {
		t.Errorf("a reset replaced before its close: %d setting.changed events, want 1 (the value's)", n)
	}
}
