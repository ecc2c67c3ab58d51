package jobs

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestResetDuringRun: a reset is a write of the default, taken while a run
// is active; the run keeps the timeout it started with.
func TestResetDuringRun(t *testing.T) {
	m := newTestManager(t, Options{})
	g := newGate(t)
	j := scriptJob(t, m, "reset-busy", "#!/bin/sh\n"+g.wait())
	mustOK(t, m.WriteSetting(j.ID, "config/schedule", "0 0 1 1 *"))
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "5m"))
	id := mustTrigger(t, m, j.ID, "{}")
	mustOK(t, m.ResetSetting(j.ID, "config/schedule"))
	mustOK(t, m.ResetSetting(j.ID, "config/timeout"))
	if got, _ := m.ReadSetting(j.ID, "config/timeout"); got != "1h\n" {
		t.Errorf("config/timeout after a reset during a run = %q, want 1h", got)
	}
	if next := m.NextRun(j.ID); !next.IsZero() {
		t.Errorf("next run %v after config/schedule was reset, want none", next)
	}
	// The run's "started" line may come before or after it (the run starts
	// on its own): the reset is among the last lines, not always the last.
	lines := jobLogLines(t, m, j.ID)
	if !slices.ContainsFunc(lines[max(len(lines)-2, 0):], func(l string) bool { return strings.HasSuffix(l, "config/timeout reset to its default") }) {
		t.Errorf("last job log lines %q, want config/timeout reset to its default among them", lines[max(len(lines)-2, 0):])
	}
	g.open(t)
	if r := waitRun(t, m, j.ID, id); r.Status != Completed {
		t.Fatalf("run %s: %s", r.Status, r.Error)
	}
}

// TestClearAndRestore: what a writer that truncated a setting does: clear
// it unlogged, then log the reset, or put the old value back with its time
// when the value written after is refused.
func TestClearAndRestore(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "clear")
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "5m"))
	before := m.settingState(j.ID, "config/timeout")
	lines := len(jobLogLines(t, m, j.ID))

	changed, err := m.clearSetting(j.ID, "config/timeout")
	if err != nil || !changed {
		t.Fatalf("ClearSetting = %v, %v; want true, nil", changed, err)
	}
	if got, _ := m.ReadSetting(j.ID, "config/timeout"); got != "1h\n" {
		t.Errorf("config/timeout after ClearSetting = %q, want 1h", got)
	}
	if n := len(jobLogLines(t, m, j.ID)); n != lines {
		t.Errorf("ClearSetting logged %d lines, want none", n-lines)
	}
	if changed, err := m.clearSetting(j.ID, "config/timeout"); err != nil || changed {
		t.Errorf("ClearSetting of a default = %v, %v; want false, nil", changed, err)
	}

	time.Sleep(2 * time.Millisecond) // a restore must not look like a change now
	m.restoreSetting(j.ID, "config/timeout", before, false)
	if got, _ := m.ReadSetting(j.ID, "config/timeout"); got != "5m\n" {
		t.Errorf("config/timeout after RestoreSetting = %q, want 5m", got)
	}
	if got, want := m.SettingTime(j.ID, "config/timeout"), before.time; !got.Equal(want) {
		t.Errorf("config/timeout changed at %v after the restore, want the old %v", got, want)
	}
	if n := len(jobLogLines(t, m, j.ID)); n != lines {
		t.Errorf("an unlogged restore logged %d lines, want none", n-lines)
	}

	m.logReset(j.ID, "config/timeout")
	if line := lastJobLogLine(t, m, j.ID); !strings.HasSuffix(line, "config/timeout reset to its default") {
		t.Errorf("last job log line %q, want config/timeout reset to its default", line)
	}
	if _, err := m.clearSetting(j.ID, "config/nope"); err == nil {
		t.Errorf("ClearSetting of no setting: no error")
	}
}
