//go:build linux

package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// taTimes stats every path below root: mtime and ctime by path relative
// to root.
func taTimes(t *testing.T, root string) map[string][2]time.Time {
	t.Helper()
	out := map[string][2]time.Time{}
	for _, rel := range twWalk(t, root) {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, rel), &st); err != nil {
			t.Errorf("lstat %s: %v", rel, err)
			continue
		}
		out[rel] = [2]time.Time{time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())}
	}
	return out
}

// taMtime is the mtime of one path.
func taMtime(t *testing.T, path string) time.Time {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	return time.Unix(st.Mtim.Unix())
}

// coarseTick is the step of the kernel's coarse clock, which stamps files
// on disk.
func coarseTick(t *testing.T) time.Duration {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_REALTIME_COARSE, &ts); err != nil {
		t.Fatalf("clock_getres: %v", err)
	}
	return time.Duration(ts.Nano())
}

// TestTreeTimes: a computed file's mtime is when its content last
// changed, a folder's when an entry was added or removed, ctime follows,
// and a new job shows no time older than its creation (the daemon's start
// time was everywhere): stat before a trigger, after the run's end and
// after a deletion; find -newer and ls -t see the completion.
func TestTreeTimes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	before := time.Now()
	d.scriptJob(t, "j", "#!/bin/sh\necho hi\necho out > \"$2/out.txt\"\n")
	job := filepath.Join(d.mnt, "j")

	s0 := taTimes(t, job)
	created := taMtime(t, job)
	// A job is as old as its oldest file (jobs.CreateJob): input/ is shown
	// from disk, whose times come from the kernel's coarse clock, up to a
	// tick behind time.Now (a run once saw 0.7 ms).
	if floor := before.Add(-coarseTick(t)); created.Before(floor) {
		t.Errorf("a new job shows %v, before its mkdir at %v (less a clock tick: %v)", created, before, floor)
	}
	for rel, ts := range s0 {
		if ts[0].Equal(time.Unix(0, 0)) && (strings.HasPrefix(rel, "config/") || rel == "description" || rel == "name") {
			continue // a setting never written: its default has no time (jobs.SettingFileTime)
		}
		if ts[0].Before(created) {
			t.Errorf("new job: %s has mtime %v, older than the job (%v)", rel, ts[0], created)
		}
		if !ts[1].Equal(ts[0]) {
			t.Errorf("%s: ctime %v, mtime %v", rel, ts[1], ts[0])
		}
	}

	d.trigger(t, "j", `{"n": 1}`)
	d.waitRun(t, "j", 1)
	s1 := taTimes(t, job)
	runs := s1["runs"][0]
	if !runs.After(s0["runs"][0]) {
		t.Errorf("runs/ mtime %v after a run was added, %v before", runs, s0["runs"][0])
	}
	run := func(name string) time.Time { return s1["runs/1/"+name][0] }
	if !run("trigger").Equal(runs) || !s1["data"][0].Equal(runs) || !s1["runs/latest"][0].Equal(runs) {
		t.Errorf("runs/ %v, runs/1/trigger %v, data %v, runs/latest %v: want one time, the run's queueing",
			runs, run("trigger"), s1["data"][0], s1["runs/latest"][0])
	}
	end := run("status")
	for _, name := range []string{"ended_at", "exit_code", "error"} {
		if !run(name).Equal(end) {
			t.Errorf("runs/1/%s mtime %v, status %v: both changed at the run's end", name, run(name), end)
		}
	}
	if !run("started_at").After(run("trigger")) || !end.After(run("started_at")) {
		t.Errorf("queued %v, started %v, ended %v: want increasing", run("trigger"), run("started_at"), end)
	}
	for rel, ts := range s1 {
		if ts[0].After(end) && !strings.HasSuffix(rel, "log") {
			t.Errorf("%s: mtime %v, after the run ended (%v)", rel, ts[0], end)
		}
	}
	// The tools a person points at the folder see the completion: ref is
	// as new as the newest node before the trigger.
	var last time.Time
	for _, ts := range s0 {
		if ts[0].After(last) {
			last = ts[0]
		}
	}
	d.ok(t, `touch -d "@$T" ref`, "T="+fmt.Sprintf("%d.%09d", last.Unix(), last.Nanosecond()))
	newer := d.ok(t, `cd mnt/j && find . -newer ../../ref | sort`)
	for _, want := range []string{"./data", "./runs", "./runs/1/status", "./runs/1/exit_code", "./runs/latest"} {
		if !strings.Contains(newer, want+"\n") {
			t.Errorf("find -newer (a time before the run) misses %s:\n%s", want, newer)
		}
	}
	if strings.Contains(newer, "./config/type\n") || strings.Contains(newer, "./shortname\n") {
		t.Errorf("find -newer lists files that did not change:\n%s", newer)
	}
	first := strings.SplitN(d.ok(t, `ls -t mnt/j/runs/1`), "\n", 2)[0]
	if !strings.Contains(" duration ended_at error exit_code status status.json usage ", " "+first+" ") {
		t.Errorf("ls -t runs/1 starts with %q, want a file written at the end", first)
	}

	// A deletion changes runs/ again.
	d.trigger(t, "j", `{"n": 2}`)
	d.waitRun(t, "j", 2)
	at2 := taMtime(t, filepath.Join(job, "runs"))
	d.ok(t, `rm -r mnt/j/runs/1`)
	if after := taMtime(t, filepath.Join(job, "runs")); !after.After(at2) {
		t.Errorf("runs/ mtime %v after run 1 was deleted, %v before", after, at2)
	}
	// The job folder gains and loses an editor's temporary file; its mv
	// over description changes it again.
	jobBefore := taMtime(t, job)
	d.ok(t, `printf 'about\n' > mnt/j/.description.tmp`)
	withTemp := taMtime(t, job)
	d.ok(t, `mv mnt/j/.description.tmp mnt/j/description`)
	if after := taMtime(t, job); !withTemp.After(jobBefore) || !after.After(withTemp) {
		t.Errorf("job folder mtime %v, %v with a temporary file, %v after its mv: want increasing", jobBefore, withTemp, after)
	}
	d.wantFile(t, "mnt/j/description", "about\n")

	// A setting's time, and config/ with it; a secret added dates env/.
	script := taMtime(t, filepath.Join(job, "config/script"))
	d.ok(t, `echo 10m > mnt/j/config/timeout && printf v4lue > mnt/j/config/env/k && touch mnt/j/shared/public`)
	for _, p := range []string{"config/timeout", "config", "config/env", "config/env/k", "shared", "shared/public"} {
		if m := taMtime(t, filepath.Join(job, p)); !m.After(script) {
			t.Errorf("%s: mtime %v, not after the change (script was set at %v)", p, m, script)
		}
	}
}

