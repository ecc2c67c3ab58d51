//go:build linux

package integration

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The command line client (issue 17): jobfs run, ps, logs, stop, kill and
// wait, the same binary as the daemon, working through the mount alone.
// Its exit codes: the run's for run --wait and wait (TIMEOUT 124, 128+N
// after signal N), 2 bad arguments, 125 no mount, 126 refused, 127 no such
// job or run.

// cliScripts are the jobs of TestCLI.
var cliScripts = map[string]string{
	"hello": "#!/bin/sh\necho \"hi from $JOBFS_JOB\"\ncat \"$1/input.json\" > \"$2/out.json\"\n",
	"fails": "#!/bin/sh\necho failing\nexit 3\n",
	"loop":  "#!/bin/sh\nwhile :; do echo tick; sleep 0.2; done\n",
	"slow":  "#!/bin/sh\nsleep 300\n",
}

// cli runs the client with JOBFS_MOUNT naming d's mount (other tests'
// mounts may be there too).
func (d *daemon) cli(t *testing.T, script string, env ...string) result {
	t.Helper()
	return d.sh(t, script, append([]string{"JOBFS=" + d.bin, "JOBFS_MOUNT=" + d.mnt}, env...)...)
}

// wantCLI fails the test unless r exited code with want in its stderr.
func wantCLI(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.err, want) {
		t.Errorf("want exit %d and %q on stderr:\n%s", code, want, r)
	}
}

