//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests of this file check that a job is deleted whole or not at all
// (README "The tree", issue 13): rm -r, rm -rf and mv to another file
// system, on a job with finished runs, settings, a secret, a staged file and
// a share, idle and with a run active; and that a reset by truncation is
// stored before the writer's close returns, also while a run is active.
// Each runs as root on a single-user mount and as a throwaway user on an
// --allow-other mount.

// TestDeleteJobWhole: as root, on a single-user mount.
func TestDeleteJobWhole(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	delCases(t, d, shareRoot, t.TempDir())
}

// TestDeleteJobWholeShared: as a throwaway user on an --allow-other mount.
func TestDeleteJobWholeShared(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	d := shareDaemon(t)
	dest := t.TempDir() // beside the daemon's folder, which shareDaemon opened
	if err := os.Chmod(dest, 0o777); err != nil {
		t.Fatal(err)
	}
	delCases(t, d, shareAs(users[0]), dest)
}

// delScript is the jobs' step: it leaves a file in its output and, given a
// payload with "hold", sleeps until it is stopped.
func delScript(sleep string) string {
	return fmt.Sprintf("#!/bin/sh\necho out > \"$2/out.txt\"\nif grep -q hold \"$1/input.json\"; then exec sleep %s; fi\n", sleep)
}

