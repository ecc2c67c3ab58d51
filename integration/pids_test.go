//go:build linux

package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestPidsLimitEveryValue: config/limits/pids from 1 to 8, with a step of
// one process and with a pipeline. Each value is either refused in write()
// with the smallest working value in its reason, or a run starts with it:
// the one-process step completes, the pipeline completes or fails with
// the shell's own fork error and an exit code. No Go stack trace ever
// reaches a run log (the step init's threads were counted in the limit
// and it crashed below 6).
func TestPidsLimitEveryValue(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	steps := []struct{ name, script string }{
		{"one", "#!/bin/sh\ntrue\n"},
		{"pipe", "#!/bin/sh\nsh -c 'true | true'\n"},
	}
	for _, st := range steps {
		for n := 1; n <= 8; n++ {
			job := fmt.Sprintf("%s%d", st.name, n)
			d.scriptJob(t, job, st.script)
			r := d.sh(t, fmt.Sprintf(`echo %d > mnt/%s/config/limits/pids`, n, job))
			if n < 2 {
				if r.code == 0 || !strings.Contains(r.err, "Invalid argument") {
					t.Errorf("pids %d: want the write refused:\n%s", n, r)
				}
				want := "config/limits/pids rejected: 1 is too small: the smallest pids limit with which a step starts is 2"
				if got := d.ok(t, `tail -n 1 mnt/`+job+`/log`); !strings.Contains(got, want) {
					t.Errorf("pids %d: last log line %q, want %q", n, got, want)
				}
				continue
			}
			if r.code != 0 {
				t.Fatalf("pids %d refused:\n%s", n, r)
			}
			// Several runs: a limit that holds only sometimes shows.
			completed := 0
			for id := 1; id <= 3; id++ {
				d.trigger(t, job, "{}")
				status := d.waitRun(t, job, id)
				run := fmt.Sprintf("mnt/%s/runs/%d/", job, id)
				log, code, errText := d.cat(t, run+"log"), d.cat(t, run+"exit_code"), d.cat(t, run+"error")
				for _, bad := range []string{"goroutine ", "runtime.", "SIGABRT", "panic"} {
					if strings.Contains(log, bad) {
						t.Errorf("%s pids %d run %d: the log holds %q:\n%s", st.name, n, id, bad, log)
					}
				}
				switch {
				case status == "COMPLETED":
					completed++
				case st.name == "pipe" && status == "FAILED" && strings.TrimSpace(code) != "" && strings.Contains(log, "fork"):
					// the limit at work: the step's shell could not fork
				default:
					t.Errorf("%s pids %d run %d: %s exit_code %q error %q log:\n%s", st.name, n, id, status, code, errText, log)
				}
			}
			t.Logf("%s, pids %d: %d of 3 runs completed", st.name, n, completed)
			if n >= 5 && completed != 3 {
				t.Errorf("%s, pids %d: %d of 3 runs completed, want all: the init (1), sh, sh -c and two children fit", st.name, n, completed)
			}
		}
	}
}