func TestCLI(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	for name, script := range cliScripts {
		d.scriptJob(t, name, script)
	}
	d.ok(t, `mkdir mnt/never && echo 1s > mnt/slow/config/timeout`)

	t.Run("run prints the id", func(t *testing.T) {
		r := d.cli(t, `printf '{"n": 1}' | "$JOBFS" run hello`)
		if r.code != 0 || r.out != "1\n" {
			t.Fatalf("want exit 0 and the id 1:\n%s", r)
		}
		d.waitRun(t, "hello", 1)
		d.wantFile(t, "mnt/hello/runs/1/result", `{"n": 1}`)
		// No stdin (a terminal or empty): the payload is {}.
		if r := d.cli(t, `"$JOBFS" run hello < /dev/null`); r.code != 0 || r.out != "2\n" {
			t.Fatalf("want exit 0 and the id 2:\n%s", r)
		}
		d.waitRun(t, "hello", 2)
		d.wantFile(t, "mnt/hello/runs/2/result", "{}")
	})

	t.Run("run --wait", func(t *testing.T) {
		r := d.cli(t, `echo '{}' | "$JOBFS" run --wait hello`)
		if r.code != 0 || r.out != "hi from hello\n" || !strings.Contains(r.err, "COMPLETED (exit 0)") {
			t.Errorf("want exit 0, the log on stdout, COMPLETED on stderr:\n%s", r)
		}
		// A FAILED run's exit code, and its log on stdout.
		r = d.cli(t, `"$JOBFS" run --wait fails < /dev/null`)
		if r.code != 3 || !strings.HasPrefix(r.out, "failing\n") || !strings.Contains(r.err, "FAILED (exit 3)") {
			t.Errorf("want exit 3, the log on stdout, FAILED on stderr:\n%s", r)
		}
		// TIMEOUT is 124 (config/timeout 1s), flags after the job too.
		wantCLI(t, d.cli(t, `"$JOBFS" run slow --wait < /dev/null`), 124, "TIMEOUT (exit 124)")
		if r := d.cli(t, `"$JOBFS" wait fails 1`); r.code != 3 || r.out != "FAILED\n" {
			t.Errorf("want exit 3 and FAILED:\n%s", r)
		}
	})

	t.Run("refused and no such job", func(t *testing.T) {
		before := d.ok(t, `ls mnt/hello/runs`)
		wantCLI(t, d.cli(t, `echo 'not json' | "$JOBFS" run hello`), 126, "invalid JSON")
		wantCLI(t, d.cli(t, `printf '{"a":' | "$JOBFS" run hello`), 126, "refused: invalid argument")
		if after := d.ok(t, `ls mnt/hello/runs`); after != before {
			t.Errorf("a refused payload recorded a run: runs/ was\n%s\nis\n%s", before, after)
		}
		wantCLI(t, d.cli(t, `"$JOBFS" run nosuch < /dev/null`), 127, "no such job nosuch")
		wantCLI(t, d.cli(t, `"$JOBFS" logs nosuch`), 127, "no such job")
		wantCLI(t, d.cli(t, `"$JOBFS" wait hello 99`), 127, "no such run 99")
		wantCLI(t, d.cli(t, `"$JOBFS" logs never`), 127, "no runs yet")
		wantCLI(t, d.cli(t, `"$JOBFS" stop hello`), 127, "no active run")
		wantCLI(t, d.cli(t, `"$JOBFS" stop hello 1`), 126, "has already ended (COMPLETED)")
		wantCLI(t, d.cli(t, `"$JOBFS" logs ../etc`), 2, "is not a job")
		wantCLI(t, d.cli(t, `"$JOBFS" wait hello x`), 2, "is not a run id")
		wantCLI(t, d.cli(t, `"$JOBFS" ps --bogus`), 2, "flag provided but not defined")
	})

	t.Run("logs -f follows until the end, stop, wait", func(t *testing.T) {
		id := strings.TrimSpace(d.cli(t, `"$JOBFS" run loop < /dev/null`).out)
		d.waitStatus(t, "loop", 1, "RUNNING")
		live := logsStartBG(t, d.dir, d.bin, "logs", "-f", "--mount", d.mnt, "loop")
		waitFor(t, "jobfs logs -f to print a live line", func() bool { return strings.Contains(live.stdout(), "tick\n") })
		if live.exited() {
			t.Fatalf("jobfs logs -f ended while the run is active: %q", live.stdout())
		}
		if r := d.cli(t, `"$JOBFS" stop loop`); r.code != 0 || r.out != id+"\n" {
			t.Fatalf("want exit 0 and the id of the active run %s:\n%s", id, r)
		}
		live.wait(t, runTimeout)
		if live.code() != 0 {
			t.Errorf("jobfs logs -f exited %d: %s", live.code(), live.stderr())
		}
		if st := strings.TrimSpace(d.cat(t, "mnt/loop/runs/1/status")); st != "CANCELLED" {
			t.Errorf("jobfs logs -f ended while the run is %s, want CANCELLED", st)
		}
		if got, log := live.stdout(), d.cat(t, "mnt/loop/runs/1/log"); got != log {
			t.Errorf("jobfs logs -f printed %q, the log is %q", got, log)
		}
		if r := d.cli(t, `"$JOBFS" wait loop 1`); r.code != 143 || r.out != "CANCELLED\n" {
			t.Errorf("want exit 143 (SIGTERM) and CANCELLED:\n%s", r)
		}
		// kill: SIGKILL, 137; wait blocks until the end.
		d.cli(t, `"$JOBFS" run loop < /dev/null`)
		d.waitStatus(t, "loop", 2, "RUNNING")
		r := d.cli(t, `"$JOBFS" wait loop 2 & sleep 0.2; "$JOBFS" kill loop 2 >/dev/null; wait $!`)
		if r.code != 137 || r.out != "CANCELLED\n" {
			t.Errorf("want exit 137 (SIGKILL) and CANCELLED:\n%s", r)
		}
		if r := d.cli(t, `"$JOBFS" logs loop 2`); r.code != 0 || !strings.HasPrefix(r.out, "tick\n") {
			t.Errorf("want the log of run 2:\n%s", r)
		}
	})

	t.Run("ps", func(t *testing.T) {
		out := d.cli(t, `"$JOBFS" ps`).out
		t.Logf("jobfs ps:\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1+len(cliScripts)+1 || !strings.HasPrefix(lines[0], "JOB ") {
			t.Fatalf("want a header and one line per job:\n%s", out)
		}
		want := map[string][]string{
			"never": {"-", "never-ran", "-"},
			"fails": {"1", "FAILED", "3"},
			"slow":  {"1", "TIMEOUT", "124"},
			"loop":  {"2", "CANCELLED", "137"},
			"hello": {"3", "COMPLETED", "0"},
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if w, ok := want[f[0]]; !ok || strings.Join(f[1:4], " ") != strings.Join(w, " ") {
				t.Errorf("jobfs ps line %q, want %s %v", l, f[0], w)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		for _, cmd := range []string{"run", "ps", "logs", "stop", "kill", "wait"} {
			r := d.cli(t, `"$JOBFS" `+cmd+` --help`)
			if r.code != 0 || !strings.HasPrefix(r.out, "Usage: jobfs "+cmd) || !strings.Contains(r.out, "127 ") {
				t.Errorf("jobfs %s --help: want exit 0, its usage and the exit codes on stdout:\n%s", cmd, r)
			}
		}
		if out := d.cli(t, `"$JOBFS" help`).out; !strings.Contains(out, "jobfs run [--wait] JOB") {
			t.Errorf("jobfs help does not name the client's commands:\n%s", out)
		}
	})
}

// TestCLIMount: the client finds the only fuse.jobfs mount, and refuses
// with the way out when there are none or several (in a mount namespace of
// its own where every other jobfs mount is unmounted: other tests' mounts
// stay untouched), or when --mount is not a jobfs mount.
func TestCLIMount(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("unshare (util-linux) is needed: %v", err)
	}
	d.ok(t, `mkdir mnt/a mnt2`)
	script := `unshare -m --propagation private /bin/bash -c '
		awk '\''{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "fuse.jobfs") print $5; break }}'\'' /proc/self/mountinfo |
		while read -r m; do [ "$m" = "$MNT" ] || umount -l "$m"; done
		"$JOBFS" ps; echo "one: $?"
		mount --bind mnt mnt2
		"$JOBFS" ps; echo "two: $?"
		umount mnt2; umount -l mnt
		"$JOBFS" ps; echo "none: $?"
	'`
	r := d.sh(t, script, "JOBFS="+d.bin, "MNT="+d.mnt)
	if !strings.Contains(r.out, "JOB ") || !strings.Contains(r.out, "\na ") || !strings.Contains(r.out, "one: 0") {
		t.Errorf("the only jobfs mount was not used:\n%s", r)
	}
	for _, want := range []string{"two: 125", "none: 125", "2 jobfs mounts (" + d.mnt + ", " + d.dir + "/mnt2), none of them holding the working folder", "choose one with --mount DIR", "no jobfs mount in /proc/self/mountinfo"} {
		if !strings.Contains(r.out+r.err, want) {
			t.Errorf("want %q:\n%s", want, r)
		}
	}
	wantCLI(t, d.sh(t, `"$JOBFS" ps --mount state`, "JOBFS="+d.bin), 125, "--mount state is not a jobfs mount")
	wantCLI(t, d.sh(t, `JOBFS_MOUNT=repos "$JOBFS" ps`, "JOBFS="+d.bin), 125, "$JOBFS_MOUNT repos is not a jobfs mount")
	if out := d.ok(t, `JOBFS_MOUNT=/nowhere "$JOBFS" ps --mount mnt`, "JOBFS="+d.bin); !strings.Contains(out, "\na ") {
		t.Errorf("--mount did not win over $JOBFS_MOUNT:\n%s", out)
	}
}

// TestCLIShared: on an --allow-other mount the client acts with the
// caller's rights: ps lists a user's own jobs and those shared with them,
// not the others; a runner runs and waits on a shared job, a viewer is
// refused (126), an unshared job is no such job (127); root sees all.
func TestCLIShared(t *testing.T) {
	shareSkip(t)
	t.Parallel()
	users, _ := shareUsers(t, 2, false)
	alice, bob := shareAs(users[0]), shareAs(users[1])
	d := shareDaemon(t)
	env := []string{"JOBFS=" + d.bin, "JOBFS_MOUNT=" + d.mnt, "B=" + users[1].name}
	for _, job := range []string{"etl", "report", "private"} {
		alice.ok(t, d, `mkdir mnt/$J && echo script > mnt/$J/config/type && printf '#!/bin/sh\necho "as $(id -un)"\nexit 5\n' > mnt/$J/config/script`, append(env, "J="+job)...)
	}
	alice.ok(t, d, `echo runner > "mnt/etl/shared/@$B" && touch "mnt/report/shared/@$B"`, env...)
	bob.ok(t, d, `mkdir mnt/own`, env...)

	out := bob.ok(t, d, `"$JOBFS" ps | awk 'NR > 1 {print $1, $3}' | sort`, env...)
	want := fmt.Sprintf("@%[1]s/etl never-ran\n@%[1]s/report never-ran\nown never-ran\n", users[0].name)
	if out != want {
		t.Errorf("bob's jobfs ps lists\n%s\nwant\n%s", out, want)
	}
	etl := "@" + users[0].name + "/etl"
	r := bob.run(t, d, `id=$("$JOBFS" run "$E" < /dev/null) && "$JOBFS" wait "$E" "$id"`, append(env, "E="+etl)...)
	if r.code != 5 || r.out != "FAILED\n" {
		t.Errorf("bob's run of %s: want exit 5 and FAILED:\n%s", etl, r)
	}
	if log := bob.ok(t, d, `"$JOBFS" logs "$E"`, append(env, "E="+etl)...); !strings.HasPrefix(log, "as "+users[0].name+"\n") {
		t.Errorf("jobfs logs %s = %q, want the run of alice's step", etl, log)
	}
	r = bob.run(t, d, `"$JOBFS" run "@$A/report" < /dev/null`, append(env, "A="+users[0].name)...)
	wantCLI(t, r, 126, "refused: permission denied")
	r = bob.run(t, d, `"$JOBFS" run "@$A/private" < /dev/null`, append(env, "A="+users[0].name)...)
	wantCLI(t, r, 127, "no such job")
	wantCLI(t, bob.run(t, d, `"$JOBFS" logs "@$A/private"`, append(env, "A="+users[0].name)...), 127, "no such job")

	out = alice.ok(t, d, `"$JOBFS" ps | awk 'NR > 1 {print $1, $2, $3, $4}' | sort`, env...)
	if out != "etl 1 FAILED 5\nprivate - never-ran -\nreport - never-ran -\n" {
		t.Errorf("alice's jobfs ps:\n%s", out)
	}
	out = shareRoot.ok(t, d, `"$JOBFS" ps | awk 'NR > 1 {print $1}' | sort`, env...)
	all := []string{"@" + users[0].name + "/etl", "@" + users[0].name + "/private", "@" + users[0].name + "/report", "@" + users[1].name + "/own"}
	slices.Sort(all)
	if want = strings.Join(all, "\n") + "\n"; out != want {
		t.Errorf("root's jobfs ps lists\n%s\nwant\n%s", out, want)
	}
}

// TestCLIDaemonStops: jobfs run --wait whose daemon stops while the run
// goes on (runs outlive the daemon, its default) prints what the log held
// and exits 125 with the reason, not the run's code or "no such run"; the
// next daemon's wait gives the run's end. With --stop-runs-on-exit the
// stop ends the run first: it exits with the run's code, its end told, or
// 125 when the unmount came before its last read.
func TestCLIDaemonStops(t *testing.T) {
	t.Parallel()
	t.Run("outlive", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t, daemonOpts{outlive: true})
		d.scriptJob(t, "ticks", "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10; do echo tick; sleep 0.2; done\n")
		live := logsStartBG(t, d.dir, d.bin, "run", "--wait", "--mount", d.mnt, "ticks")
		waitFor(t, "jobfs run --wait to print a live line", func() bool { return strings.Contains(live.stdout(), "tick\n") })
		if code := d.stop(t); code != 0 {
			t.Errorf("jobfs mount exited %d on SIGTERM", code)
		}
		live.wait(t, runTimeout)
		if live.code() != 125 || !strings.Contains(live.stderr(), "the daemon stopped before the run ended") {
			t.Errorf("jobfs run --wait: exit %d, stderr %q; want 125 and the daemon stopped", live.code(), live.stderr())
		}
		d.restart(t)
		if st := d.waitRun(t, "ticks", 1); st != "COMPLETED" {
			t.Errorf("run 1 ended %s after the restart, want COMPLETED", st)
		}
	})
	t.Run("stop-runs-on-exit", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t, daemonOpts{})
		d.scriptJob(t, "loop", cliScripts["loop"])
		live := logsStartBG(t, d.dir, d.bin, "run", "--wait", "--mount", d.mnt, "loop")
		waitFor(t, "jobfs run --wait to print a live line", func() bool { return strings.Contains(live.stdout(), "tick\n") })
		if code := d.stop(t); code != 0 {
			t.Errorf("jobfs mount exited %d on SIGTERM", code)
		}
		live.wait(t, runTimeout)
		// The run's end is told before the unmount, but the command reads
		// its exit code after it: a race it may lose to the unmount.
		ended := live.code() == 143 && strings.Contains(live.stderr(), "FAILED (exit 143)")
		stopped := live.code() == 125 && strings.Contains(live.stderr(), "the daemon stopped before the run ended")
		if !ended && !stopped {
			t.Errorf("jobfs run --wait: exit %d, stderr %q; want 143 and FAILED, or 125 and the daemon stopped", live.code(), live.stderr())
		}
	})
}