// delCases runs every case as w; dest is a folder on another file system
// that w may write.
func delCases(t *testing.T, d *daemon, w shareWho, dest string) {
	sleep := sleepArgs()
	hows := []struct{ name, cmd string }{
		{"rm -r", `rm -r "mnt/$J"`},
		{"rm -rf", `rm -rf "mnt/$J"`},
		{"mv out", `mv "mnt/$J" "$DEST/"`},
	}
	for i, how := range hows {
		t.Run(how.name+" idle", func(t *testing.T) {
			job := fmt.Sprintf("idle%d", i)
			secret := how.name != "mv out" // mv cannot copy a secret: see below
			delJob(t, d, w, job, sleep, secret)
			short := strings.TrimSpace(w.ok(t, d, `cat "mnt/$J/shortname"`, "J="+job))
			w.ok(t, d, how.cmd, "J="+job, "DEST="+dest)
			delWantGone(t, d, w, job, short)
			if how.name == "mv out" {
				copied := filepath.Join(dest, job)
				delWantContent(t, filepath.Join(copied, "config/timeout"), "5m\n")
				delWantContent(t, filepath.Join(copied, "runs/2/status"), "COMPLETED\n")
				delWantContent(t, filepath.Join(copied, "runs/2/output/out.txt"), "out\n")
				delRemoveCopy(t, d, w, dest, job)
			}
		})
		t.Run(how.name+" busy", func(t *testing.T) {
			job := fmt.Sprintf("busy%d", i)
			delJob(t, d, w, job, sleep, how.name != "mv out")
			w.ok(t, d, `echo '{"hold": 1}' > "mnt/$J/data"`, "J="+job)
			delWait(t, d, w, job, 3, "RUNNING")
			before := delFacts(t, d, w, job)
			r := w.fails(t, d, how.cmd, "Device or resource busy", "J="+job, "DEST="+dest)
			if strings.Count(r.err, "\n") != 1 {
				t.Errorf("want one line on stderr, for the job folder itself:\n%s", r)
			}
			if after := delFacts(t, d, w, job); after != before {
				t.Errorf("the refused %s changed the job:\nbefore:\n%s\nafter:\n%s", how.name, before, after)
			}
			if log := w.ok(t, d, `tail -n 1 "mnt/$J/log"`, "J="+job); !strings.Contains(log, "delete rejected: ") {
				t.Errorf("last job log line %q, want the refusal: delete rejected: ...", log)
			}
			w.ok(t, d, `echo kill > "mnt/$J/runs/3/ctl"`, "J="+job)
			delWait(t, d, w, job, 3, "CANCELLED")
			w.ok(t, d, `rm -rf "mnt/$J"`, "J="+job)
			delRemoveCopy(t, d, w, dest, job)
		})
	}

	// mv copies first: config/env/* reads as its sealed form (issue 14),
	// so the copy holds no value, and the job is then deleted whole.
	t.Run("mv out with a secret", func(t *testing.T) {
		delJob(t, d, w, "secret", sleep, true)
		w.ok(t, d, `mv mnt/secret "$DEST/"`, "DEST="+dest)
		w.fails(t, d, `ls mnt/secret`, "No such file or directory")
		copied := w.ok(t, d, `cat "$DEST/secret/config/env/token"`, "DEST="+dest)
		if !strings.HasPrefix(copied, "jobfs-sealed:v1:") || strings.Contains(copied, "s3cr3t") {
			t.Errorf("the moved copy of config/env/token = %q, want its sealed form", copied)
		}
		delRemoveCopy(t, d, w, dest, "secret")
	})

	// Removals one at a time act as the README says.
	t.Run("single removals", func(t *testing.T) {
		delJob(t, d, w, "single", sleep, true)
		w.check(t, d, shareEnv("J", "single"),
			shareDo(`rm mnt/$J/config/timeout mnt/$J/description`),
			shareOut(`cat mnt/$J/config/timeout mnt/$J/description`, "1h\n"),
			shareDo(`rm -r mnt/$J/runs/1`),
			shareOut(`ls mnt/$J/runs`, "2\nlatest\n"),
			shareDo(`rm mnt/$J/runs/2/status mnt/$J/log`),
			shareOut(`cat mnt/$J/runs/2/status`, "COMPLETED\n"),
			shareDo(`rm mnt/$J/config/env/token mnt/$J/input/staged.txt mnt/$J/shared/public`),
			shareOut(`ls mnt/$J/config/env; ls mnt/$J/input; ls mnt/$J/shared`, ""),
			shareDo(`rm -rf mnt/$J`),
		)
	})

	t.Run("truncation resets at close", func(t *testing.T) {
		w.ok(t, d, `mkdir mnt/trunc`)
		// 300 times: the reset is there when `: >` returns.
		got := w.ok(t, d, `n=0; for i in $(seq 300); do
			echo 5m > mnt/trunc/config/timeout && : > mnt/trunc/config/timeout || exit 1
			[ "$(cat mnt/trunc/config/timeout)" = 1h ] || n=$((n+1))
		done; echo "$n"`)
		if got != "0\n" {
			t.Errorf("cat after : > config/timeout saw the old value %s times in 300", strings.TrimSpace(got))
		}
		w.ok(t, d, `echo 7m > mnt/trunc/config/timeout && truncate -s 0 mnt/trunc/config/timeout`)
		w.want(t, d, `cat mnt/trunc/config/timeout`, "1h\n")
		// The log line follows once the kernel releases the file, after
		// the writer has closed it.
		delWaitLog(t, d, w, "trunc", "config/timeout reset to its default")
		w.ok(t, d, `rmdir mnt/trunc`)
	})

	// A reset is a write of the default: taken while a run is active, and
	// reported by the shell.
	t.Run("truncation resets during a run", func(t *testing.T) {
		delJob(t, d, w, "during", sleep, false)
		w.ok(t, d, `echo '0 0 1 1 *' > mnt/during/config/schedule && echo '{"hold": 1}' > mnt/during/data`)
		delWait(t, d, w, "during", 3, "RUNNING")
		w.check(t, d, nil,
			shareDo(`: > mnt/during/config/schedule`),
			shareOut(`cat mnt/during/config/schedule; cat mnt/during/next_run`, "\n"),
			shareDo(`truncate -s 0 mnt/during/config/timeout`),
			shareOut(`cat mnt/during/config/timeout`, "1h\n"),
			shareDo(`echo 5m > mnt/during/config/timeout && rm mnt/during/config/timeout`),
			shareOut(`cat mnt/during/config/timeout`, "1h\n"),
		)
		delWaitLog(t, d, w, "during", "config/schedule reset to its default")
		w.ok(t, d, `echo kill > mnt/during/runs/3/ctl`)
		delWait(t, d, w, "during", 3, "CANCELLED")
		w.ok(t, d, `rm -rf mnt/during`)
	})

	// A run triggered right after `: > config/timeout` runs with the
	// default: with the old 300ms it would time out.
	t.Run("a run right after a reset", func(t *testing.T) {
		w.job(t, d, "timeout", "#!/bin/sh\nsleep 1\n")
		w.ok(t, d, `echo 300ms > mnt/timeout/config/timeout && echo '{}' > mnt/timeout/data`)
		if got := delWait(t, d, w, "timeout", 1, terminal...); got != "TIMEOUT" {
			t.Fatalf("run 1 with config/timeout 300ms ended %s, want TIMEOUT", got)
		}
		for id := 2; id <= 11; id++ {
			w.ok(t, d, `echo 300ms > mnt/timeout/config/timeout && : > mnt/timeout/config/timeout && echo '{}' > mnt/timeout/data`)
			if got := delWait(t, d, w, "timeout", id, terminal...); got != "COMPLETED" {
				t.Errorf("run %d, triggered right after : > config/timeout, ended %s, want COMPLETED", id, got)
			}
		}
		w.ok(t, d, `rm -rf mnt/timeout`)
	})
}

