//go:build linux

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reliability tests of issue 8: crash, load and abuse. The slow ones
// (TestCrashSoak, TestLeakSoak) run only with JOBFS_SOAK=1 (make soak).

// relStopped is the error of a run that was active when the daemon died.
const relStopped = "jobfs stopped while the run was active"

// relSoak skips t unless JOBFS_SOAK is set.
func relSoak(t *testing.T) {
	t.Helper()
	if os.Getenv("JOBFS_SOAK") == "" {
		t.Skip("soak test: set JOBFS_SOAK=1 (make soak)")
	}
}

// relRead reads a file below the mount directly (no shell): fast enough to
// poll hundreds of runs.
func relRead(d *daemon, rel string) (string, error) {
	b, err := os.ReadFile(filepath.Join(d.mnt, rel))
	return string(b), err
}

// relList lists a folder below the mount, sorted.
func relList(d *daemon, rel string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(d.mnt, rel))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, err
}

// relRunIDs returns the run ids listed in runs/ of job, sorted.
func relRunIDs(t *testing.T, d *daemon, job string) []int {
	t.Helper()
	names, err := relList(d, job+"/runs")
	if err != nil {
		t.Fatalf("ls %s/runs: %v", job, err)
	}
	var ids []int
	for _, n := range names {
		if n == "latest" {
			continue
		}
		id, err := strconv.Atoi(n)
		if err != nil {
			t.Errorf("ls %s/runs lists %q", job, n)
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// relDense fails t unless ids are exactly 1..n.
func relDense(t *testing.T, what string, ids []int, n int) {
	t.Helper()
	if len(ids) != n {
		t.Errorf("%s: %d run ids, want %d: %v", what, len(ids), n, relShort(ids))
		return
	}
	for i, id := range ids {
		if id != i+1 {
			t.Errorf("%s: run ids %v are not 1..%d", what, relShort(ids), n)
			return
		}
	}
}

func relShort(ids []int) string {
	if len(ids) > 12 {
		return fmt.Sprintf("%v ... %v", ids[:6], ids[len(ids)-6:])
	}
	return fmt.Sprint(ids)
}

// relWaitStatus polls runs/<id>/status until it is one of want and returns
// it; it fails t after limit.
func relWaitStatus(t *testing.T, d *daemon, job string, id int, limit time.Duration, want ...string) string {
	t.Helper()
	var last string
	ok := eventually(limit, func() bool {
		s, err := relRead(d, fmt.Sprintf("%s/runs/%d/status", job, id))
		last = strings.TrimSpace(s)
		return err == nil && slices.Contains(want, last)
	})
	if !ok {
		t.Fatalf("%s run %d: status %q after %v, want one of %v", job, id, last, limit, want)
	}
	return last
}

// relCheckBolt opens the state's bbolt file read-only (no daemon may hold
// it) and runs bbolt's consistency check.
func relCheckBolt(t *testing.T, d *daemon) {
	t.Helper()
	path := filepath.Join(d.state, "jobfs.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s read-only: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		t.Errorf("bbolt check of %s: %v", path, err)
	}
}

// relSnapshot reads every setting and listing of job through the mount (not
// the event log, which grows): what must survive a crash or a refused
// input unchanged.
func relSnapshot(t *testing.T, d *daemon, job string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	read := func(rel string) {
		s, err := relRead(d, job+"/"+rel)
		if err != nil {
			s = "error: " + err.Error()
		}
		snap[rel] = s
	}
	list := func(rel string) {
		names, err := relList(d, job+"/"+rel)
		s := strings.Join(names, " ")
		if err != nil {
			s += " error: " + err.Error()
		}
		snap["ls "+rel] = s
	}
	for _, f := range []string{
		"config/chains", "config/enabled", "config/keep", "config/limits/cpu", "config/limits/io",
		"config/limits/memory", "config/limits/pids", "config/overlap", "config/schedule", "config/script",
		"config/signatures", "config/timeout", "config/type", "description", "name", "shortname", "next_run",
	} {
		read(f)
	}
	for _, dir := range []string{".", "config", "config/limits", "config/env", "shared", "input", "runs"} {
		list(dir)
	}
	shares, _ := relList(d, job+"/shared")
	for _, s := range shares {
		read("shared/" + s)
	}
	staged, _ := relList(d, job+"/input")
	for _, s := range staged {
		read("input/" + s)
	}
	return snap
}

// relDiff describes how two snapshots differ.
func relDiff(before, after map[string]string) []string {
	var diffs []string
	for k, v := range before {
		if w, ok := after[k]; !ok || w != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q -> %q", k, relClip(v), relClip(w)))
		}
	}
	for k, w := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: (none) -> %q", k, relClip(w)))
		}
	}
	slices.Sort(diffs)
	return diffs
}

