package jobs

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSettingNormalizeRender(t *testing.T) {
	tests := []struct {
		path, raw, stored, read string
	}{
		{"config/timeout", "30s\n", "30s", "30s\n"},
		{"config/timeout", "  90 \t\n", "90", "90\n"},
		{"config/enabled", "false", "false", "false\n"},
		{"name", " My report \n", "My report", "My report\n"},
		{"config/script", "#!/bin/sh\necho hi", "#!/bin/sh\necho hi", "#!/bin/sh\necho hi"},
		{"description", "  two\n lines \n\n", "  two\n lines \n\n", "  two\n lines \n\n"},
		{"config/chains", "a <- img\n", "a <- img\n", "a <- img\n"},
	}
	for _, tt := range tests {
		s, ok := SettingFor(tt.path)
		if !ok {
			t.Fatalf("SettingFor(%q): no such setting", tt.path)
		}
		if got := s.Normalize(tt.raw); got != tt.stored {
			t.Errorf("%s: Normalize(%q) = %q, want %q", tt.path, tt.raw, got, tt.stored)
		}
		if got := s.Render(tt.stored); got != tt.read {
			t.Errorf("%s: Render(%q) = %q, want %q", tt.path, tt.stored, got, tt.read)
		}
		if got := s.Normalize(s.Render(tt.stored)); got != tt.stored {
			t.Errorf("%s: Normalize(Render(%q)) = %q", tt.path, tt.stored, got)
		}
	}
	if _, ok := SettingFor("config/nope"); ok {
		t.Error("SettingFor(config/nope) found a setting")
	}
	paths := SettingPaths()
	if !slicesIsSorted(paths) {
		t.Errorf("SettingPaths not sorted: %v", paths)
	}
}

