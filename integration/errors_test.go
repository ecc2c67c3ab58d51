//go:build linux

package integration

import (
	"strings"
	"testing"
)

// TestErrors: what a person sees when the daemon refuses something: the
// errno's message from the shell tool, the old value kept and the reason
// in the job's log.
func TestErrors(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	// refused checks a refused write to a setting of job: Invalid argument,
	// the old value kept, "<setting> rejected:" last in the job's log.
	refused := func(t *testing.T, job, setting, write string) {
		t.Helper()
		path := "mnt/" + job + "/" + setting
		old := d.cat(t, path)
		d.fails(t, write+` > "$F"`, "write error: Invalid argument", "F="+path)
		d.wantFile(t, path, old)
		if got := d.ok(t, `tail -n 1 "mnt/$J/log"`, "J="+job); !strings.Contains(got, setting+" rejected: ") {
			t.Errorf("tail -n 1 log = %q, want %s rejected: ...", got, setting)
		}
	}

	t.Run("namelength", func(t *testing.T) {
		// Over NAME_MAX (255), as on ext4, anywhere; a job name's own rule
		// (64) is EINVAL with its reason; 255 bytes stage.
		t.Parallel()
		long := strings.Repeat("n", 256)
		d.fails(t, `mkdir mnt/`+long, "File name too long")
		d.fails(t, `ls mnt/`+long, "File name too long")
		d.fails(t, `mkdir mnt/`+strings.Repeat("j", 65), "Invalid argument")
		d.ok(t, `mkdir mnt/names && touch mnt/names/input/`+long[:255])
		d.fails(t, `touch mnt/names/input/`+long, "File name too long")
		d.fails(t, `mv mnt/names/input/`+long[:255]+` mnt/names/input/`+long, "File name too long")
	})
	t.Run("type", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/type && echo script > mnt/type/config/type`)
		refused(t, "type", "config/type", `echo bogus`)
		d.wantFile(t, "mnt/type/config/type", "script\n")
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/timeout && echo 30s > mnt/timeout/config/timeout`)
		refused(t, "timeout", "config/timeout", `echo forever`)
		refused(t, "timeout", "config/timeout", `printf '%s\n' -5s`)
		d.wantFile(t, "mnt/timeout/config/timeout", "30s\n")
	})
	t.Run("script without #!", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "script", "#!/bin/sh\necho ok\n")
		refused(t, "script", "config/script", `printf 'echo no interpreter\n'`)
		d.wantFile(t, "mnt/script/config/script", "#!/bin/sh\necho ok\n")
	})
	t.Run("job name", func(t *testing.T) {
		t.Parallel()
		d.fails(t, `mkdir 'mnt/bad name'`, "Invalid argument")
		d.fails(t, `mkdir mnt/.hidden`, "Invalid argument")
		d.fails(t, `ls 'mnt/bad name'`, "No such file or directory")
	})
	t.Run("mkdir existing", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/twice`)
		d.fails(t, `mkdir mnt/twice`, "File exists")
	})
	t.Run("read-only files", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "ro", "#!/bin/sh\necho done\n")
		d.trigger(t, "ro", "{}")
		d.waitRun(t, "ro", 1)
		for _, f := range []string{"runs/1/status", "runs/1/exit_code", "runs/1/log", "shortname", "log"} {
			before := d.cat(t, "mnt/ro/"+f)
			if r := d.sh(t, `echo x > "mnt/ro/$F"`, "F="+f); r.code == 0 {
				t.Errorf("writing a read-only file succeeded:\n%s", r)
			}
			if f == "log" { // it only gains the reason, as for any refusal
				after := d.cat(t, "mnt/ro/log")
				if added, ok := strings.CutPrefix(after, before); !ok || !strings.Contains(added, " log rejected: read-only") {
					t.Errorf("after echo x > log, the log gained %q, want only the reason", added)
				}
				continue
			}
			d.wantFile(t, "mnt/ro/"+f, before)
		}
		d.wantFile(t, "mnt/ro/runs/1/status", "COMPLETED\n")
	})
	t.Run("unknown setting", func(t *testing.T) {
		t.Parallel()
		// Issue 14: any name in config/ that is not a setting is a
		// temporary file; the log says so, rm removes it.
		d.ok(t, `mkdir mnt/nope && touch mnt/nope/config/nope`)
		if got := d.ok(t, `tail -n 1 mnt/nope/log`); !strings.Contains(got, "config/nope is not a setting: kept as a temporary file") {
			t.Errorf("tail -n 1 log = %q, want the note for config/nope", got)
		}
		d.ok(t, `rm mnt/nope/config/nope`)
		if got := d.ok(t, `ls mnt/nope/config`); strings.Contains(got, "nope") {
			t.Errorf("ls config = %q, shows the removed file", got)
		}
	})
	t.Run("env reads sealed", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/env && echo s3cr3tvalue > mnt/env/config/env/token`)
		if got := d.cat(t, "mnt/env/config/env/token"); !strings.HasPrefix(got, "jobfs-sealed:v1:") || strings.Contains(got, "s3cr3t") {
			t.Errorf("cat config/env/token = %q, want its sealed form", got)
		}
		if got := d.ok(t, `ls mnt/env/config/env`); got != "token\n" {
			t.Errorf("ls config/env = %q, want token", got)
		}
	})
	t.Run("busy", func(t *testing.T) {
		t.Parallel()
		sleep := startSleeper(t, d, "busy")
		d.ok(t, `echo 2h > mnt/busy/config/timeout && printf 'kept\n' > mnt/busy/description`)
		script := d.cat(t, "mnt/busy/config/script")

		d.fails(t, `rmdir mnt/busy`, "Device or resource busy")
		d.fails(t, `rm -rf mnt/busy`, "Device or resource busy")
		r := d.fails(t, `rm -r mnt/busy/runs/1`, "Device or resource busy")
		if n := strings.Count(r.err, "\n"); n != 1 {
			t.Errorf("rm -r of the active run's folder printed %d lines, want one (the folder's):\n%s", n, r.err)
		}
		if got := d.ok(t, `tail -n 1 mnt/busy/log`); !strings.Contains(got, "cannot delete an active run") {
			t.Errorf("last log line %q, want the refusal's reason", got)
		}
		if got := d.ok(t, `ls mnt`); !strings.Contains(got, "busy\n") {
			t.Fatalf("after the refused rm -rf, ls mnt = %q, want busy", got)
		}
		d.wantFile(t, "mnt/busy/config/type", "script\n")
		d.wantFile(t, "mnt/busy/config/script", script)
		d.wantFile(t, "mnt/busy/config/timeout", "2h\n")
		d.wantFile(t, "mnt/busy/description", "kept\n")
		d.wantFile(t, "mnt/busy/runs/1/status", "RUNNING\n")
		if got := d.ok(t, `ls mnt/busy/runs`); got != "1\nlatest\n" {
			t.Errorf("ls runs = %q, want 1 latest", got)
		}
		if d.pgrep(t, sleep) == "" {
			t.Errorf("the run's process is gone after the refused rm -rf")
		}

		d.ok(t, `echo kill > mnt/busy/runs/1/ctl`)
		if got := d.waitRun(t, "busy", 1); got != "CANCELLED" {
			t.Errorf("killed run ended %s, want CANCELLED", got)
		}
		d.ok(t, `rm -rf mnt/busy`)
		d.fails(t, `ls mnt/busy`, "No such file or directory")
	})
}