func relClip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// relOwnLeftovers lists the processes of d's binary and d's job cgroups,
// except the running daemon itself.
func relOwnLeftovers(d *daemon) []string {
	var out []string
	for pid, cmd := range d.leftovers() {
		if d.running() && pid == d.cmd.Process.Pid {
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", pid, cmd))
	}
	slices.Sort(out)
	return out
}

// relCrashJobs and relCrashRuns make the 50 active runs of the crash test.
const (
	relCrashJobs = 10
	relCrashRuns = 5
)

// relCrashFixture makes relCrashJobs jobs whose runs sleep (each job's
// sleep has arguments of its own, for pgrep), with settings that are not
// the defaults and a secret; it returns the jobs' sleep arguments.
func relCrashFixture(t *testing.T, d *daemon) []string {
	t.Helper()
	sleeps := make([]string, relCrashJobs)
	for j := range sleeps {
		sleeps[j] = sleepArgs()
		job := fmt.Sprintf("crash%d", j)
		d.scriptJob(t, job, fmt.Sprintf("#!/bin/sh\necho started\nsleep %s\n", sleeps[j]))
		d.ok(t, `cd "mnt/$J" && echo 90s > config/timeout && echo 1000 > config/keep && echo 256 > config/limits/memory &&
			echo 50 > config/limits/cpu && echo queue > config/overlap && echo '0 0 1 1 *' > config/schedule &&
			printf 'crash job %s\nsecond line\n' "$J" > description && echo "Crash $J" > name &&
			printf 's3cret-%s' "$J" > config/env/token && touch shared/public`, "J="+job)
	}
	return sleeps
}

// relCrashOnce triggers relCrashRuns runs of every crash job at once and
// kills the daemon with SIGKILL: once all runs are RUNNING with their
// sleeps up when at is negative, else at after the first trigger, writes
// still in flight. It returns how many triggers of each job succeeded.
func relCrashOnce(t *testing.T, d *daemon, sleeps []string, at time.Duration) []int {
	t.Helper()
	ok := make([]int, relCrashJobs)
	var wg sync.WaitGroup
	for j := 0; j < relCrashJobs; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := filepath.Join(d.mnt, fmt.Sprintf("crash%d", j), "data")
			for k := 0; k < relCrashRuns; k++ {
				if os.WriteFile(data, []byte("{}\n"), 0o644) == nil {
					ok[j]++
				}
			}
		}()
	}
	if at >= 0 {
		time.Sleep(at)
		d.kill9(t)
		wg.Wait()
		return ok
	}
	wg.Wait()
	for j := 0; j < relCrashJobs; j++ {
		if ok[j] != relCrashRuns {
			t.Fatalf("crash%d: %d of %d triggers succeeded", j, ok[j], relCrashRuns)
		}
	}
	waitFor(t, "all 50 runs RUNNING with their sleeps", func() bool {
		for j := 0; j < relCrashJobs; j++ {
			ids, _ := relList(d, fmt.Sprintf("crash%d/runs", j))
			for _, id := range ids {
				if id == "latest" {
					continue
				}
				if s, _ := relRead(d, fmt.Sprintf("crash%d/runs/%s/status", j, id)); s != "RUNNING\n" {
					return false
				}
			}
			if r := d.sh(t, `pgrep -f "[s]leep $A" | wc -l`, "A="+sleeps[j]); strings.TrimSpace(r.out) != strconv.Itoa(relCrashRuns) {
				return false
			}
		}
		return true
	})
	d.kill9(t)
	return ok
}

// relAfterCrash checks the state a SIGKILL left and the recovery: the
// bbolt file is consistent as the crash left it, the next mount recovers
// the stale mount, every job and setting is as before, every run that was
// triggered (with success) exists, ids are dense, none is left RUNNING or
// PENDING (all FAILED, jobfs stopped ...) and no process of them lives.
func relAfterCrash(t *testing.T, d *daemon, sleeps []string, before map[string]map[string]string, total []int, iter int) {
	t.Helper()
	relCheckBolt(t, d)
	// A dead FUSE connection: ENOTCONN, or ECONNABORTED for a request
	// that was queued when the connection was aborted.
	if r := d.sh(t, `ls mnt`); r.code == 0 || !strings.Contains(r.err, "Transport endpoint is not connected") &&
		!strings.Contains(r.err, "Software caused connection abort") {
		t.Errorf("after kill -9, want a stale mount:\n%s", r)
	}
	d.restart(t)
	if n := strings.Count(d.out.String(), "recovered the stale mount"); n != iter {
		t.Errorf("the daemon said %d times that it recovered the stale mount, want %d (once per kill -9)", n, iter)
	}
	if got := d.ok(t, `ls mnt`); got != "crash0\ncrash1\ncrash2\ncrash3\ncrash4\ncrash5\ncrash6\ncrash7\ncrash8\ncrash9\nprobe\n" {
		t.Errorf("after recovery, ls mnt = %q", got)
	}
	for j := 0; j < relCrashJobs; j++ {
		job := fmt.Sprintf("crash%d", j)
		after := relSnapshot(t, d, job)
		ids := relRunIDs(t, d, job)
		// The run listing is checked below; every other file is as before.
		delete(after, "ls runs")
		b := maps.Clone(before[job])
		delete(b, "ls runs")
		if diffs := relDiff(b, after); len(diffs) > 0 {
			t.Errorf("%s changed across kill -9 and recovery:\n  %s", job, strings.Join(diffs, "\n  "))
		}
		if len(ids) < total[j] {
			t.Errorf("%s: %d runs listed, but %d triggers succeeded", job, len(ids), total[j])
		}
		relDense(t, job, ids, len(ids))
		for _, id := range ids {
			st, _ := relRead(d, fmt.Sprintf("%s/runs/%d/status", job, id))
			er, _ := relRead(d, fmt.Sprintf("%s/runs/%d/error", job, id))
			if st != "FAILED\n" || er != relStopped+"\n" {
				t.Errorf("%s run %d after recovery: status %q error %q, want FAILED and %q", job, id, st, er, relStopped)
			}
		}
		if p := d.pgrep(t, sleeps[j]); p != "" {
			t.Errorf("%s: processes of runs the crash ended are alive after recovery:\n%s", job, p)
		}
	}
	if left := relOwnLeftovers(d); len(left) > 0 {
		t.Errorf("processes of the killed daemon or its runs are alive after recovery:\n%s", strings.Join(left, "\n"))
	}
}