func slicesIsSorted(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func TestParseTimeout(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"90", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{"0", 0, true},
		{"garbage", 0, false},
		{"8d", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTimeout(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestWriteSetting writes each value to a fresh job: an accepted one reads
// back rendered, a refused one is ErrInvalid (or ErrTooLarge), leaves the
// old value and is explained in the job's log.
func TestWriteSetting(t *testing.T) {
	m := newTestManager(t, Options{})
	tests := []struct {
		path string
		raw  string
		read string // what ReadSetting returns after an accepted write
		err  error  // nil: accepted
	}{
		{"config/type", "script\n", "script\n", nil},
		{"config/type", "chains", "chains\n", nil},
		{"config/type", "bash\n", "", ErrInvalid},
		{"config/type", "Script", "", ErrInvalid},

		{"config/enabled", "false\n", "false\n", nil},
		{"config/enabled", "true", "true\n", nil},
		{"config/enabled", "yes", "", ErrInvalid},
		{"config/enabled", "TRUE", "", ErrInvalid},
		{"config/enabled", "1", "", ErrInvalid},

		{"config/timeout", "30s\n", "30s\n", nil},
		{"config/timeout", "90\n", "90\n", nil},
		{"config/timeout", "1h30m", "1h30m\n", nil},
		{"config/timeout", "168h", "168h\n", nil},
		{"config/timeout", "0\n", "", ErrInvalid},
		{"config/timeout", "0s", "", ErrInvalid},
		{"config/timeout", "-1s\n", "", ErrInvalid},
		{"config/timeout", "8d\n", "", ErrInvalid},
		{"config/timeout", "169h", "", ErrInvalid},
		{"config/timeout", "garbage\n", "", ErrInvalid},
		{"config/timeout", "30s\n60s\n", "", ErrInvalid},

		{"config/script", "#!/bin/sh\necho hi\n", "#!/bin/sh\necho hi\n", nil},
		{"config/script", "#!/usr/bin/env python3\nprint(1)", "#!/usr/bin/env python3\nprint(1)", nil},
		{"config/script", "echo hi\n", "", ErrInvalid},
		{"config/script", " #!/bin/sh\n", "", ErrInvalid},

		{"name", "Weekly report\n", "Weekly report\n", nil},
		{"name", strings.Repeat("n", 256), strings.Repeat("n", 256) + "\n", nil},
		{"name", strings.Repeat("n", 257), "", ErrInvalid},
		{"name", "two\nlines", "", ErrInvalid},

		{"description", "First line.\n\n  indented\ttab \nno newline at end", "First line.\n\n  indented\ttab \nno newline at end", nil},
		{"description", "  leading and trailing space  \n\n", "  leading and trailing space  \n\n", nil},
		{"description", "bad \xff utf-8", "", ErrInvalid},

		{"config/keep", "5\n", "5\n", nil},
		{"config/keep", "0", "", ErrInvalid},
		{"config/keep", "many", "", ErrInvalid},
		{"config/limits/memory", "1024\n", "1024\n", nil},
		{"config/limits/memory", "-1", "", ErrInvalid},
		{"config/limits/pids", "0", "0\n", nil},
		{"config/limits/cpu", "abc", "", ErrInvalid},

		{"config/timeout", strings.Repeat("9", MaxSettingSize+1), "", ErrTooLarge},
	}
	for i, tt := range tests {
		j := mustCreateJob(t, m, "w"+itoa(uint64(i)))
		before, err := m.ReadSetting(j.ID, tt.path)
		if err != nil {
			t.Fatalf("%s: ReadSetting: %v", tt.path, err)
		}
		err = m.WriteSetting(j.ID, tt.path, tt.raw)
		after, rerr := m.ReadSetting(j.ID, tt.path)
		if rerr != nil {
			t.Fatalf("%s: ReadSetting: %v", tt.path, rerr)
		}
		if tt.err == nil {
			if err != nil {
				t.Errorf("%s <- %q: %v, want accepted", tt.path, tt.raw, err)
			} else if after != tt.read {
				t.Errorf("%s <- %q: reads %q, want %q", tt.path, tt.raw, after, tt.read)
			}
			continue
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%s <- %q: %v, want %v", tt.path, tt.raw, err, tt.err)
			continue
		}
		if after != before {
			t.Errorf("%s <- %q refused, but it now reads %q (was %q)", tt.path, tt.raw, after, before)
		}
		if line := lastJobLogLine(t, m, j.ID); !strings.Contains(line, " "+tt.path+" rejected: ") {
			t.Errorf("%s <- %q refused; last job log line %q does not say why", tt.path, tt.raw, line)
		}
	}
}

// TestRefusedSettingKeepsOldValue: a bad write after a good one keeps the
// good one, and the job log and the daemon log both carry the reason.
func TestRefusedSettingKeepsOldValue(t *testing.T) {
	clock := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	m := newTestManager(t, Options{Now: func() time.Time { return clock }})
	j := mustCreateJob(t, m, "keep-old")
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "30s\n"))

	err := m.WriteSetting(j.ID, "config/timeout", "soon\n")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteSetting(soon) = %v, want ErrInvalid", err)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); v != "30s\n" {
		t.Errorf("config/timeout = %q after a refused write, want 30s", v)
	}
	line := lastJobLogLine(t, m, j.ID)
	if want := "2026-11-22T10:30:00Z config/timeout rejected: "; !strings.HasPrefix(line, want) || !strings.Contains(line, `"soon"`) {
		t.Errorf("job log line = %q, want %q...\"soon\"...", line, want)
	}
	if want := j.Name + ": config/timeout rejected: "; !strings.Contains(m.daemonLog.String(), want) {
		t.Errorf("daemon log lacks %q:\n%s", want, m.daemonLog.String())
	}
	if _, err := m.checkSetting(j.ID, "config/timeout", "later"); !errors.Is(err, ErrInvalid) {
		t.Errorf("CheckSetting(later) = %v, want ErrInvalid", err)
	}
	if _, err := m.checkSetting(j.ID, "config/timeout", "45s\n"); err != nil {
		t.Errorf("CheckSetting(45s) = %v", err)
	}
	if v, _ := m.ReadSetting(j.ID, "config/timeout"); v != "30s\n" {
		t.Errorf("CheckSetting stored a value: config/timeout = %q", v)
	}
}

func TestResetSetting(t *testing.T) {
	m := newTestManager(t, Options{})
	j := mustCreateJob(t, m, "reset")
	for _, tt := range []struct{ path, value, def string }{
		{"config/timeout", "30s", "1h\n"},
		{"config/enabled", "false", "true\n"},
		{"config/type", "script", "chains\n"},
		{"config/keep", "3", "100\n"},
		{"config/script", "#!/bin/sh\n", ""},
		{"description", "text\n", ""},
		{"name", "Display name", j.Name + "\n"},
	} {
		mustOK(t, m.WriteSetting(j.ID, tt.path, tt.value))
		mustOK(t, m.ResetSetting(j.ID, tt.path))
		if got, _ := m.ReadSetting(j.ID, tt.path); got != tt.def {
			t.Errorf("%s after reset = %q, want the default %q", tt.path, got, tt.def)
		}
		if _, ok, _ := m.Store().Setting(j.ID, tt.path); ok {
			t.Errorf("%s still stored after reset", tt.path)
		}
		mustOK(t, m.ResetSetting(j.ID, tt.path)) // resetting a default is a no-op
	}
	// An empty write is a reset too: `: > config/script`.
	mustOK(t, m.WriteSetting(j.ID, "config/script", "#!/bin/sh\nexit 0\n"))
	mustOK(t, m.WriteSetting(j.ID, "config/script", ""))
	if got, _ := m.ReadSetting(j.ID, "config/script"); got != "" {
		t.Errorf("config/script after an empty write = %q, want empty", got)
	}
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "30s"))
	mustOK(t, m.WriteSetting(j.ID, "config/timeout", "\n"))
	if got, _ := m.ReadSetting(j.ID, "config/timeout"); got != "1h\n" {
		t.Errorf("config/timeout after writing a newline = %q, want the default", got)
	}

	for _, err := range []error{
		m.ResetSetting(j.ID, "config/nope"),
		m.WriteSetting(j.ID, "config/nope", "x"),
		func() error { _, err := m.ReadSetting(j.ID, "config/nope"); return err }(),
		func() error { _, err := m.ReadSetting("nojob", "config/timeout"); return err }(),
		m.WriteSetting("nojob", "config/timeout", "30s"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown setting or job: %v, want ErrNotFound", err)
		}
	}
}

