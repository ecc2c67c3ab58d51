package exec

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogSinkMarksDroppedOutput: writes that fail (a full disk, here
// /dev/full) are taken and counted, and one marker line says so once the
// log can be written again, or at the end.
func TestLogSinkMarksDroppedOutput(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var teed []byte
	sink := newLogSink(f, 0, teeFunc(func(p []byte) { teed = append(teed, p...) }), nil)

	write := func(s string) {
		t.Helper()
		if n, err := sink.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want all of it taken, no error", s, n, err)
		}
	}
	write("before\npartial ")
	sink.f = full // the disk fills up
	write("lost line\n")
	write("lost too\n")
	sink.f = f // room again
	write("after\n")
	sink.f = full
	write("lost at the end\n")
	if lost := sink.finish(); lost != 16 {
		t.Errorf("finish on a full disk = %d bytes lost unreported, want 16", lost)
	}
	sink.f = f
	if lost := sink.finish(); lost != 0 {
		t.Errorf("finish with room = %d bytes lost unreported, want 0", lost)
	}
	want := "before\npartial \njobfs: 19 bytes of output dropped: no space left on device\nafter\n" +
		"jobfs: 16 bytes of output dropped: no space left on device\n"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("log = %q, want %q", b, want)
	}
	if string(teed) != want {
		t.Errorf("tee = %q, want %q", teed, want)
	}
}

type teeFunc func([]byte)

func (f teeFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// TestRunDrainsOnFullDisk: a step writing far more than a pipe holds to a
// log that cannot be written (/dev/full) runs to its end: the daemon keeps
// draining its output instead of leaving it blocked until its timeout.
func TestRunDrainsOnFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	s := newStep(t, "#!/bin/sh\nhead -c 4000000 /dev/zero\necho done\n")
	spec := s.spec()
	spec.LogPath = "/dev/full"
	res := runBounded(t, context.Background(), spec)
	if res.Outcome != Exited || res.ExitCode != 0 {
		t.Errorf("Run = %+v, want an exit 0", res)
	}
}

// smallTmpfs mounts a tmpfs of size on a fresh folder, unmounted when t
// ends; the test is skipped where that cannot be done (not root).
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := osexec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "jobfs-exec-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := osexec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			_ = osexec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// fillDisk writes a ballast file in dir until the file system is full.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			return
		}
	}
}

// TestLogSinkMarkerFitsOnFullDisk: on a file system that a step filled to
// the last block, output keeps going into the blocks allocated ahead, then
// is dropped, and the marker saying so still reaches the log (its room was
// kept); the blocks allocated past the log's end are given back at the end.
func TestLogSinkMarkerFitsOnFullDisk(t *testing.T) {
	dir := smallTmpfs(t, "1m")
	path := filepath.Join(dir, "log")
	l, err := OpenLog(path, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("start\n")); err != nil {
		t.Fatal(err)
	}
	fillDisk(t, dir)
	const line, lines = "a line written while the disk is full\n", 5000 // far past what was allocated ahead
	for i := 0; i < lines; i++ {
		if n, err := l.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v; want all taken, no error", n, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v, want nil (the marker fit)", err)
	}
	log := readFile(t, path)
	m := regexp.MustCompile(`^start\n((?:` + line + `)*)jobfs: ([0-9]+) bytes of output dropped: no space left on device\n$`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("log does not hold start, lines and the marker:\n%s", log[max(len(log)-300, 0):])
	}
	if kept, dropped := len(m[1]), m[2]; strconv.Itoa(lines*len(line)-kept) != dropped {
		t.Errorf("%d bytes kept and %s dropped, want %d in all", kept, dropped, lines*len(line))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if pages := (st.Size + 4095) / 4096 * 4096; st.Blocks*512 > pages {
		t.Errorf("the log of %d bytes keeps %d bytes allocated, want at most %d", st.Size, st.Blocks*512, pages)
	}
}

// TestRunFullDiskEndsWithReason: a step whose log's disk is full (filled
// here by the test) writes on and fails: it runs to its end, and its log
// says why output is missing, once for each gap (tmpfs may count a few
// pages free again now and then: output resumes there), never marker after
// marker.
func TestRunFullDiskEndsWithReason(t *testing.T) {
	dir := smallTmpfs(t, "1m")
	gate := filepath.Join(t.TempDir(), "gate")
	s := newStep(t, "#!/bin/sh\necho start\nwhile [ ! -e \"$GATE\" ]; do sleep 0.01; done\n"+
		"yes 'the disk is full' | head -n 20000\nexit 3\n")
	spec := s.spec()
	spec.Env = append(spec.Env, "GATE="+gate)
	spec.LogPath = filepath.Join(dir, "log")
	done := make(chan Result, 1)
	go func() { done <- Run(context.Background(), spec) }()
	eventually(t, "the step started", func() bool {
		b, _ := os.ReadFile(spec.LogPath)
		return string(b) == "start\n"
	})
	fillDisk(t, dir)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var res Result
	select {
	case res = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return")
	}
	if res.Outcome != Exited || res.ExitCode != 3 || res.Err != nil {
		t.Errorf("Run = %+v, want exit 3 and no error", res)
	}
	log := readFile(t, spec.LogPath)
	marker := regexp.MustCompile(`(?m)^jobfs: [0-9]+ bytes of output dropped: no space left on device$`)
	if !strings.HasPrefix(log, "start\n") || !marker.MatchString(log) {
		t.Errorf("log of %d bytes has no marker:\n%q", len(log), log[max(len(log)-300, 0):])
	}
	if twice := regexp.MustCompile(`(?m)^jobfs: [0-9]+ bytes of output dropped: .*\njobfs: [0-9]+ bytes of output dropped`).FindString(log); twice != "" {
		t.Errorf("log has a marker after a marker:\n%s", twice)
	}
}

// TestLogMark: jobfs's own line after a step's output starts a line of its
// own, comes after what the masker held back, and is written past the cap.
func TestLogMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := OpenLog(path, LogOptions{Max: 20, Secrets: [][]byte{[]byte("hunter2")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("waiting hun")); err != nil { // the masker holds "hun" back
		t.Fatal(err)
	}
	l.Mark("jobfs: end\n")
	if _, err := l.Write([]byte(" more output past the cap")); err != nil {
		t.Fatal(err)
	}
	l.Mark("jobfs: again\n")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "waiting hun\njobfs: end\njobfs: log truncated at 20 bytes (--max-log); the step keeps running, its further output is dropped\njobfs: again\n"
	if string(got) != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}