// relCrashProbe checks that the recovered daemon runs a new run.
func relCrashProbe(t *testing.T, d *daemon, id int) {
	t.Helper()
	d.trigger(t, "probe", "{}")
	if st := relWaitStatus(t, d, "probe", id, runTimeout, terminal...); st != "COMPLETED" {
		t.Errorf("after recovery, probe run %d ended %s, want COMPLETED", id, st)
	}
}

// TestCrash: kill -9 of the daemon while 50 runs are RUNNING, then a new
// mount: see relAfterCrash. After a clean stop the bbolt file is checked
// again.
func TestCrash(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{maxActive: 100})
	sleeps := relCrashFixture(t, d)
	d.scriptJob(t, "probe", "#!/bin/sh\necho probe\n")
	before := map[string]map[string]string{}
	for j := 0; j < relCrashJobs; j++ {
		before[fmt.Sprintf("crash%d", j)] = relSnapshot(t, d, fmt.Sprintf("crash%d", j))
	}
	total := relCrashOnce(t, d, sleeps, -1)
	relAfterCrash(t, d, sleeps, before, total, 1)
	relCrashProbe(t, d, 1)
	d.stop(t)
	relCheckBolt(t, d)
}

// TestCrashSoak: 20 rounds of 50 triggers and a kill -9 at a random moment
// (triggers still being written, runs PENDING, starting or RUNNING), each
// checked as in TestCrash; what a trigger was told succeeded must exist.
func TestCrashSoak(t *testing.T) {
	relSoak(t)
	t.Parallel()
	d := startDaemon(t, daemonOpts{maxActive: 100})
	sleeps := relCrashFixture(t, d)
	d.scriptJob(t, "probe", "#!/bin/sh\necho probe\n")
	before := map[string]map[string]string{}
	for j := 0; j < relCrashJobs; j++ {
		before[fmt.Sprintf("crash%d", j)] = relSnapshot(t, d, fmt.Sprintf("crash%d", j))
	}
	total := make([]int, relCrashJobs)
	for iter := 1; iter <= 20 && !t.Failed(); iter++ {
		at := time.Duration(rand.IntN(4000)) * time.Millisecond
		t.Logf("round %d: kill -9 %v after the first trigger", iter, at)
		ok := relCrashOnce(t, d, sleeps, at)
		for j := range total {
			total[j] += ok[j]
		}
		relAfterCrash(t, d, sleeps, before, total, iter)
		relCrashProbe(t, d, iter)
	}
	d.stop(t)
	relCheckBolt(t, d)
}

// TestLoad: 20 shells each trigger 10 runs at once on one job: 200 runs,
// ids 1..200, each payload in exactly one run, all COMPLETED.
func TestLoad(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "load", "#!/bin/sh\ncat \"$1/input.json\"\n")
	d.ok(t, `echo 1000 > mnt/load/config/keep`)
	r := d.sh(t, `
for s in $(seq 1 20); do
	sh -c 'for i in $(seq 1 10); do
		( printf "{\"shell\": %d, \"i\": %d}\n" "$1" "$i" > mnt/load/data || echo "shell $1: trigger $i failed" >&2 ) &
	done
	wait' sh "$s" &
done
wait`)
	if r.code != 0 || r.err != "" {
		t.Fatalf("20 shells of 10 triggers each:\n%s", r)
	}
	ids := relRunIDs(t, d, "load")
	relDense(t, "load", ids, 200)
	seen := map[[2]int]int{}
	for _, id := range ids {
		if st := relWaitStatus(t, d, "load", id, runTimeout, terminal...); st != "COMPLETED" {
			t.Errorf("run %d ended %s, want COMPLETED", id, st)
		}
		in, err := relRead(d, fmt.Sprintf("load/runs/%d/input/input.json", id))
		var p struct{ Shell, I int }
		if err != nil || json.Unmarshal([]byte(in), &p) != nil {
			t.Errorf("run %d: input.json %q: %v", id, in, err)
			continue
		}
		seen[[2]int{p.Shell, p.I}]++
		if log, _ := relRead(d, fmt.Sprintf("load/runs/%d/log", id)); !strings.Contains(log, strings.TrimSpace(in)) {
			t.Errorf("run %d: log %q does not hold its payload %q", id, log, in)
		}
	}
	for s := 1; s <= 20; s++ {
		for i := 1; i <= 10; i++ {
			if n := seen[[2]int{s, i}]; n != 1 {
				t.Errorf("payload of shell %d trigger %d is in %d runs, want exactly 1", s, i, n)
			}
		}
	}
	if got := d.cat(t, "mnt/load/runs/latest/status"); got != "COMPLETED\n" {
		t.Errorf("runs/latest/status = %q", got)
	}
}

