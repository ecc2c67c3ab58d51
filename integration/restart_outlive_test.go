//go:build linux

package integration

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/boltstore"
)

// outliveLines is how many numbered lines each printer run writes, one
// every 50 ms: 5 s.
const outliveLines = 100

// TestRunsOutliveTheDaemon: with 20 runs printing and a 3-step chain
// active, the daemon stops (kill -9, or SIGTERM) for 2 s and comes back on
// the same folders: every run ends COMPLETED with each of its lines once,
// the chain's later steps ran once, a run that ended while the daemon was
// away shows its real exit code and usage, one that outlived its timeout
// meanwhile ends TIMEOUT, and a wait reader after the restart gets the
// right status. The harness's cleanup checks that no process, cgroup or
// mount is left.
func TestRunsOutliveTheDaemon(t *testing.T) {
	for _, how := range []string{"kill-9", "sigterm"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			outliveRestart(t, how)
		})
	}
}

func outliveRestart(t *testing.T, how string) {
	d := startDaemon(t, daemonOpts{outlive: true, maxActive: 30})
	thawAtEnd(t, d)
	printer := fmt.Sprintf("#!/bin/sh\ni=1\nwhile [ $i -le %d ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done\n", outliveLines)
	for i := 0; i < 20; i++ {
		d.scriptJob(t, fmt.Sprintf("p%d", i), printer)
	}
	// short ends (exit 3) and late times out while the daemon is away:
	// it stays away until both recorded their end.
	d.scriptJob(t, "short", "#!/bin/sh\necho short\nsleep 4\nhead -c 1000000 /dev/zero > /dev/null\nexit 3\n")
	d.scriptJob(t, "late", "#!/bin/sh\necho late\nexec sleep 30\n")
	d.ok(t, `echo 4s > mnt/late/config/timeout`)
	d.scriptJob(t, "paused", pausedScript)
	chainsImage(t, d, "first", chainFirst)
	chainsImage(t, d, "second", "#!/bin/sh\necho ran second\ncat \"$1/one.txt\" > \"$2/two.txt\"\necho two >> \"$2/two.txt\"\n")
	chainsImage(t, d, "third", "#!/bin/sh\necho ran third\ncp \"$1/two.txt\" \"$2/three.txt\"\n")
	d.ok(t, `mkdir mnt/chain && cat > mnt/chain/config/chains <<'EOF'
a <- first
b <- second
c <- third

a -> b -> c
EOF`)

	// Triggered all at once, so that all of them are active when the
	// daemon stops; short and late once the others run.
	jobs := []string{"chain"}
	for i := 0; i < 20; i++ {
		jobs = append(jobs, fmt.Sprintf("p%d", i))
	}
	d.ok(t, `for j in $JOBS; do printf '{}\n' > "mnt/$j/data" & done; wait`, "JOBS="+strings.Join(jobs, " "))
	for _, j := range jobs {
		d.waitStatus(t, j, 1, "RUNNING")
	}
	pausedAt, pausable := outlivePause(t, d)
	d.ok(t, `for j in short late; do printf '{}\n' > "mnt/$j/data" & done; wait`)
	ending := map[string]string{} // job: its run's folder on disk
	for _, j := range []string{"short", "late"} {
		waitFor(t, j+" started", func() bool { return d.sh(t, `grep -q "$J" mnt/$J/runs/1/log`, "J="+j).code == 0 })
		ending[j] = filepath.Join(d.state, "jobs", strings.TrimSpace(d.cat(t, "mnt/"+j+"/shortname")), "runs", "1")
	}
	for j, dir := range ending {
		if stepRecord(t, dir) != nil {
			t.Errorf("%s ended before the daemon stopped (a machine too slow for this test?)", j)
		}
	}

	switch how {
	case "kill-9":
		d.kill9(t)
	default:
		if code := d.stop(t); code != 0 {
			t.Errorf("jobfs exited %d on SIGTERM, want 0", code)
		}
	}
	time.Sleep(2 * time.Second)
	for j, dir := range ending {
		waitFor(t, j+" recorded its end while the daemon is away", func() bool { return stepRecord(t, dir) != nil })
	}
	restarted := time.Now()
	d.restart(t)
	if pausable {
		outliveResume(t, d, pausedAt)
	}

	// wait readers after the restart: of a run that goes on, and of two
	// that ended while the daemon was away.
	var wg sync.WaitGroup
	waited := map[string]*string{"p0": new(string), "short": new(string), "late": new(string)}
	for j, out := range waited {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*out = d.sh(t, `cat mnt/$J/runs/1/wait`, "J="+j).out
		}()
	}

	for i := 0; i < 20; i++ {
		job := fmt.Sprintf("p%d", i)
		if got := d.waitRun(t, job, 1); got != "COMPLETED" {
			t.Errorf("%s run 1 ended %s, want COMPLETED; log:\n%s", job, got, d.cat(t, "mnt/"+job+"/runs/1/log"))
			continue
		}
		d.wantFile(t, "mnt/"+job+"/runs/1/exit_code", "0\n")
		log := d.cat(t, "mnt/"+job+"/runs/1/log")
		outliveLinesOnce(t, job, log)
		if !strings.Contains(log, "re-attached to this run") {
			t.Errorf("%s: the log does not say the new jobfs re-attached:\n%s", job, log)
		}
	}
	wg.Wait()
	for j, want := range map[string]string{"p0": "COMPLETED\n", "short": "FAILED\n", "late": "TIMEOUT\n"} {
		if *waited[j] != want {
			t.Errorf("cat %s/runs/1/wait after the restart = %q, want %q", j, *waited[j], want)
		}
	}

	if got := d.waitRun(t, "short", 1); got != "FAILED" {
		t.Errorf("short ended %s, want FAILED", got)
	}
	d.wantFile(t, "mnt/short/runs/1/exit_code", "3\n")
	if got := d.waitRun(t, "late", 1); got != "TIMEOUT" {
		t.Errorf("late ended %s, want TIMEOUT; log:\n%s", got, d.cat(t, "mnt/late/runs/1/log"))
	}
	d.wantFile(t, "mnt/late/runs/1/exit_code", "124\n")
	for j, dir := range ending {
		outliveAsRecorded(t, d, j, stepRecord(t, dir), restarted)
	}

	if got := d.waitRun(t, "chain", 1); got != "COMPLETED" {
		t.Errorf("chain ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/chain/runs/1/log"))
	}
	for _, s := range []string{"first", "second", "third"} {
		label := map[string]string{"first": "a", "second": "b", "third": "c"}[s]
		want := "ran " + s + "\n"
		if s == "first" {
			want += chainFirstLines("")
		}
		if got := d.cat(t, "mnt/chain/runs/1/steps/"+label+"/log"); got != want {
			t.Errorf("chain step %s log = %q, want it ran once, every line once", label, got)
		}
		d.wantFile(t, "mnt/chain/runs/1/steps/"+label+"/status", "COMPLETED\n")
	}
	d.wantFile(t, "mnt/chain/runs/1/result", "one\ntwo\n")
	outliveChainRunLog(t, d.cat(t, "mnt/chain/runs/1/log"))
	noCgroupsAfterStop(t, d)
}

