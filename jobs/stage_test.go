package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A trigger that cannot start is refused with the reason and records
// nothing: no run, and the reason is the job log's last line.
func TestTriggerRefusedWhenJobCannotStart(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{})
	tests := []struct {
		name  string
		setup func(j Job)
		want  string
	}{
		{"empty script", func(j Job) { mustOK(t, m.WriteSetting(j.ID, "config/type", "script")) }, "config/script is empty"},
		{"empty chains", func(j Job) {}, "config/chains is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustCreateJob(t, m, strings.ReplaceAll(tt.name, " ", "-"))
			tt.setup(j)
			_, err := m.Trigger(j.ID, []byte("{}"), Manual)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("trigger: %v, want ErrInvalid with %q", err, tt.want)
			}
			if ids, err := m.Runs(j.ID); err != nil || len(ids) != 0 {
				t.Errorf("runs = %v (%v), want none", ids, err)
			}
			if line := lastJobLogLine(t, m, j.ID); !strings.Contains(line, "trigger refused: "+tt.want) {
				t.Errorf("job log line %q, want the reason", line)
			}
		})
	}
}

// The stale-secret refusal reads like the one a run used to fail with.
func TestStaleEnvReason(t *testing.T) {
	err := staleEnv(map[string]sealedEnv{"b": {Runtime: "script"}, "a": {Runtime: "script"}}, "chains")
	if err == nil || err.Error() != "config/env was set for runtime script; set again: a, b" {
		t.Fatalf("staleEnv = %v", err)
	}
	if err := staleEnv(map[string]sealedEnv{"a": {Runtime: "chains"}}, "chains"); err != nil {
		t.Fatalf("staleEnv of a current secret = %v", err)
	}
}

// A staged file still open for writing (written since its last flush)
// stays staged; the run's log names it; the rest moves in, a folder that
// holds the busy file is split.
func TestTriggerLeavesBusyStagedFile(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Options{})
	j := scriptJob(t, m, "busy", "#!/bin/sh\nls -R \"$1\"\n")
	stage := m.StageDir(j.ID)
	mustOK(t, os.MkdirAll(filepath.Join(stage, "dir"), 0o755))
	mustOK(t, os.WriteFile(filepath.Join(stage, "done.txt"), []byte("x"), 0o644))
	mustOK(t, os.WriteFile(filepath.Join(stage, "dir", "other"), []byte("y"), 0o644))
	busy := filepath.Join(stage, "dir", "copying")
	mustOK(t, os.WriteFile(busy, []byte("half"), 0o644))
	st, err := os.Stat(busy)
	mustOK(t, err)
	w := m.stageOpen(j.ID, inoOf(st))
	w.Wrote()

	id := mustTrigger(t, m, j.ID, "{}")
	waitRun(t, m, j.ID, id)
	in := filepath.Join(m.RunDir(j.ID, id), "input")
	for _, p := range []string{"done.txt", "dir/other"} {
		if _, err := os.Stat(filepath.Join(in, p)); err != nil {
			t.Errorf("%s not moved into the run: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(in, "dir", "copying")); !os.IsNotExist(err) {
		t.Errorf("the busy file reached the run: %v", err)
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("the busy file is no longer staged: %v", err)
	}
	if log := readFile(t, m.RunLogPath(j.ID, id)); !strings.Contains(log, "input/dir/copying is still open for writing") {
		t.Errorf("run log does not name the busy file:\n%s", log)
	}

	// Closed: the next run takes it.
	w.Flushed()
	w.Closed()
	id2 := mustTrigger(t, m, j.ID, "{}")
	waitRun(t, m, j.ID, id2)
	if _, err := os.Stat(filepath.Join(m.RunDir(j.ID, id2), "input", "dir", "copying")); err != nil {
		t.Errorf("run 2 did not get the closed file: %v", err)
	}
}

func inoOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
