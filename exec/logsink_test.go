package exec

import (
	"context"
	"os"
	"path/filepath"
	"testing"
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