// instance is the name of the daemon's cgroup folder (jobfs/<instance>):
// its state folder's device and inode.
func instance(t *testing.T, d *daemon) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(d.state, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d-%d", st.Dev, st.Ino)
}

// thawAtEnd thaws the daemon's step cgroups when the test ends, before
// the harness kills what is left: a paused run the test could not resume
// stays frozen, and a frozen process takes no SIGKILL.
func thawAtEnd(t *testing.T, d *daemon) {
	inst := instance(t, d)
	t.Cleanup(func() {
		v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/freezer/jobfs", inst, "*", "*", "*", "freezer.state"))
		for _, f := range v1 {
			_ = os.WriteFile(f, []byte("THAWED"), 0) // gone already: nothing to thaw
		}
		v2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/jobfs", inst, "*", "*", "*", "cgroup.freeze"))
		for _, f := range v2 {
			_ = os.WriteFile(f, []byte("0"), 0) // as above
		}
	})
}

// noCgroupsAfterStop stops the daemon (every run has ended) and checks
// that no cgroup folder of it is left in any hierarchy.
func noCgroupsAfterStop(t *testing.T, d *daemon) {
	t.Helper()
	if code := d.stop(t); code != 0 {
		t.Errorf("jobfs exited %d on SIGTERM, want 0", code)
	}
	inst := instance(t, d)
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "jobfs", inst))
	if v2 := filepath.Join("/sys/fs/cgroup/jobfs", inst); dirExists(v2) {
		left = append(left, v2)
	}
	if len(left) > 0 {
		t.Errorf("cgroup folders left after every run ended and jobfs stopped: %v", left)
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// chainFirst is the chain's first step: 30 numbered lines over 3 s, so
// that it writes some while the daemon is away.
const chainFirst = "#!/bin/sh\necho ran first\ni=1\nwhile [ $i -le 30 ]; do echo \"first $i\"; i=$((i+1)); sleep 0.1; done\necho one > \"$2/one.txt\"\n"

// chainFirstLines is what chainFirst prints after its first line, each
// line after prefix.
func chainFirstLines(prefix string) string {
	var b strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "%sfirst %d\n", prefix, i)
	}
	return b.String()
}

