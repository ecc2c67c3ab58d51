package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4K": 4 << 10, "4k": 4 << 10, "4M": 4 << 20, "4MiB": 4 << 20, "1G": 1 << 30, "7": 7} {
		var s byteSize
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("--max-job-log %s = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "4X", "lots", "99999999999G"} {
		var s byteSize
		if err := s.Set(in); err == nil {
			t.Errorf("--max-job-log %q accepted as %d", in, s)
		}
	}
}

// Both formats name the job's owner, job and run; text keeps the lines'
// "jobfs: " form, json is one object per line.
func TestLoggers(t *testing.T) {
	var text, js bytes.Buffer
	_, sl, err := newLoggers(&text, "text")
	if err != nil {
		t.Fatal(err)
	}
	sl.Info("run 7 started", "owner", "alice", "job", "etl", "run", 7)
	if got := text.String(); !strings.HasSuffix(got, " jobfs: etl: run 7 started owner=alice run=7\n") {
		t.Errorf("text line %q", got)
	}
	l, sl, err := newLoggers(&js, "json")
	if err != nil {
		t.Fatal(err)
	}
	sl.Info("run 7 started", "owner", "alice", "job", "etl", "run", 7)
	l.Printf("ready: %s", "/mnt")
	for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil {
			t.Errorf("json line %q: %v", line, err)
		}
	}
	if !strings.Contains(js.String(), `"owner":"alice","job":"etl","run":7`) {
		t.Errorf("json lines %q lack owner, job and run", js.String())
	}
	if _, _, err := newLoggers(&js, "xml"); err == nil {
		t.Error("--log-format xml accepted")
	}
}