// relAbuse is one bad input of TestAbuse.
type relAbuse struct {
	name   string
	job    string // the job whose log must get the reason; "" for the top of the mount
	cmd    string // run by the shell in the daemon's folder
	errno  string // what the shell must print
	reason string // what the new lines of the job's log must hold ("" with job "": none)
}

// relAbuseCases are the bad inputs. Jobs: abuse (a script job with every
// setting changed from its default, a secret, a share, a staged file and
// a finished run 1), chain (a chains job), busy (run 1 RUNNING), other.
func relAbuseCases() []relAbuse {
	const (
		inval = "Invalid argument"
		big   = "File too large"
		perm  = "Permission denied"
		busy  = "Device or resource busy"
		noent = "No such file or directory"
		exist = "File exists"
	)
	long := strings.Repeat("a", 65)
	c := []relAbuse{
		// Job names, at the top of the mount.
		{"job name with a space", "", `mkdir 'mnt/bad name'`, inval, ""},
		{"job name hidden", "", `mkdir mnt/.hidden`, inval, ""},
		{"job name leading dash", "", `mkdir -- mnt/-lead`, inval, ""},
		{"job name leading underscore", "", `mkdir mnt/_lead`, inval, ""},
		{"job name of 65 bytes", "", `mkdir mnt/` + long, inval, ""},
		{"job name with a tab", "", "mkdir 'mnt/tab\tname'", inval, ""},
		{"job name with @", "", `mkdir mnt/@someone`, inval, ""},
		{"job name not ASCII", "", `mkdir 'mnt/ünïcode'`, inval, ""},
		{"job name with a colon", "", `mkdir mnt/a:b`, inval, ""},
		{"job name taken", "", `mkdir mnt/other`, exist, ""},
		{"file at the top", "", `touch mnt/plainfile`, "Operation not permitted", ""},
		{"rmdir of no job", "", `rmdir mnt/nosuchjob`, noent, ""},
		{"trigger of no job", "", `echo '{}' > mnt/nosuchjob/data`, noent, ""},
		{"upload .. out of the mount's jobs", "", `echo x > mnt/abuse/input/../../escape`, "Operation not permitted", ""},
		// EPERM, not EINVAL: GNU mv words EINVAL from rename(2) as
		// "cannot move ... to a subdirectory of itself".
		{"rename to a bad name", "abuse", `mv mnt/abuse 'mnt/bad name'`, "Operation not permitted", "rename rejected"},
		{"move a job into another", "abuse", `mv mnt/abuse mnt/other/`, "Operation not permitted", "a job folder stays at the top of the mount"},
		{"rename onto a job", "abuse", `mv -T mnt/abuse mnt/other`, "Directory not empty", "rename"},

		// Env names and values.
		{"env name upper case", "abuse", `echo v > mnt/abuse/config/env/TOKEN`, inval, "config/env/TOKEN rejected"},
		{"env name leading digit", "abuse", `echo v > mnt/abuse/config/env/1st`, inval, "config/env/1st rejected"},
		{"env name with a dash", "abuse", `echo v > mnt/abuse/config/env/my-var`, inval, "config/env/my-var rejected"},
		{"env name with a dot", "abuse", `echo v > mnt/abuse/config/env/a.b`, inval, "config/env/a.b rejected"},
		{"env name of 65 bytes", "abuse", `echo v > mnt/abuse/config/env/` + long, inval, "config/env/" + long + " rejected"},
		{"env value over 64 KiB", "abuse", `head -c 70000 /dev/zero | tr '\0' x > mnt/abuse/config/env/bigvalue`, big, "config/env/bigvalue rejected"},

		// Chains.
		{"chains unknown image", "chain", `echo nosuchimage > mnt/chain/config/chains`, inval, "config/chains rejected"},
		{"chains cycle", "chain", `printf 'a <- img\nb <- img\na -> b -> a\n' > mnt/chain/config/chains`, inval, "config/chains rejected"},
		// Errors further lines could cure are found at close: cat reports them.
		{"chains unbound label", "chain", `printf 'a <- img\na -> b\n' > /tmp/jobfs-abuse-v.txt && cat /tmp/jobfs-abuse-v.txt > mnt/chain/config/chains; r=$?; rm -f /tmp/jobfs-abuse-v.txt; exit $r`, inval, "config/chains rejected"},
		{"chains label bound twice", "chain", `printf 'a <- img\na <- img\n' > mnt/chain/config/chains`, inval, "config/chains rejected"},
		{"chains fan-out on a first step", "chain", `printf 'a <- img\nb <- img\n.a -> b\n' > mnt/chain/config/chains`, inval, "config/chains rejected"},
		{"chains garbage", "chain", `printf '%%%% ]]\n' > mnt/chain/config/chains`, inval, "config/chains rejected"},
		{"chains only a comment", "chain", `printf '# nothing\n' > /tmp/jobfs-abuse-v.txt && cat /tmp/jobfs-abuse-v.txt > mnt/chain/config/chains; r=$?; rm -f /tmp/jobfs-abuse-v.txt; exit $r`, inval, "config/chains rejected"},
		{"chains OR dependency", "chain", `printf 'a <- img\nb <- img\nc <- img\na | b -> c\n' > mnt/chain/config/chains`, inval, "config/chains rejected"},
		{"chains unknown owner", "chain", `echo '@no_such_owner_x/img:latest' > mnt/chain/config/chains`, inval, "config/chains rejected"},
		{"chains with a NUL", "chain", `printf 'img\0\n' > mnt/chain/config/chains`, inval, "config/chains rejected"},

		// Cron lines.
		{"cron minute 61", "abuse", `echo '61 * * * *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron four fields", "abuse", `echo '* * * *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron six fields", "abuse", `echo '* * * * * *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron @every 100ms", "abuse", `echo '@every 100ms' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron unknown zone", "abuse", `echo 'TZ=Mars/Olympus * * * * *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron TZ=Local", "abuse", `echo 'TZ=Local 0 9 * * *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron never fires", "abuse", `echo '0 0 30 2 *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron unknown descriptor", "abuse", `echo '@fortnightly' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron step 0", "abuse", `echo '*/0 * * * *' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},
		{"cron two lines", "abuse", `printf '0 9 * * *\n0 10 * * *\n' > mnt/abuse/config/schedule`, inval, "config/schedule rejected"},

		// JSON payloads. A payload refused only at close (incomplete) is
		// written with cp: bash does not report a failed close.
		{"payload not JSON", "abuse", `echo 'not json' > mnt/abuse/data`, inval, "data rejected"},
		{"payload two values", "abuse", `echo '{} {}' > mnt/abuse/data`, inval, "data rejected"},
		{"payload trailing garbage", "abuse", `printf '{"a": 1}x' > mnt/abuse/data`, inval, "data rejected"},
		{"payload not UTF-8", "abuse", `printf '\377\376' > mnt/abuse/data`, inval, "data rejected"},
		{"payload NaN", "abuse", `echo NaN > mnt/abuse/data`, inval, "data rejected"},
		{"payload single quotes", "abuse", `echo "{'a': 1}" > mnt/abuse/data`, inval, "data rejected"},
		{"payload incomplete object", "abuse", `printf '{"a":' > part.json && cp part.json mnt/abuse/data`, inval, "data rejected"},
		{"payload incomplete array", "abuse", `printf '[1, 2' > part.json && cp part.json mnt/abuse/data`, inval, "data rejected"},
		{"payload over 16 MiB", "abuse", `{ printf '"'; head -c 17000000 /dev/zero | tr '\0' a; printf '"\n'; } > part.json && cat part.json > mnt/abuse/data`, big, "data rejected"},
		// One write of more than the cap: the kernel splits it, and its
		// first part was taken (a short count). Python's buffered write
		// retries the rest, os.write returns the count and close says why.
		{"payload over 16 MiB, Python", "abuse", `python3 -c 'open("mnt/abuse/data", "w").write("\"" + "a" * 17000000 + "\"")'`, "[Errno 27] File too large", "data rejected"},
		{"payload over 16 MiB, one os.write", "abuse", `python3 -c '
import os
fd = os.open("mnt/abuse/data", os.O_WRONLY | os.O_TRUNC)
n = os.write(fd, b"\"" + b"a" * 17000000 + b"\"")
print("wrote", n)
os.close(fd)'`, "[Errno 27] File too large", "data rejected"},

		// Limits.
		{"cpu negative", "abuse", `echo -1 > mnt/abuse/config/limits/cpu`, inval, "config/limits/cpu rejected"},
		{"cpu above the machine", "abuse", `echo 100000 > mnt/abuse/config/limits/cpu`, inval, "config/limits/cpu rejected"},
		{"cpu fraction", "abuse", `echo 1.5 > mnt/abuse/config/limits/cpu`, inval, "config/limits/cpu rejected"},
		{"memory not a number", "abuse", `echo lots > mnt/abuse/config/limits/memory`, inval, "config/limits/memory rejected"},
		{"memory above the machine", "abuse", `echo 999999999 > mnt/abuse/config/limits/memory`, inval, "config/limits/memory rejected"},
		{"memory with a unit", "abuse", `echo 512M > mnt/abuse/config/limits/memory`, inval, "config/limits/memory rejected"},
		{"pids too many", "abuse", `echo 4194305 > mnt/abuse/config/limits/pids`, inval, "config/limits/pids rejected"},
		{"io negative", "abuse", `echo -5 > mnt/abuse/config/limits/io`, inval, "config/limits/io rejected"},
		{"io above 1 TiB/s", "abuse", `echo 2199023255552 > mnt/abuse/config/limits/io`, inval, "config/limits/io rejected"},

		// Timeouts.
		{"timeout word", "abuse", `echo forever > mnt/abuse/config/timeout`, inval, "config/timeout rejected"},
		{"timeout negative", "abuse", `echo -5s > mnt/abuse/config/timeout`, inval, "config/timeout rejected"},
		{"timeout zero", "abuse", `echo 0 > mnt/abuse/config/timeout`, inval, "config/timeout rejected"},
		{"timeout over 7 days", "abuse", `echo 200h > mnt/abuse/config/timeout`, inval, "config/timeout rejected"},
		{"timeout in days", "abuse", `echo 2d > mnt/abuse/config/timeout`, inval, "config/timeout rejected"},
		{"timeout two lines", "abuse", `printf '30s\n40s\n' > mnt/abuse/config/timeout`, inval, "config/timeout rejected"},

		// Other settings.
		{"enabled maybe", "abuse", `echo maybe > mnt/abuse/config/enabled`, inval, "config/enabled rejected"},
		{"keep zero", "abuse", `echo 0 > mnt/abuse/config/keep`, inval, "config/keep rejected"},
		{"keep too many", "abuse", `echo 1000001 > mnt/abuse/config/keep`, inval, "config/keep rejected"},
		{"type bogus", "abuse", `echo bogus > mnt/abuse/config/type`, inval, "config/type rejected"},
		{"overlap sometimes", "abuse", `echo sometimes > mnt/abuse/config/overlap`, inval, "config/overlap rejected"},
		{"script without #!", "abuse", `printf 'echo no interpreter\n' > mnt/abuse/config/script`, inval, "config/script rejected"},
		{"display name of 300 bytes", "abuse", `head -c 300 /dev/zero | tr '\0' n > mnt/abuse/name`, inval, "name rejected"},
		{"script of 10 MB", "abuse", `{ echo '#!/bin/sh'; head -c 10000000 /dev/zero | tr '\0' '#'; } > part.json && cat part.json > mnt/abuse/config/script`, big, "config/script rejected"},
		// The same written by a command group: its first command's line
		// is flushed (and stored) when the pipeline's processes close
		// their copies of the fd, before the rest is refused.
		{"script of 10 MB from a command group", "abuse", `{ echo '#!/bin/sh'; head -c 10000000 /dev/zero | tr '\0' '#'; } > mnt/abuse/config/script`, big, "config/script rejected"},
		{"description of 10 MB", "abuse", `head -c 10000000 /dev/zero | tr '\0' d > mnt/abuse/description`, big, "description rejected"},
		// (A file of any other name in config/ is a temporary file since
		// issue 14: config_tempfiles_test.go.)
		{"folder in config", "abuse", `mkdir mnt/abuse/config/sub`, inval, "config/sub rejected"},
		{"folder in a job", "abuse", `mkdir mnt/abuse/sub`, inval, "sub rejected"},
		{"file in a job", "abuse", `echo x > mnt/abuse/stray`, inval, "stray rejected"},
		{"rename of a setting", "abuse", `mv mnt/abuse/config/timeout mnt/abuse/config/other`, "Operation not permitted", "config/timeout rejected"},
		{"rename of description", "abuse", `mv mnt/abuse/description mnt/abuse/desc`, "Operation not permitted", "description rejected"},

		// Shares.
		{"share without @ or +", "abuse", `touch mnt/abuse/shared/bob`, inval, "shared/bob rejected"},
		{"share with no such user", "abuse", `touch mnt/abuse/shared/@no_such_user_x`, inval, "shared/@no_such_user_x rejected"},
		{"share with no such group", "abuse", `touch mnt/abuse/shared/+no_such_group_x`, inval, "shared/+no_such_group_x rejected"},
		{"share novem's user~group", "abuse", `touch 'mnt/abuse/shared/alice~devs'`, inval, "shared/alice~devs rejected"},
		{"share role bogus, existing share", "abuse", `echo owner > mnt/abuse/shared/public`, inval, "shared/public rejected"},
		{"share role bogus, new share", "abuse", `echo admin > mnt/abuse/shared/@daemon`, inval, "shared/@daemon rejected"},
		{"share role of 100 bytes", "abuse", `head -c 100 /dev/zero | tr '\0' r > mnt/abuse/shared/public`, inval, "shared/public rejected"},

		// Uploads.
		{"upload named input.json", "abuse", `echo x > mnt/abuse/input/input.json`, inval, "input/input.json rejected"},
		{"upload a symlink out of input/", "abuse", `ln -s /etc/shadow mnt/abuse/input/shadow`, "Operation not permitted", "input/shadow rejected"},
		{"upload a device", "abuse", `mknod mnt/abuse/input/null c 1 3`, "Operation not permitted", "input/null rejected"},
		{"upload .. into the job", "abuse", `echo x > mnt/abuse/input/../evil`, inval, "evil rejected"},
		{"upload .. into config", "abuse", `cp /etc/hostname mnt/abuse/input/../config/env/Evil`, inval, "config/env/Evil rejected"},
		{"upload renamed to input.json", "abuse", `mv mnt/abuse/input/staged.txt mnt/abuse/input/input.json`, inval, "input/input.json rejected"},

		// Read-only files.
		{"write shortname", "abuse", `echo x > mnt/abuse/shortname`, perm, "shortname"},
		{"write the job log", "abuse", `echo x > mnt/abuse/log`, perm, "log"},
		{"write a run's input", "abuse", `echo x > mnt/abuse/runs/1/input/input.json`, perm, "runs/1/input/input.json"},
		{"write a run's stream", "abuse", `echo x > mnt/abuse/runs/1/stream`, perm, "runs/1/stream"},
		{"ctl bogus", "abuse", `echo bogus > mnt/abuse/runs/1/ctl`, inval, "ctl rejected"},
		{"ctl of no run", "abuse", `echo stop > mnt/abuse/runs/99/ctl`, noent, ""},

		// A job with an active run.
		{"rmdir of a busy job", "busy", `rmdir mnt/busy`, busy, "delete rejected"},
		{"rm -rf of a busy job", "busy", `rm -rf mnt/busy`, busy, "delete rejected"},
		{"delete an active run", "busy", `rmdir mnt/busy/runs/1`, busy, "run 1 rejected"},
		{"delete a secret of a busy job", "busy", `rm mnt/busy/config/env/token`, busy, "config/env/token rejected"},
	}
	return c
}

// TestAbuse: every bad input of relAbuseCases through the mount: the shell
// shows the errno, the job's log gets the reason (where a job is
// concerned) and nothing of any job changes.
func TestAbuse(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	image(t, d, "img", "#!/bin/sh\necho img\n")

	d.scriptJob(t, "abuse", "#!/bin/sh\necho abuse\ncat \"$1/input.json\"\n")
	d.ok(t, `cd mnt/abuse && echo 90s > config/timeout && echo 7 > config/keep && echo queue > config/overlap &&
		echo 50 > config/limits/cpu && echo 256 > config/limits/memory && echo 100 > config/limits/pids &&
		echo 1000000 > config/limits/io && echo '0 0 1 1 *' > config/schedule && printf 'kept\n' > description &&
		echo 'Abuse job' > name && printf 's3cret-value' > config/env/token && touch shared/public &&
		echo staged > input/staged.txt`)
	d.trigger(t, "abuse", `{"n": 1}`)
	// The staged file went into run 1; stage another for the upload cases.
	if st := d.waitRun(t, "abuse", 1); st != "COMPLETED" {
		t.Fatalf("abuse run 1 ended %s", st)
	}
	d.ok(t, `echo staged > mnt/abuse/input/staged.txt`)
	d.ok(t, `mkdir mnt/chain && echo img > mnt/chain/config/chains`)
	d.ok(t, `mkdir mnt/other && echo 'the other job' > mnt/other/description`)
	sleep := startSleeper(t, d, "busy")
	d.ok(t, `echo 2h > mnt/busy/config/timeout && printf 'busy-secret' > mnt/busy/config/env/token`)

	// snapshot reads what a bad input about job must not change: all of
	// job, and the listings of the mount and of every job folder.
	jobs := []string{"abuse", "chain", "busy", "other"}
	runFiles := map[string][]string{
		"abuse": {"runs/1/status", "runs/1/exit_code", "runs/1/log", "runs/1/input/input.json"},
		"busy":  {"runs/1/status"},
	}
	snapshot := func(job string) map[string]string {
		all := map[string]string{}
		for _, j := range jobs {
			if j != job {
				names, err := relList(d, j)
				all[j+"/ls ."] = fmt.Sprint(names, err)
				continue
			}
			for k, v := range relSnapshot(t, d, j) {
				all[j+"/"+k] = v
			}
			for _, rel := range runFiles[j] {
				s, err := relRead(d, j+"/"+rel)
				if err != nil {
					s = "error: " + err.Error()
				}
				all[j+"/"+rel] = s
			}
		}
		top, err := relList(d, ".")
		all["ls mnt"] = fmt.Sprint(top, err)
		return all
	}
	readLog := func(t *testing.T, job string) string {
		t.Helper()
		s, err := relRead(d, job+"/log")
		if err != nil {
			t.Fatalf("read %s/log: %v", job, err)
		}
		return s
	}
	cases := relAbuseCases()
	if len(cases) < 60 {
		t.Fatalf("%d cases, want at least 60", len(cases))
	}
	// The cases of one job run in order; the jobs (and the top of the
	// mount) in parallel.
	groups := map[string][]relAbuse{}
	var order []string
	for _, c := range cases {
		if _, ok := groups[c.job]; !ok {
			order = append(order, c.job)
		}
		groups[c.job] = append(groups[c.job], c)
	}
	t.Run("cases", func(t *testing.T) {
		for _, g := range order {
			name := g
			if name == "" {
				name = "top"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				for _, c := range groups[g] {
					relAbuseOne(t, d, c, snapshot, readLog)
				}
			})
		}
	})
	// The outside folder: nothing escaped the mount.
	if got := d.ok(t, `ls`); got != "jobfs\njobfs-init\njobfs-shim\nmnt\nrepos\nstate\n" {
		t.Errorf("the daemon's folder holds %q, want jobfs jobfs-init jobfs-shim mnt repos state", got)
	}
	if p := d.pgrep(t, sleep); p == "" {
		t.Errorf("the busy job's run is gone")
	}
	d.ok(t, `echo kill > mnt/busy/runs/1/ctl`)
	d.waitRun(t, "busy", 1)
}