// outliveChainRunLog checks that the chain's combined log has every line
// of its steps once, the ones written while the daemon was away too.
func outliveChainRunLog(t *testing.T, log string) {
	t.Helper()
	want := strings.Split("[a] ran first\n"+chainFirstLines("[a] ")+"[b] ran second\n[c] ran third", "\n")
	var got []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "[") && !strings.Contains(l, "jobfs: ") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chain run log's step lines:\n%s\nwant every line of its steps once, in order; whole log:\n%s", strings.Join(got, "\n"), log)
	}
}

// stepRecord is the record of the one step of the run in dir (its
// shim's exit.json); nil before there is one.
func stepRecord(t *testing.T, dir string) *outliveRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".shim", "script", "exit.json"))
	if err != nil {
		return nil
	}
	var rec outliveRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return &rec
}

// outliveRecord is what the test reads of a shim's exit.json.
type outliveRecord struct {
	Ended time.Time
	Usage struct{ CPUNanos, MemoryPeak *uint64 }
}

// outliveAsRecorded checks that a run whose step ended while the daemon
// was away shows its step's end and usage as its shim recorded them, not
// the restart's time nor nothing.
func outliveAsRecorded(t *testing.T, d *daemon, job string, rec *outliveRecord, restarted time.Time) {
	t.Helper()
	if !rec.Ended.Before(restarted) {
		t.Errorf("%s: its step ended at %v, after the restart at %v", job, rec.Ended, restarted)
	}
	want := rec.Ended.UTC().Format(time.RFC3339) + "\n"
	d.wantFile(t, "mnt/"+job+"/runs/1/ended_at", want)
	d.wantFile(t, "mnt/"+job+"/runs/1/steps/script/ended_at", want)
	if rec.Usage.CPUNanos == nil || rec.Usage.MemoryPeak == nil {
		t.Errorf("%s: its shim recorded no CPU or memory use: %+v", job, rec.Usage)
		return
	}
	usage := d.cat(t, "mnt/"+job+"/runs/1/usage")
	for _, l := range []string{
		fmt.Sprintf("cpu_seconds %.6f\n", float64(*rec.Usage.CPUNanos)/1e9),
		fmt.Sprintf("memory_peak_bytes %d\n", *rec.Usage.MemoryPeak),
	} {
		if !strings.Contains(usage, l) {
			t.Errorf("%s: usage = %q, want the recorded %q", job, usage, l)
		}
	}
}

// pausedScript prints pausedLines numbered lines: the first, 3 s later
// the others.
const (
	pausedLines  = 5
	pausedScript = "#!/bin/sh\necho line 1\nsleep 3\ni=2\nwhile [ $i -le 5 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.2; done\n"
)

// outlivePause pauses the "paused" job's run, as the daemon is about to
// stop, and says when; false where the cgroup freezer is missing (said in
// the log). Its 9 s timeout is far more than it runs (4 s) and less
// than it stays paused (outliveResume): its clock must not count the
// pause, before the restart or after it.
func outlivePause(t *testing.T, d *daemon) (time.Time, bool) {
	t.Helper()
	d.ok(t, `echo 9s > mnt/paused/config/timeout`)
	d.trigger(t, "paused", "{}")
	d.waitStatus(t, "paused", 1, "RUNNING") // a run not RUNNING yet is not marked PAUSED
	if r := d.sh(t, `echo pause > mnt/paused/runs/1/ctl`); r.code != 0 {
		if dirExists("/sys/fs/cgroup/freezer") || dirExists("/sys/fs/cgroup/jobfs") {
			t.Errorf("echo pause > ctl: %s", r.out)
		} else {
			t.Logf("no cgroup freezer here (%s): the pause across a restart is not tested", r.out)
		}
		if r := d.sh(t, `cat mnt/paused/runs/1/wait`); !strings.Contains(r.out, "COMPLETED") {
			t.Errorf("paused's run ended %q, want COMPLETED", r.out)
		}
		return time.Time{}, false
	}
	pausedAt := time.Now()
	d.wantFile(t, "mnt/paused/runs/1/status", "PAUSED\n")
	return pausedAt, true
}

