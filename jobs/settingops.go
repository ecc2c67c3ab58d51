package jobs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

func (m *Manager) setting(path string) (Setting, error) {
	s, ok := SettingFor(path)
	if !ok {
		return s, errorf(ErrNotFound, "%s: no such setting", path)
	}
	return s, nil
}

// ReadSetting returns the file content of a setting: the stored value or
// its default, rendered as a later write of it would be accepted.
func (m *Manager) ReadSetting(jobID, path string) (string, error) {
	s, err := m.setting(path)
	if err != nil {
		return "", err
	}
	v, ok, err := m.store.Setting(jobID, path)
	if err != nil {
		return "", err
	}
	if !ok {
		v = s.Default
		if path == "name" {
			j, err := m.store.Job(jobID)
			if err != nil {
				return "", err
			}
			v = j.Name
		}
	}
	return s.Render(v), nil
}

// NoteTemp logs that a file created below config/ under a name that is
// neither a setting nor a tool's usual temporary name is kept as a
// temporary file, so that a mistyped setting name leaves a trace.
func (m *Manager) NoteTemp(jobID, path string) {
	m.event(jobID, "%s is not a setting: kept as a temporary file (in memory, gone when the daemon stops) until it is renamed over a setting or removed", path)
}

// refuseTooLarge refuses, and logs, a write that would make a setting
// size bytes long, past MaxSettingSize.
func (m *Manager) refuseTooLarge(jobID, path string, size uint64) error {
	return m.reject(jobID, path, errorf(ErrTooLarge, "%s: %d bytes exceeds the %d byte limit", path, size, MaxSettingSize))
}

// checkPartialSetting checks a value that may still grow (what a write in
// the middle of a file has left): an error later lines could cure (see
// Error.MayComplete) is returned unlogged with mayComplete set; any other
// is logged like CheckSetting's.
func (m *Manager) checkPartialSetting(jobID, path, raw string) (mayComplete bool, err error) {
	_, invalid, err := m.validSetting(jobID, path, raw)
	var e *Error
	switch {
	case err != nil:
		return false, err
	case invalid == nil:
		return false, nil
	case errors.As(invalid, &e) && e.MayComplete:
		return true, invalid
	}
	return false, m.reject(jobID, path, invalid)
}

// checkSetting validates raw bytes written to a setting without storing
// them and returns the value to store; a rejection is logged to the
// job's log.
func (m *Manager) checkSetting(jobID, path, raw string) (string, error) {
	v, invalid, err := m.validSetting(jobID, path, raw)
	if err != nil {
		return "", err
	}
	if invalid != nil {
		return "", m.reject(jobID, path, invalid)
	}
	return v, nil
}

// validSetting normalises raw for path and validates it: invalid is why
// the value is refused (the callers log it), err that the job or setting
// does not exist.
func (m *Manager) validSetting(jobID, path, raw string) (v string, invalid, err error) {
	s, err := m.setting(path)
	if err != nil {
		return "", nil, err
	}
	j, err := m.store.Job(jobID)
	if err != nil {
		return "", nil, err
	}
	v = s.Normalize(raw)
	return v, s.validate(m, j, v), nil
}

// WriteSetting validates and stores a setting. An empty value resets it to
// its default. A refused value leaves the old one in place.
func (m *Manager) WriteSetting(jobID, path, raw string) error {
	s, err := m.setting(path)
	if err != nil {
		return err
	}
	if s.Normalize(raw) == "" {
		return m.ResetSetting(jobID, path)
	}
	v, err := m.checkSetting(jobID, path, raw)
	if err != nil {
		return err
	}
	if err := m.store.SetSetting(jobID, path, v, m.now()); err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	if s.Lines {
		m.event(jobID, "%s set (%d bytes)", path, len(v))
	} else {
		m.event(jobID, "%s set to %s%s", path, v, m.unenforcedNote(path, v))
	}
	m.changed(jobID, path)
	return nil
}