// TestSettingRoundTrip: what ReadSetting returns, written back, is accepted
// and reads the same, for every setting, both at its default and set.
func TestSettingRoundTrip(t *testing.T) {
	repos := t.TempDir()
	m := newTestManager(t, Options{ReposDir: repos})
	makeImage(t, repos, currentUser(t), "report_builder", "#!/bin/sh\n", 0o755)
	set := map[string]string{
		"config/chains":        "# one image\nreport_builder\n",
		"config/enabled":       "false\n",
		"config/keep":          "7\n",
		"config/limits/cpu":    "50\n",
		"config/limits/io":     "1048576\n",
		"config/limits/memory": "256\n",
		"config/limits/pids":   "64\n",
		"config/overlap":       "queue\n",
		"config/schedule":      "0 9 * * 1-5 # weekdays\n",
		"config/script":        "#!/bin/sh\necho round trip\n",
		"config/signatures":    "# to be signed\n",
		"config/timeout":       "1h30m\n",
		"config/type":          "script\n",
		"description":          "Builds the report.\n\nSecond paragraph, no newline",
		"name":                 "Weekly report\n",
	}
	fresh := mustCreateJob(t, m, "defaults")
	written := mustCreateJob(t, m, "written")
	for _, path := range SettingPaths() {
		jobs := []Job{fresh, written}
		if v, ok := set[path]; ok {
			mustOK(t, m.WriteSetting(written.ID, path, v))
		} else {
			t.Logf("%s: no sample value in this test: only its default is checked", path)
			jobs = jobs[:1]
		}
		for _, j := range jobs {
			v, err := m.ReadSetting(j.ID, path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if err := m.WriteSetting(j.ID, path, v); err != nil {
				t.Errorf("%s: writing back %q: %v", path, v, err)
				continue
			}
			if again, _ := m.ReadSetting(j.ID, path); again != v {
				t.Errorf("%s: read %q, wrote it back, now reads %q", path, v, again)
			}
		}
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// makeImage makes the plain-folder image <repos>/<owner>/<name> whose
// entrypoint holds script with the given mode.
func makeImage(t *testing.T, repos, owner, name, script string, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(repos, owner, name)
	mustOK(t, os.MkdirAll(dir, 0o755))
	mustOK(t, os.WriteFile(filepath.Join(dir, "entrypoint"), []byte(script), mode))
	mustOK(t, os.Chmod(filepath.Join(dir, "entrypoint"), mode))
	return dir
}

// TestChainsSingleImage: a chains file naming one image resolves it in
// <repos>/<owner>/<name>/entrypoint, owner being the job owner's login.
func TestChainsSingleImage(t *testing.T) {
	repos := t.TempDir()
	m := newTestManager(t, Options{ReposDir: repos})
	owner := currentUser(t)
	makeImage(t, repos, owner, "report_builder", "#!/bin/sh\n", 0o755)
	makeImage(t, repos, owner, "not_exec", "#!/bin/sh\n", 0o644)
	makeImage(t, repos, "someone_else", "shared_tool", "#!/bin/sh\n", 0o755)
	mustOK(t, os.MkdirAll(filepath.Join(repos, owner, "no_entrypoint"), 0o755))

	tests := []struct {
		value string
		ok    bool
		why   string // part of the reason in the job log
	}{
		{"report_builder\n", true, ""},
		{"report_builder", true, ""},
		{"# the builder\n\nreport_builder  # trailing comment\n", true, ""},
		{"@" + owner + "/report_builder:latest\n", true, ""},
		{"@" + owner + "/report_builder\n", true, ""},
		{"@someone_else/shared_tool\n", true, ""},
		{"shared_tool\n", false, "unknown image @" + owner + "/shared_tool:latest"},
		{"nope\n", false, "unknown image @" + owner + "/nope:latest"},
		{"not_exec\n", false, "no executable"},
		{"no_entrypoint\n", false, "no executable"},
		{"report_builder:v1\n", false, "not a git repository"},
		{"report_builder\nreport_builder\n", false, "line 1"},
		{"report_builder\nnot_exec\n", false, "alone"},
		{"# only a comment\n", false, "empty"},
		{"a | b\n", false, "OR dependencies"},
	}
	for i, tt := range tests {
		j := mustCreateJob(t, m, "chains"+itoa(uint64(i)))
		err := m.WriteSetting(j.ID, "config/chains", tt.value)
		if tt.ok {
			if err != nil {
				t.Errorf("chains %q: %v, want accepted", tt.value, err)
			} else if got, _ := m.ReadSetting(j.ID, "config/chains"); got != tt.value {
				t.Errorf("chains %q reads back %q", tt.value, got)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("chains %q: %v, want ErrInvalid", tt.value, err)
			continue
		}
		line := lastJobLogLine(t, m, j.ID)
		if !strings.Contains(line, "config/chains rejected: ") || !strings.Contains(line, tt.why) {
			t.Errorf("chains %q refused; job log %q should say %q", tt.value, line, tt.why)
		}
		if got, _ := m.ReadSetting(j.ID, "config/chains"); got != "" {
			t.Errorf("chains %q refused but stored: %q", tt.value, got)
		}
	}
}

// TestResolveImage: a bare name is the job owner's image; an owner without
// a login name is looked up by number.
func TestResolveImage(t *testing.T) {
	repos := t.TempDir()
	m := newTestManager(t, Options{ReposDir: repos})
	owner := currentUser(t)
	dir := makeImage(t, repos, owner, "report_builder", "#!/bin/sh\n", 0o755)
	j := mustCreateJob(t, m, "resolve")
	img, err := m.resolveImage(j, "report_builder", false)
	if err != nil {
		t.Fatal(err)
	}
	want := Image{Ref: "@" + owner + "/report_builder:latest", Dir: dir, Entrypoint: filepath.Join(dir, "entrypoint")}
	if img != want {
		t.Errorf("resolveImage = %+v, want %+v", img, want)
	}

	const uid = 54321
	if _, err := user.LookupId(itoa(uid)); err == nil {
		t.Skipf("uid %d has a login name here", uid)
	}
	nobody, err := m.CreateJob(uid, jobName("numeric-owner"))
	mustOK(t, err)
	numDir := makeImage(t, repos, itoa(uid), "tool", "#!/bin/sh\n", 0o755)
	if os.Geteuid() == 0 { // the owner's own image (another's must be readable by the owner)
		mustOK(t, os.Chown(numDir, uid, uid))
	}
	img, err = m.resolveImage(nobody, "tool", false)
	if err != nil || img.Entrypoint != filepath.Join(numDir, "entrypoint") {
		t.Errorf("resolveImage for uid %d = %+v, %v; want %s", uid, img, err, numDir)
	}
}