// outliveResume checks that the paused run stayed paused across the
// restart (status, and no line printed while it was), then resumes it
// once it has been paused for longer than its timeout.
func outliveResume(t *testing.T, d *daemon, pausedAt time.Time) {
	t.Helper()
	d.wantFile(t, "mnt/paused/runs/1/status", "PAUSED\n")
	time.Sleep(time.Until(pausedAt.Add(11 * time.Second)))
	before := d.cat(t, "mnt/paused/runs/1/log")
	d.ok(t, `echo resume > mnt/paused/runs/1/ctl`)
	if got := d.waitRun(t, "paused", 1); got != "COMPLETED" {
		t.Errorf("paused's run ended %s after resume, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/paused/runs/1/log"))
		return
	}
	log := d.cat(t, "mnt/paused/runs/1/log")
	linesOnce(t, "paused", log, pausedLines)
	if n := strings.Count(before, "line "); n >= pausedLines {
		t.Errorf("paused's run printed all its lines (%d) before it was resumed: it ran on while paused", n)
	}
	if !strings.Contains(log, "stays paused") {
		t.Errorf("paused's log does not say it stayed paused:\n%s", log)
	}
}

// outliveLinesOnce checks that a printer's log has each numbered line
// once, in order.
func outliveLinesOnce(t *testing.T, job, log string) {
	t.Helper()
	linesOnce(t, job, log, outliveLines)
}

// linesOnce checks that a log has lines "line 1" to "line n" once each,
// in order.
func linesOnce(t *testing.T, job, log string, n int) {
	t.Helper()
	next := 1
	for _, l := range strings.Split(log, "\n") {
		if !strings.HasPrefix(l, "line ") {
			continue
		}
		if l != fmt.Sprintf("line %d", next) {
			t.Errorf("%s: log has %q where line %d was due:\n%s", job, l, next, log)
			return
		}
		next++
	}
	if next != n+1 {
		t.Errorf("%s: log has lines 1..%d, want 1..%d:\n%s", job, next-1, n, log)
	}
}

// TestOutliveSoak (make soak: JOBFS_SOAK=1): 20 kill -9 at random moments
// while 40 script runs and 10 three-step chain runs are triggered and run;
// every run ends COMPLETED with each of its lines once, and each chain step
// ran once, its line once in its log and in the run's.
func TestOutliveSoak(t *testing.T) {
	if os.Getenv("JOBFS_SOAK") == "" {
		t.Skip("a soak: make soak (JOBFS_SOAK=1)")
	}
	d := startDaemon(t, daemonOpts{outlive: true, maxActive: 30})
	d.scriptJob(t, "s", "#!/bin/sh\ni=1\nwhile [ $i -le 20 ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done\n")
	chainsImage(t, d, "first", "#!/bin/sh\necho ran first\nsleep 0.5\necho one > \"$2/one.txt\"\n")
	chainsImage(t, d, "second", "#!/bin/sh\necho ran second\nsleep 0.5\ncp \"$1/one.txt\" \"$2/two.txt\"\n")
	chainsImage(t, d, "third", "#!/bin/sh\necho ran third\ncp \"$1/two.txt\" \"$2/three.txt\"\n")
	d.ok(t, `mkdir mnt/c && printf 'a <- first\nb <- second\nc <- third\n\na -> b -> c\n' > mnt/c/config/chains`)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	scripts, chains := 0, 0
	for kill := 0; kill < 20; kill++ {
		for i := 0; i < 2; i++ {
			d.trigger(t, "s", "{}")
			scripts++
		}
		if kill%2 == 0 {
			d.trigger(t, "c", "{}")
			chains++
		}
		time.Sleep(time.Duration(rng.Intn(1500)) * time.Millisecond)
		d.kill9(t)
		d.restart(t)
	}
	for id := 1; id <= scripts; id++ {
		run := fmt.Sprintf("mnt/s/runs/%d/", id)
		if got := d.waitRun(t, "s", id); got != "COMPLETED" {
			t.Errorf("s run %d ended %s; log:\n%s", id, got, d.cat(t, run+"log"))
			continue
		}
		log := d.cat(t, run+"log")
		n := strings.Count(log, "line ")
		for i := 1; i <= 20; i++ {
			if c := strings.Count(log, fmt.Sprintf("line %d\n", i)); c != 1 {
				t.Errorf("s run %d: line %d is there %d times (%d lines in all)", id, i, c, n)
				break
			}
		}
	}
	for id := 1; id <= chains; id++ {
		run := fmt.Sprintf("mnt/c/runs/%d/", id)
		if got := d.waitRun(t, "c", id); got != "COMPLETED" {
			t.Errorf("c run %d ended %s; log:\n%s", id, got, d.cat(t, run+"log"))
			continue
		}
		runLog := d.cat(t, run+"log")
		for label, s := range map[string]string{"a": "first", "b": "second", "c": "third"} {
			if got := d.cat(t, run+"steps/"+label+"/log"); got != "ran "+s+"\n" {
				t.Errorf("c run %d step %s log = %q, want it ran once", id, label, got)
			}
			if n := strings.Count(runLog, "["+label+"] ran "+s+"\n"); n != 1 {
				t.Errorf("c run %d: the run log has step %s's line %d times, want once:\n%s", id, label, n, runLog)
			}
		}
	}
	noCgroupsAfterStop(t, d)
}