// relAbuseOne runs one bad input of TestAbuse as a subtest of t.
func relAbuseOne(t *testing.T, d *daemon, c relAbuse, snapshot func(job string) map[string]string,
	readLog func(t *testing.T, job string) string) {
	t.Run(c.name, func(t *testing.T) {
		before := snapshot(c.job)
		var logBefore string
		if c.job != "" {
			logBefore = readLog(t, c.job)
		}
		r := d.sh(t, c.cmd)
		if r.code == 0 || !strings.Contains(r.err, c.errno) {
			t.Errorf("want a non-zero exit and %q on stderr:\n%s", c.errno, r)
		}
		if strings.Contains(c.cmd, "part.json") { // only the abuse job's cases, which run in order
			os.Remove(filepath.Join(d.dir, "part.json"))
		}
		after := snapshot(c.job)
		if diffs := relDiff(before, after); len(diffs) > 0 {
			t.Errorf("state changed:\n  %s", strings.Join(diffs, "\n  "))
		}
		if c.job == "" {
			return
		}
		logAfter := readLog(t, c.job)
		added, ok := strings.CutPrefix(logAfter, logBefore)
		switch {
		case !ok:
			t.Errorf("the job's log was rewritten, not appended to")
		case c.reason != "" && !strings.Contains(added, c.reason):
			t.Errorf("the job's log got %q, want a line with %q", added, c.reason)
		}
	})
}