// delJob makes job name of w: a script job with runs 1 and 2 finished,
// config/timeout 5m, a description, a staged input file, a public share
// and, when secret, config/env/token.
func delJob(t *testing.T, d *daemon, w shareWho, name, sleep string, secret bool) {
	t.Helper()
	w.job(t, d, name, delScript(sleep))
	w.ok(t, d, `cd "mnt/$J" && echo 5m > config/timeout && echo kept > description &&
		echo '{}' > data && echo '{}' > data && touch shared/public`, "J="+name)
	delWait(t, d, w, name, 1, "COMPLETED")
	delWait(t, d, w, name, 2, "COMPLETED")
	// Staged after the runs, which took what was staged before them.
	w.ok(t, d, `echo staged > "mnt/$J/input/staged.txt"`, "J="+name)
	if secret {
		w.ok(t, d, `printf s3cr3tvalue > "mnt/$J/config/env/token"`, "J="+name)
	}
}

// delWait polls runs/<id>/status of w's job until it is one of want.
func delWait(t *testing.T, d *daemon, w shareWho, job string, id int, want ...string) string {
	t.Helper()
	var last string
	ok := eventually(runTimeout, func() bool {
		last = strings.TrimSpace(w.run(t, d, fmt.Sprintf(`cat "mnt/$J/runs/%d/status"`, id), "J="+job).out)
		for _, s := range want {
			if last == s {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("%s run %d: still %q after %v, want one of %v", job, id, last, runTimeout, want)
	}
	return last
}

// delWaitLog waits for a line of w's job log that ends with want.
func delWaitLog(t *testing.T, d *daemon, w shareWho, job, want string) {
	t.Helper()
	waitFor(t, job+" log line ..."+want, func() bool {
		return strings.Contains(w.ok(t, d, `cat "mnt/$J/log"`, "J="+job), want+"\n")
	})
}

// delFacts is what a person sees of a job: settings, runs and their output,
// secrets, staged files, shares.
func delFacts(t *testing.T, d *daemon, w shareWho, job string) string {
	t.Helper()
	return w.ok(t, d, `cd "mnt/$J" || exit 1
		for f in config/type config/script config/timeout description shortname; do
			echo "$f: $(cat $f)"
		done
		echo "runs: $(ls runs)"
		for r in $(ls runs); do
			[ "$r" = latest ] || echo "run $r: $(cat runs/$r/status) $(cat runs/$r/output/out.txt)"
		done
		echo "latest: $(readlink runs/latest)"
		echo "env: $(ls config/env)"
		echo "input: $(ls input) $(cat input/staged.txt)"
		echo "shared: $(ls shared)"`, "J="+job)
}

// delWantGone checks that w's job is wholly deleted: the name is free, its
// folder in the state folder is gone, and mkdir of the name makes a fresh
// job.
func delWantGone(t *testing.T, d *daemon, w shareWho, job, short string) {
	t.Helper()
	if out := w.ok(t, d, `ls mnt`); strings.Contains("\n"+out, "\n"+job+"\n") {
		t.Errorf("ls mnt = %q: %s is still there", out, job)
	}
	if _, err := os.Stat(filepath.Join(d.state, "jobs", short)); !os.IsNotExist(err) {
		t.Errorf("the job's state folder jobs/%s: %v, want it gone", short, err)
	}
	w.check(t, d, shareEnv("J", job),
		shareDo(`mkdir mnt/$J`),
		shareOut(`cat mnt/$J/config/timeout mnt/$J/description`, "1h\n"),
		shareOut(`ls mnt/$J/runs; ls mnt/$J/config/env; ls mnt/$J/input; ls mnt/$J/shared`, ""),
		shareDo(`[ "$(cat mnt/$J/shortname)" != `+short+` ]`),
		shareDo(`rmdir mnt/$J`),
	)
}

// delRemoveCopy removes what mv copied of job to dest: its run folders
// were copied read-only, as the mount shows them.
func delRemoveCopy(t *testing.T, d *daemon, w shareWho, dest, job string) {
	t.Helper()
	w.ok(t, d, `if [ -e "$DEST/$J" ]; then chmod -R u+w "$DEST/$J" && rm -rf "$DEST/$J"; fi`, "J="+job, "DEST="+dest)
}

// delWantContent checks a file of the copy mv made.
func delWantContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s = %q, %v; want %q", path, b, err, want)
	}
}