// outliveOldCommit is an earlier jobfs whose steps already run under shims
// (of protocol 1): TestOutliveUpgrade builds it.
const outliveOldCommit = "ea3d999"

// TestOutliveUpgrade: two builds. Runs started by an older jobfs (the
// build of outliveOldCommit, shims of protocol 1) are adopted by this one
// after a kill -9: printers end COMPLETED with every line once, a chain's
// later steps run once. The other way round, an older jobfs lets a step
// under a newer shim finish and its run log says why it cannot read how.
func TestOutliveUpgrade(t *testing.T) {
	d := startDaemon(t, daemonOpts{outlive: true, maxActive: 30})
	thawAtEnd(t, d)
	old := buildOldJobfs(t)
	chainsImage(t, d, "first", chainFirst)
	chainsImage(t, d, "second", "#!/bin/sh\necho ran second\ncat \"$1/one.txt\" > \"$2/two.txt\"\n")
	chainsImage(t, d, "third", "#!/bin/sh\necho ran third\ncp \"$1/two.txt\" \"$2/three.txt\"\n")
	d.ok(t, `mkdir mnt/chain && printf 'a <- first\nb <- second\nc <- third\n\na -> b -> c\n' > mnt/chain/config/chains`)
	printer := fmt.Sprintf("#!/bin/sh\ni=1\nwhile [ $i -le %d ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done\n", outliveLines)
	jobs := []string{"chain"}
	for i := 0; i < 5; i++ {
		jobs = append(jobs, fmt.Sprintf("p%d", i))
		d.scriptJob(t, jobs[i+1], printer)
	}
	d.scriptJob(t, "down", printer)

	d.stop(t)
	useBinaries(t, d, old)
	d.restart(t)
	d.ok(t, `for j in $JOBS; do printf '{}\n' > "mnt/$j/data" & done; wait`, "JOBS="+strings.Join(jobs, " "))
	for _, j := range jobs {
		d.waitStatus(t, j, 1, "RUNNING")
	}
	d.kill9(t)
	useBinaries(t, d, jobfsBin)
	d.restart(t)
	for _, j := range jobs[1:] {
		if got := d.waitRun(t, j, 1); got != "COMPLETED" {
			t.Errorf("%s ended %s under the newer jobfs, want COMPLETED; log:\n%s", j, got, d.cat(t, "mnt/"+j+"/runs/1/log"))
			continue
		}
		log := d.cat(t, "mnt/"+j+"/runs/1/log")
		outliveLinesOnce(t, j, log)
		if !strings.Contains(log, "re-attached to this run") {
			t.Errorf("%s: the log does not say the newer jobfs re-attached:\n%s", j, log)
		}
	}
	if got := d.waitRun(t, "chain", 1); got != "COMPLETED" {
		t.Errorf("chain ended %s under the newer jobfs, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/chain/runs/1/log"))
	}
	d.wantFile(t, "mnt/chain/runs/1/steps/a/log", "ran first\n"+chainFirstLines(""))
	runLog := d.cat(t, "mnt/chain/runs/1/log")
	for _, l := range []string{"[b] ran second\n", "[c] ran third\n"} {
		if n := strings.Count(runLog, l); n != 1 {
			t.Errorf("chain run log has %q %d times, want once (started by the newer jobfs):\n%s", l, n, runLog)
		}
	}
	d.wantFile(t, "mnt/chain/runs/1/result", "one\n")

	// Downgrade: the older jobfs cannot read a newer shim's record.
	d.trigger(t, "down", "{}")
	d.waitStatus(t, "down", 1, "RUNNING")
	d.kill9(t)
	useBinaries(t, d, old)
	d.restart(t)
	if got := d.waitRun(t, "down", 1); got != "FAILED" {
		t.Errorf("down ended %s under the older jobfs, want FAILED (it cannot read the record)", got)
	}
	log := d.cat(t, "mnt/down/runs/1/log")
	outliveLinesOnce(t, "down", log) // it was let finish
	if !strings.Contains(log, "newer than this jobfs") {
		t.Errorf("down's log does not say its shim is newer than the older jobfs:\n%s", log)
	}
	// The newer jobfs, killed, kept its idle jobs' cgroup folders for
	// their next runs, which the older one does not know of: the newer's
	// next start removes them.
	d.stop(t)
	useBinaries(t, d, jobfsBin)
	d.restart(t)
	noCgroupsAfterStop(t, d)
}