// TestLeakSoak: 1,000 runs in a row leave the daemon's fd count and thread
// count flat (within 10%, plus 2, of what they were after the first 300)
// and its RSS within 20% plus 4 MiB: Go's heap and the FUSE nodes the
// kernel still remembers settle during the first few hundred runs.
// The daemon is built without -race, whose shadow memory only grows.
func TestLeakSoak(t *testing.T) {
	relSoak(t)
	t.Parallel()
	d := startDaemon(t, daemonOpts{plain: true})
	d.scriptJob(t, "leak", "#!/bin/sh\necho \"run $JOBFS_RUN\"\ncat \"$1/input.json\" > \"$2/out.json\"\n")
	d.ok(t, `echo 10 > mnt/leak/config/keep`)
	pid := d.cmd.Process.Pid
	measure := func() (fds, threads int, rssKB int) {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(st), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "Threads:" {
				threads, _ = strconv.Atoi(f[1])
			}
			if len(f) >= 2 && f[0] == "VmRSS:" {
				rssKB, _ = strconv.Atoi(f[1])
			}
		}
		return len(ents), threads, rssKB
	}
	data := filepath.Join(d.mnt, "leak", "data")
	var f0, th0, rss0 int
	for id := 1; id <= 1000; id++ {
		if err := os.WriteFile(data, []byte(fmt.Sprintf("{\"id\": %d}\n", id)), 0o644); err != nil {
			t.Fatalf("trigger %d: %v", id, err)
		}
		if st, err := relRead(d, fmt.Sprintf("leak/runs/%d/wait", id)); err != nil || st != "COMPLETED\n" {
			t.Fatalf("run %d: wait %q %v", id, st, err)
		}
		if id == 300 {
			time.Sleep(time.Second)
			f0, th0, rss0 = measure()
		}
	}
	time.Sleep(time.Second)
	f1, th1, rss1 := measure()
	t.Logf("after 300 runs: %d fds, %d threads, %d kB RSS; after 1000: %d fds, %d threads, %d kB RSS", f0, th0, rss0, f1, th1, rss1)
	if f1 > f0+f0/10+2 {
		t.Errorf("fds grew from %d to %d over 700 runs", f0, f1)
	}
	if th1 > th0+th0/10+2 {
		t.Errorf("threads grew from %d to %d over 700 runs", th0, th1)
	}
	if rss1 > rss0+rss0/5+4096 {
		t.Errorf("RSS grew from %d kB to %d kB over 700 runs", rss0, rss1)
	}
}