// TestTreeOwnersAndModes: on an --allow-other mount the owner's job shows
// the owner's uid and gid; the modes say what the person looking may do,
// and test -w (access(2)) agrees with what a write does: for the owner,
// for a viewer, for a runner and for root.
func TestTreeOwnersAndModes(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := shareAs(users[0]), shareAs(users[1])
	d := shareDaemon(t)
	alice.job(t, d, "etl", shareScript("1"))
	alice.ok(t, d, `echo '{}' > mnt/etl/data && printf v4lue > mnt/etl/config/env/tok && echo staged > mnt/etl/input/f.txt`)
	waitFor(t, "run 1 of alice's etl", func() bool {
		return strings.TrimSpace(alice.run(t, d, `cat mnt/etl/runs/1/status`).out) == "COMPLETED"
	})

	ids := users[0].uid + " " + users[0].gid
	lines := alice.ok(t, d, `ls -ln mnt/etl mnt/etl/config mnt/etl/runs/1 | awk 'NF > 4 { print $3, $4, $NF }'`)
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		if !strings.HasPrefix(l, ids+" ") {
			t.Errorf("ls -ln as the owner: %q, want uid and gid %s", l, ids)
		}
	}
	modes := func(w shareWho, job string) string {
		return w.ok(t, d, `cd "$J" && stat -c '%a %u %n' config/script data runs runs/1/status runs/1/ctl input input/f.txt config/env`, "J="+job)
	}
	u := users[0].uid
	want := func(m ...string) string {
		names := []string{"config/script", "data", "runs", "runs/1/status", "runs/1/ctl", "input", "input/f.txt", "config/env"}
		var b strings.Builder
		for i, n := range names {
			fmt.Fprintf(&b, "%s %s %s\n", m[i], u, n)
		}
		return b.String()
	}
	if got, w := modes(alice, "mnt/etl"), want("644", "644", "755", "444", "644", "755", "644", "755"); got != w {
		t.Errorf("modes as the owner:\n%s\nwant\n%s", got, w)
	}
	alice.check(t, d, nil,
		shareDo(`test -w mnt/etl/config/script && test -w mnt/etl/data && test -w mnt/etl/runs/1/ctl`),
		shareDo(`! test -w mnt/etl/runs/1/status && ! test -w mnt/etl/log && ! test -w mnt/etl/runs/1/output`),
		shareDo(`test -w mnt && test -w mnt/etl && test -w mnt/etl/input`),
	)
	shareRoot.check(t, d, nil,
		shareDo(`P=mnt/@`+users[0].name+`/etl; test -w $P/config/script && ! test -w $P/runs/1/status && ! test -w $P/runs/1/exit_code`),
		shareErr(`echo x > mnt/@`+users[0].name+`/etl/runs/1/status`, "Permission denied"),
		shareDo(`test -w mnt/@`+users[0].name), // root may delete a job there
	)

	alice.ok(t, d, `touch mnt/etl/shared/@`+users[1].name)
	if got, w := modes(bob, "mnt/@"+users[0].name+"/etl"), want("644", "644", "755", "444", "644", "755", "644", "755"); got != w {
		t.Errorf("modes as a viewer (owner bits: the owner's; the others': the viewer's):\n%s\nwant\n%s", got, w)
	}
	p := "mnt/@" + users[0].name + "/etl"
	bob.check(t, d, nil,
		shareDo(`! test -w `+p+`/config/script && ! test -w `+p+`/data && ! test -w `+p+`/runs/1/ctl && ! test -w `+p+`/input`),
		shareDo(`test -r `+p+`/config/script && test -x `+p+`/runs`),
		shareErr(`echo 5m > `+p+`/config/timeout`, "Permission denied"),
		shareErr(`echo '{}' > `+p+`/data`, "Permission denied"),
		shareDo(`test -w mnt && ! test -w mnt/@`+users[0].name),
		// What a viewer is listed, a viewer can stat: no phantom names.
		shareDo(`find mnt > /dev/null && du -s `+p+` > /dev/null`),
		shareDo(`! ls -laR mnt/ | grep -F '??????'`),
	)
	began := time.Now()
	n := strings.Count(bob.ok(t, d, `find mnt -ls`), "\n")
	t.Logf("a viewer's find -ls over %d paths: %v with runuser (measured, not a bound)", n, time.Since(began))
	alice.ok(t, d, `echo runner > mnt/etl/shared/@`+users[1].name)
	if got, w := modes(bob, "mnt/@"+users[0].name+"/etl"), want("644", "666", "755", "444", "666", "777", "666", "755"); got != w {
		t.Errorf("modes as a runner:\n%s\nwant\n%s", got, w)
	}
	bob.check(t, d, nil,
		shareDo(`test -w `+p+`/data && test -w `+p+`/runs/1/ctl && test -w `+p+`/input`),
		shareDo(`! test -w `+p+`/config/script && ! test -w `+p+`/runs/1/status`),
		shareErr(`echo 5m > `+p+`/config/timeout`, "Permission denied"),
	)
	if got := strings.TrimSpace(bob.ok(t, d, `stat -c '%u %g' mnt`)); got != users[1].uid+" "+users[1].gid {
		t.Errorf("the top folder as bob (his own namespace): %q, want %s %s", got, users[1].uid, users[1].gid)
	}
}