// buildOldJobfs builds jobfs and jobfs-init of outliveOldCommit (without
// -race: only its shims' protocol matters) from a git worktree removed at
// the end; it skips the test, saying why, where that cannot be done.
func buildOldJobfs(t *testing.T) string {
	t.Helper()
	tree := filepath.Join(t.TempDir(), "old")
	if out, err := osexec.Command("git", "-C", "..", "worktree", "add", "--detach", tree, outliveOldCommit).CombinedOutput(); err != nil {
		t.Skipf("no worktree of %s to build an older jobfs from (%v): %s", outliveOldCommit, err, out)
	}
	t.Cleanup(func() {
		if out, err := osexec.Command("git", "-C", "..", "worktree", "remove", "--force", tree).CombinedOutput(); err != nil {
			t.Errorf("remove the worktree %s: %v: %s", tree, err, out)
		}
	})
	goTool, err := osexec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go" // as buildInto
	}
	bin := filepath.Join(t.TempDir(), "jobfs")
	for _, name := range []string{"jobfs", "jobfs-init"} {
		cmd := osexec.Command(goTool, "build", "-o", filepath.Join(filepath.Dir(bin), name), "./cmd/"+name)
		cmd.Dir = tree
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("cannot build %s of %s (%v): %s", name, outliveOldCommit, err, out)
		}
	}
	return bin
}

// useBinaries makes the daemon's next start run bin (and the jobfs-init
// and jobfs-shim beside it, where there); processes of the binaries it
// replaces run on.
func useBinaries(t *testing.T, d *daemon, bin string) {
	t.Helper()
	for _, name := range stepBinaries {
		if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := linkBinaries(bin, d.dir); err != nil {
		t.Fatal(err)
	}
}

// TestOutliveMissedTicks: the missed-tick rules hold while runs outlive the
// daemon. A run re-attached after a restart counts as active, so the
// schedule's catch-up (# catchup) and its next ticks follow config/overlap
// (skip): nothing starts beside it; the job log counts the missed ticks;
// once it ends, the ticks start runs again.
func TestOutliveMissedTicks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{outlive: true})
	d.scriptJob(t, "ticker", "#!/bin/sh\necho tick\nsleep 8\n")
	d.ok(t, `echo '@every 2s # catchup' > mnt/ticker/config/schedule`)
	d.waitStatus(t, "ticker", 1, "RUNNING")
	d.kill9(t)
	time.Sleep(3 * time.Second) // a tick or two missed while no daemon runs
	d.restart(t)
	if got := d.waitRun(t, "ticker", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	d.waitStatus(t, "ticker", 2, "RUNNING", "COMPLETED")
	d.ok(t, `echo false > mnt/ticker/config/enabled`)
	defer func() { // run 2 would outlive this test's daemon
		d.sh(t, `echo kill > mnt/ticker/runs/2/ctl`)
		d.waitRun(t, "ticker", 2)
	}()
	ended, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(d.cat(t, "mnt/ticker/runs/1/ended_at")))
	if err != nil {
		t.Fatal(err)
	}
	started, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(d.cat(t, "mnt/ticker/runs/2/started_at")))
	if err != nil {
		t.Fatal(err)
	}
	if started.Before(ended) {
		t.Errorf("run 2 started at %v, before the re-attached run 1 ended (%v): a tick or the catch-up ignored config/overlap skip", started, ended)
	}
	log := d.cat(t, "mnt/ticker/log")
	if !strings.Contains(log, "while jobfs was down; not replayed") {
		t.Errorf("the job log does not count the missed ticks:\n%s", log)
	}
}

