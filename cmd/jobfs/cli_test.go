package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// TestExitOf maps how a run ended onto the client's exit code.
func TestExitOf(t *testing.T) {
	for _, c := range []struct {
		status, code string
		want         int
	}{
		{"COMPLETED", "0", 0},
		{"FAILED", "3", 3},
		{"FAILED", "", exitFailed},   // never ran a step
		{"FAILED", "-1", exitFailed}, // not an exit code
		{"TIMEOUT", "124", 124},
		{"TIMEOUT", "", 124},
		{"CANCELLED", "143", 143},
		{"CANCELLED", "137", 137},
		{"CANCELLED", "", 143}, // stopped while PENDING
		{"CANCELLED", "0", 143},
		{"CANCELLED", "3", 143}, // a step that caught the stop and exited 3: not a FAILED run's 3
	} {
		if got := exitOf(c.status, c.code); got != c.want {
			t.Errorf("exitOf(%s, %q) = %d, want %d", c.status, c.code, got, c.want)
		}
	}
}

// TestCheckOperands refuses what does not name a job or a run.
func TestCheckOperands(t *testing.T) {
	for _, job := range []string{"etl", "@alice/etl", "a b"} {
		if err := checkJob(job); err != nil {
			t.Errorf("checkJob(%q) = %v", job, err)
		}
	}
	for _, job := range []string{"", "/etl", "etl/", "a/b", "@alice/etl/runs", "..", "@alice/..", "./etl"} {
		if err := checkJob(job); err == nil {
			t.Errorf("checkJob(%q) accepted", job)
		}
	}
	for _, id := range []string{"1", "42", "latest"} {
		if err := checkRun(id); err != nil {
			t.Errorf("checkRun(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "0", "07", "-1", "x", "1.5"} {
		if err := checkRun(id); err == nil {
			t.Errorf("checkRun(%q) accepted", id)
		}
	}
}

// TestOnlyMount: one jobfs mount is used, none or several are refused
// with the way out.
func TestOnlyMount(t *testing.T) {
	a, b := &mountinfo.Info{Mountpoint: "/srv/jobs"}, &mountinfo.Info{Mountpoint: "/home/al/jobs"}
	if got, err := onlyMount([]*mountinfo.Info{a}); err != nil || got != "/srv/jobs" {
		t.Errorf("onlyMount(one) = %q, %v", got, err)
	}
	for _, ms := range [][]*mountinfo.Info{nil, {a, b}} {
		_, err := onlyMount(ms)
		if err == nil || !strings.Contains(err.Error(), "--mount DIR or JOBFS_MOUNT=DIR") {
			t.Errorf("onlyMount(%d mounts) = %v, want a refusal naming --mount", len(ms), err)
		}
	}
	// Several: the one mounted by the caller is taken, and the one holding
	// the working folder before it.
	uid := strconv.Itoa(os.Getuid())
	mine := &mountinfo.Info{Mountpoint: "/nonexistent/mine", VFSOptions: "rw,user_id=" + uid + ",group_id=0"}
	theirs := &mountinfo.Info{Mountpoint: "/nonexistent/theirs", VFSOptions: "rw,user_id=" + uid + "1,group_id=0"}
	if got, err := onlyMount([]*mountinfo.Info{theirs, mine}); err != nil || got != mine.Mountpoint {
		t.Errorf("onlyMount(theirs, mine) = %q, %v; want mine", got, err)
	}
	wd := t.TempDir()
	t.Chdir(wd)
	here := &mountinfo.Info{Mountpoint: filepath.Dir(wd), VFSOptions: "rw,user_id=" + uid + "1"}
	if got, err := onlyMount([]*mountinfo.Info{mine, here}); err != nil || got != here.Mountpoint {
		t.Errorf("onlyMount(mine, here) from %s = %q, %v; want the one holding the working folder", wd, got, err)
	}
}

// TestCLIUsage: --help prints to stdout and exits 0; bad flags and operand
// counts exit 2 before any mount is looked for.
func TestCLIUsage(t *testing.T) {
	for _, cmd := range []string{"run", "ps", "logs", "stop", "kill", "wait"} {
		var out, errb bytes.Buffer
		if code := cliCmd(cmd, []string{"--help"}, nil, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "Usage: jobfs "+cmd) {
			t.Errorf("jobfs %s --help: exit %d, stdout %q", cmd, code, out.String())
		}
	}
	t.Setenv("JOBFS_MOUNT", "/nonexistent")
	for _, args := range [][]string{{"logs"}, {"logs", "a", "1", "2"}, {"ps", "x"}, {"run", "--nope", "a"}, {"wait", "a", "x"}} {
		var out, errb bytes.Buffer
		if code := cliCmd(args[0], args[1:], nil, &out, &errb); code != exitUsage {
			t.Errorf("jobfs %v: exit %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
	}
	// Flags among the operands, and after them.
	var out, errb bytes.Buffer
	if code := cliCmd("logs", []string{"a", "-f", "--mount", "/nonexistent"}, nil, &out, &errb); code != exitTrouble || !strings.Contains(errb.String(), "--mount /nonexistent is not a jobfs mount") {
		t.Errorf("jobfs logs a -f --mount /nonexistent: exit %d, stderr %q", code, errb.String())
	}
}
