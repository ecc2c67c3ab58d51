//go:build linux

package integration

import (
	"slices"
	"strings"
	"testing"
)

// TestSession is the README's tour, command by command.
func TestSession(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	d.ok(t, `mkdir mnt/hello`)
	d.ok(t, `echo script > mnt/hello/config/type`)
	d.ok(t, `printf '#!/bin/sh\necho "hi from $JOBFS_JOB"\ncat "$1/input.json" > "$2/out.json"\n' > mnt/hello/config/script`)
	d.ok(t, `echo '{"n": 1}' > mnt/hello/data`)

	first := strings.TrimSpace(d.cat(t, "mnt/hello/runs/latest/status"))
	if !slices.Contains([]string{"PENDING", "RUNNING", "COMPLETED"}, first) {
		t.Errorf("right after the trigger, runs/latest/status = %q, want PENDING, RUNNING or COMPLETED", first)
	}
	if got := d.waitRun(t, "hello", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/hello/runs/1/log"))
	}
	if log := d.cat(t, "mnt/hello/runs/1/log"); !strings.Contains(log, "hi from hello\n") {
		t.Errorf("runs/1/log = %q, want a line hi from hello", log)
	}
	d.wantFile(t, "mnt/hello/runs/1/result", "{\"n\": 1}\n")
	d.wantFile(t, "mnt/hello/runs/1/exit_code", "0\n")

	r := d.fails(t, `echo 'not json' > mnt/hello/data`, "echo: write error: Invalid argument")
	if r.code != 1 {
		t.Errorf("echo of bad JSON exited %d, want 1", r.code)
	}
	if got := d.ok(t, `ls mnt/hello/runs`); got != "1\nlatest\n" {
		t.Errorf("after the refused payload, ls runs = %q, want only run 1", got)
	}
	if got := d.ok(t, `tail -n 1 mnt/hello/log`); !strings.Contains(got, "data rejected: invalid JSON") {
		t.Errorf("tail -n 1 log = %q, want data rejected: invalid JSON ...", got)
	}

	d.ok(t, `mv mnt/hello mnt/hi`)
	if got := d.ok(t, `ls mnt`); got != "hi\n" {
		t.Errorf("after mv, ls mnt = %q, want hi", got)
	}
	d.wantFile(t, "mnt/hi/runs/1/result", "{\"n\": 1}\n")
	d.ok(t, `rm -rf mnt/hi`)
	if got := d.ok(t, `ls mnt`); got != "" {
		t.Errorf("after rm -rf, ls mnt = %q, want nothing", got)
	}
	d.fails(t, `ls mnt/hi`, "No such file or directory")
}

// TestConfigRoundTrip: settings read back as written, rm resets them, and
// name follows the folder.
func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/cfg`)

	d.wantFile(t, "mnt/cfg/config/timeout", "1h\n")
	d.ok(t, `echo 30s > mnt/cfg/config/timeout`)
	d.wantFile(t, "mnt/cfg/config/timeout", "30s\n")
	d.ok(t, `rm mnt/cfg/config/timeout`)
	d.wantFile(t, "mnt/cfg/config/timeout", "1h\n")
	d.ok(t, `echo 5m > mnt/cfg/config/timeout && : > mnt/cfg/config/timeout`)
	d.wantFile(t, "mnt/cfg/config/timeout", "1h\n")

	desc := "first line\n\n  indented\tand a tab\ttrailing space \nünïcödé\nno newline at the end"
	d.ok(t, `printf '%s' "$D" > mnt/cfg/description`, "D="+desc)
	d.wantFile(t, "mnt/cfg/description", desc)
	d.ok(t, `printf 'line\n' > desc.txt && cp desc.txt mnt/cfg/description`)
	d.wantFile(t, "mnt/cfg/description", "line\n")

	d.wantFile(t, "mnt/cfg/name", "cfg\n")
	d.ok(t, `mv mnt/cfg mnt/cfg2`)
	d.wantFile(t, "mnt/cfg2/name", "cfg2\n")
	d.wantFile(t, "mnt/cfg2/description", "line\n")
	d.wantFile(t, "mnt/cfg2/config/timeout", "1h\n")
}