// TestOutliveStartNotRecorded: a daemon killed between a step's start and
// the commit of that start leaves its run PENDING in the store, without a
// start, while the step runs on under its shim. The next daemon keeps the
// step's cgroup, re-attaches to the step (it is not started again) and the
// run ends COMPLETED with each line once.
func TestOutliveStartNotRecorded(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{outlive: true})
	d.scriptJob(t, "p", fmt.Sprintf("#!/bin/sh\ni=1\nwhile [ $i -le %d ]; do echo \"line $i\"; i=$((i+1)); sleep 0.05; done\n", outliveLines))
	job := strings.TrimSpace(d.cat(t, "mnt/p/shortname"))
	d.trigger(t, "p", "{}")
	d.waitStatus(t, "p", 1, "RUNNING")
	d.kill9(t)
	// The store as a kill in that instant leaves it.
	st, err := boltstore.Open(filepath.Join(d.state, "jobfs.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.UpdateRun(job, 1, func(r *jobs.Run) { r.Status, r.StartedAt, r.Steps = jobs.Pending, time.Time{}, nil })
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	d.restart(t)
	if got := d.waitRun(t, "p", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/p/runs/1/log"))
	}
	log := d.cat(t, "mnt/p/runs/1/log")
	outliveLinesOnce(t, "p", log)
	if !strings.Contains(log, "re-attached to this run") {
		t.Errorf("the log does not say the new jobfs re-attached:\n%s", log)
	}
	if started := strings.TrimSpace(d.cat(t, "mnt/p/runs/1/started_at")); started == "" {
		t.Error("runs/1/started_at is empty: the start was not recorded from the shim")
	}
}

// TestOutliveQueuedRunsRunAfterStop: runs left queued (PENDING) by a stop
// run after the next start, each once with its own payload; the job's log
// says they were queued again, not re-attached (they never ran), and says
// the running one, which ran on under its shim, was re-attached.
func TestOutliveQueuedRunsRunAfterStop(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{outlive: true, maxActive: 1})
	// Run 1 runs on through the stop and the start (8 s: a stop under load
	// takes seconds); the queued ones end at once.
	d.scriptJob(t, "q", "#!/bin/sh\ncat /input/input.json\nif grep -q '\"n\":1}' /input/input.json; then sleep 8; fi\n")
	for i := 1; i <= 3; i++ {
		d.trigger(t, "q", fmt.Sprintf(`{"n":%d}`, i))
	}
	d.waitStatus(t, "q", 1, "RUNNING")
	if st := strings.TrimSpace(d.cat(t, "mnt/q/runs/3/status")); st != "PENDING" {
		t.Fatalf("run 3 is %s before the stop, want PENDING (queued behind --max-active 1)", st)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("jobfs exited %d on SIGTERM", code)
	}
	d.restart(t)
	for i := 1; i <= 3; i++ {
		if got := d.waitRun(t, "q", i); got != "COMPLETED" {
			t.Fatalf("run %d ended %s, want COMPLETED", i, got)
		}
		if log := d.cat(t, fmt.Sprintf("mnt/q/runs/%d/log", i)); !strings.Contains(log, fmt.Sprintf(`{"n":%d}`, i)) {
			t.Errorf("run %d's log lacks its payload:\n%s", i, log)
		}
	}
	log := d.cat(t, "mnt/q/log")
	for _, want := range []string{"run 1 re-attached after a restart", "run 2 queued again after a restart", "run 3 queued again after a restart"} {
		if !strings.Contains(log, want) {
			t.Errorf("the job's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "run 2 re-attached") || strings.Contains(log, "run 3 re-attached") {
		t.Errorf("the job's log says a queued run was re-attached:\n%s", log)
	}
}