// TestTreeStatfs: statfs answers the same on every node (the state
// folder's filesystem) with NAME_MAX 255; below the root it answered
// zeros and a name length of 0.
func TestTreeStatfs(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "j", "#!/bin/sh\necho hi > \"$2/o.txt\"\n")
	d.trigger(t, "j", `{}`)
	d.waitRun(t, "j", 1)
	d.ok(t, `printf v4lue > mnt/j/config/env/k && echo s > mnt/j/input/f && touch mnt/j/shared/public`)
	want := d.ok(t, `stat -f -c '%l %b %c %S' state`)
	out := d.ok(t, `for p in mnt mnt/j mnt/j/config mnt/j/config/type mnt/j/config/env mnt/j/config/env/k mnt/j/data \
mnt/j/input mnt/j/input/f mnt/j/runs mnt/j/runs/latest mnt/j/runs/1 mnt/j/runs/1/status mnt/j/runs/1/output \
mnt/j/runs/1/output/o.txt mnt/j/runs/1/steps mnt/j/runs/1/log mnt/j/runs/1/stream mnt/j/shared/public mnt/j/log; do
  printf '%s: ' "$p"; stat -f -c '%l %b %c %S' "$p" || exit 1
done`)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p, got, _ := strings.Cut(l, ": ")
		if got+"\n" != want {
			t.Errorf("stat -f %s = %q, want %q (the state folder's, NAME_MAX 255)", p, got, strings.TrimSpace(want))
		}
	}
	if !strings.HasPrefix(want, "255 ") {
		t.Errorf("stat -f state = %q: the test expects a name length of 255", want)
	}
}