// TruncateSetting cuts a setting's stored value to size bytes (truncate
// by path, no writer open): the result is judged and stored as any value
// written; 0 resets it, and a larger size is refused (refuseGrown).
func (m *Manager) TruncateSetting(jobID, path string, size int) error {
	if size == 0 {
		return m.ResetSetting(jobID, path)
	}
	v, err := m.ReadSetting(jobID, path)
	if err != nil {
		return err
	}
	switch {
	case size == len(v):
		return nil // nothing cut, nothing grown
	case size < len(v):
		return m.WriteSetting(jobID, path, v[:size])
	}
	return m.refuseGrown(jobID, path, len(v), size)
}

// refuseGrown refuses a truncation that grows a setting: it would end in
// zero bytes, which no setting takes.
func (m *Manager) refuseGrown(jobID, path string, from, to int) error {
	return m.reject(jobID, path, errorf(ErrInvalid, "%s: truncate to %d bytes would grow its %d with zero bytes, which no setting takes: cut it, or write a new value", path, to, from))
}

// unenforcedNote is what the log line of a limit just set adds when this
// daemon cannot enforce it (no cgroup controller for it): the run logs
// say so at each run's start, which someone setting it may not read.
func (m *Manager) unenforcedNote(path, v string) string {
	if !strings.HasPrefix(path, "config/limits/") || v == "0" || m.backend == nil {
		return ""
	}
	for _, gap := range m.backend.Gaps(m.limits(runConfig{values: map[string]string{path: v}})) {
		if why, ok := strings.CutPrefix(gap, "limits not enforced: "); ok {
			return " (not enforced by this jobfs: " + why + ")"
		}
	}
	return ""
}

// resetsSetting says whether writing raw to path resets it (a blank value).
func (m *Manager) resetsSetting(path, raw string) bool {
	s, err := m.setting(path)
	return err == nil && s.Normalize(raw) == ""
}

// ResetSetting returns a setting to its default (rm of the file, truncate
// -s 0) and logs it. A reset is a write of the default: like any write it is
// taken while a run is active, which keeps the config it started with.
// (It was refused then only so that rm -rf of a busy job changed nothing;
// a job deleted whole no longer resets its settings one by one.)
func (m *Manager) ResetSetting(jobID, path string) error {
	changed, err := m.clearSetting(jobID, path)
	if changed {
		m.logReset(jobID, path)
	}
	return err
}

// clearSetting resets a setting without logging it, tells events' readers
// and reports whether it was set. A writer that truncated the file
// (`: > config/timeout`) uses clearSettingUntold: it clears it at once, so
// a read right after its close sees the default, and tells and logs the
// reset only once it knows no value was written after (tellReset).
func (m *Manager) clearSetting(jobID, path string) (changed bool, err error) {
	changed, err = m.clearSettingUntold(jobID, path)
	if changed {
		m.emit(jobID, Event{Type: EventSetting, Setting: path})
	}
	return changed, err
}

// clearSettingUntold is clearSetting with its event left to the caller:
// a writer's truncation tells it only if no value follows.
func (m *Manager) clearSettingUntold(jobID, path string) (changed bool, err error) {
	if _, err := m.setting(path); err != nil {
		return false, err
	}
	if _, ok, err := m.store.Setting(jobID, path); err != nil || !ok {
		return false, err
	}
	if err := m.store.DeleteSetting(jobID, path, m.now()); err != nil {
		return false, fmt.Errorf("reset %s: %w", path, err)
	}
	m.apply(jobID, path)
	return true, nil
}

// logReset logs that a setting was reset to its default.
func (m *Manager) logReset(jobID, path string) {
	m.event(jobID, "%s reset to its default", path)
}

// SettingState is a setting's stored value, kept by a writer that commits
// a value in parts (a flush per closed copy of its descriptor) so that a
// refusal of a later part can put back what was there before.
type SettingState struct {
	value string
	set   bool
	time  time.Time // when it last changed, zero if never
}

// settingState returns the stored state of a setting.
func (m *Manager) settingState(jobID, path string) SettingState {
	v, ok, _ := m.store.Setting(jobID, path)
	return SettingState{value: strings.Clone(v), set: ok, time: m.storeTime(jobID, path)}
}

// restoreSetting puts back a state from SettingState, without checks, with
// the time it had. logged says whether the undone part had been logged:
// only then is the undoing logged too.
func (m *Manager) restoreSetting(jobID, path string, st SettingState, logged bool) {
	if now, ok, err := m.store.Setting(jobID, path); err == nil && ok == st.set && now == st.value {
		return // nothing to undo
	}
	t := st.time
	if t.IsZero() {
		t = m.now()
	}
	var err error
	if st.set {
		err = m.store.SetSetting(jobID, path, st.value, t)
	} else {
		err = m.store.DeleteSetting(jobID, path, t)
	}
	if err != nil {
		m.slog.Warn(fmt.Sprintf("restore %s: %v", path, err), m.jobAttrs(jobID)...)
		return
	}
	if logged {
		m.event(jobID, "%s: the part already written was undone; the value before it is kept", path)
	}
	m.changed(jobID, path)
}

// setting value used by a run: stored or default, normalised.
func (m *Manager) value(jobID, path string) string {
	s, _ := SettingFor(path)
	v, ok, _ := m.store.Setting(jobID, path)
	if !ok {
		return s.Default
	}
	return strings.Clone(v)
}

// SettingTime is when a setting last changed: the job's creation when never.
func (m *Manager) SettingTime(jobID, path string) time.Time {
	if t := m.storeTime(jobID, path); !t.IsZero() {
		return t
	}
	j, err := m.store.Job(jobID)
	if err != nil {
		return time.Time{}
	}
	return j.Created
}

// SettingFileTime is the mtime of a setting's file: when it was last
// written, reset or given a time (SetSettingTime); the Unix epoch for one
// never written, whose default has no time of its own. Not the job's
// creation: a copy tool that compares size and time (rsync -a into a new
// job) judged `chains\n` the same as a source `script\n` written in the
// job's first second, and left the default in place.
func (m *Manager) SettingFileTime(jobID, path string) time.Time {
	if t := m.storeTime(jobID, path); !t.IsZero() {
		return t
	}
	return time.Unix(0, 0)
}

// SetSettingTime gives a setting's file the mtime t (touch -d, a copy
// tool keeping its source's times), its value untouched; it is not logged.
func (m *Manager) SetSettingTime(jobID, path string, t time.Time) error {
	if _, err := m.setting(path); err != nil {
		return err
	}
	if err := m.store.SetTime(jobID, path, t); err != nil {
		return fmt.Errorf("set the time of %s: %w", path, err)
	}
	return nil
}

// changed tells the events' readers of a setting's change and applies
// its side effects.
func (m *Manager) changed(jobID, path string) {
	m.emit(jobID, Event{Type: EventSetting, Setting: path})
	m.apply(jobID, path)
}

// apply applies a setting's side effects: the scheduler and the jobs
// started after this one read it now.
func (m *Manager) apply(jobID, path string) {
	if path == "config/schedule" {
		m.reschedule(jobID)
	}
	if path == "config/after" {
		m.afters.changed(m, jobID)
	}
	if path == "config/keep" {
		m.pruneSoon(jobID)
	}
}

// pruneSoon prunes a job's runs beyond its config/keep just changed, off
// the writer's call (each run pruned is a commit and its folder's
// removal), as a run's end does: a lowered keep takes effect at once, not
// at the next run's end.
func (m *Manager) pruneSoon(jobID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopping {
		return // the next start's first run end prunes
	}
	m.wg.Add(1) // Close waits for it
	go func() {
		defer m.wg.Done()
		m.prune(jobID)
	}()
}
