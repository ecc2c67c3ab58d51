//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/jobfs/jobfs/jobs"
	"github.com/jobfs/jobfs/jobs/boltstore"
)

// The benchmarks of issue 8 (BenchmarkCmp*) drive the real binary on a real
// mount and measure each figure beside its baseline in the same run.
//
// Metrics are reported with units "<measure>@<who>", who being jobfs or a
// baseline, and "ratio-<measure>@<baseline>" = jobfs's figure divided by the
// baseline's; `make bench` prints them as one table. Every benchmark takes
// its own samples (one round per b.N: run them with -benchtime 1x), starts
// its own daemon without -race or --debug (JOBFS_BIN, or a build of its
// own) and leaves nothing behind. Nothing here asserts on timing.
//
// Scales (as issue 8 asks; the many-jobs seed is most of `make bench`'s
// time):
const (
	benchSamples    = 50      // trigger latency samples per round
	benchFirstLs    = 3       // mounts whose first ls of benchJobs jobs is timed (median)
	benchRuns       = 200     // runs of the throughput round
	benchWriters    = 4       // concurrent writers of the throughput round
	benchBigLog     = 1 << 30 // bytes a step writes to stdout: 1 GiB as asked
	benchJobs       = 100_000 // jobs of the many-jobs state, as issue 8 asks
	benchRunsPerJob = 10      // finished runs per job there: 1,000,000 in all
	benchStatN      = 500     // distinct jobs stat'ed
	benchTicks      = 12      // cron ticks observed
	benchLines      = 100     // lines a step prints for the stream latency
	benchLine       = "a line of benchmark log output, 64 bytes with its newline ...."
)

// benchBinary returns a jobfs binary built without -race: $JOBFS_BIN, or a
// build of ../cmd/jobfs made once per test binary.
func benchBinary(b *testing.B) string {
	b.Helper()
	if skipReason != "" {
		b.Skip(skipReason)
	}
	bin, err := plainJobfs()
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// benchDaemon mounts a fresh jobfs for b on folders in b.TempDir(), with
// its state in state when that is not "", and stops it when b ends. It
// returns how long the daemon took from exec to its ready: line.
func benchDaemon(b *testing.B, state string, args ...string) (*daemon, time.Duration) {
	b.Helper()
	bin := benchBinary(b)
	dir := b.TempDir()
	d := &daemon{
		opts: daemonOpts{args: args}, dir: dir, out: &syncBuffer{},
		mnt:   filepath.Join(dir, "mnt"),
		state: filepath.Join(dir, "state"),
		repos: filepath.Join(dir, "repos"),
		bin:   filepath.Join(dir, "jobfs"),
	}
	if state != "" {
		d.state = state
	}
	for _, p := range []string{d.mnt, d.state, d.repos} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	mountpointsMu.Lock()
	mountpoints = append(mountpoints, d.mnt)
	mountpointsMu.Unlock()
	if err := linkBinaries(bin, dir); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { benchStop(b, d) })
	return d, benchStartProc(b, d)
}

// benchStartProc starts d's process and waits for its ready: line.
func benchStartProc(b *testing.B, d *daemon) time.Duration {
	b.Helper()
	args := append([]string{"mount", "--state", d.state, "--repos", d.repos, "--grace", "1s"}, d.opts.args...)
	args = append(args, d.mnt)
	w := &readyWriter{out: d.out, ready: make(chan struct{})}
	cmd := exec.Command(d.bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start jobfs: %v", err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.exitErr = err
		d.mu.Unlock()
		close(done)
	}()
	select {
	case <-w.ready:
		return time.Since(t0)
	case <-done:
		b.Fatalf("jobfs mount exited before it was ready (%v):\n%s", d.exitError(), d.out)
	case <-time.After(readyTimeout):
		b.Fatalf("jobfs mount printed no ready: line within %v:\n%s", readyTimeout, d.out)
	}
	return 0
}

// benchStop stops d (SIGTERM), unmounts what is left and kills what its
// runs left behind; it may be called more than once.
func benchStop(b *testing.B, d *daemon) {
	if d.running() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(stopTimeout):
			b.Errorf("jobfs did not exit within %v of SIGTERM; killed", stopTimeout)
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	if d.mounted() {
		if out, err := exec.Command("umount", "-l", d.mnt).CombinedOutput(); err != nil {
			b.Errorf("umount -l %s: %v: %s", d.mnt, err, out)
		}
	}
	if left := d.killLeftovers(); len(left) > 0 {
		b.Errorf("processes left behind by jobfs (killed now):\n%s", strings.Join(left, "\n"))
	}
	if b.Failed() {
		b.Logf("jobfs output:\n%s", benchTail(d.out.String(), 4000))
	}
}

func benchTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// benchIsolated fails b unless the daemon runs steps in cgroups and
// namespaces, as the figures are meant to include them.
func benchIsolated(b *testing.B, d *daemon) {
	b.Helper()
	if out := d.out.String(); !strings.Contains(out, "steps run in cgroup") || !strings.Contains(out, "namespaces") {
		b.Skipf("steps are not isolated here (root with cgroups is needed); jobfs said:\n%s", out)
	}
}

// benchWrite writes content to a file below the mount, as `printf > file`
// does: open with O_TRUNC, write, close.
func benchWrite(b *testing.B, d *daemon, rel, content string) {
	b.Helper()
	if err := os.WriteFile(filepath.Join(d.mnt, rel), []byte(content), 0o644); err != nil {
		b.Fatalf("write %s: %v", rel, err)
	}
}

func benchRead(b *testing.B, d *daemon, rel string) string {
	b.Helper()
	out, err := os.ReadFile(filepath.Join(d.mnt, rel))
	if err != nil {
		b.Fatalf("read %s: %v", rel, err)
	}
	return string(out)
}

// benchJob makes a script job; settings are pairs of path and value.
func benchJob(b *testing.B, d *daemon, name, script string, settings ...string) {
	b.Helper()
	if err := os.Mkdir(filepath.Join(d.mnt, name), 0o755); err != nil {
		b.Fatal(err)
	}
	benchWrite(b, d, name+"/config/type", "script\n")
	benchWrite(b, d, name+"/config/script", script)
	for i := 0; i+1 < len(settings); i += 2 {
		benchWrite(b, d, name+"/"+settings[i], settings[i+1]+"\n")
	}
}

// benchTrigger starts a run as `echo > data` does.
func benchTrigger(b *testing.B, d *daemon, job string) {
	b.Helper()
	benchWrite(b, d, job+"/data", "\n")
}

// benchWait reads runs/<id>/wait: it returns once the run has ended.
func benchWait(b *testing.B, d *daemon, job string, id int) string {
	b.Helper()
	return benchRead(b, d, fmt.Sprintf("%s/runs/%d/wait", job, id))
}

// benchCompleted fails b unless run id of job ended COMPLETED.
func benchCompleted(b *testing.B, d *daemon, job string, id int) {
	b.Helper()
	if st := benchWait(b, d, job, id); st != "COMPLETED\n" {
		log, _ := os.ReadFile(filepath.Join(d.mnt, job, "runs", strconv.Itoa(id), "log"))
		b.Fatalf("run %d of %s ended %q, want COMPLETED; log:\n%s", id, job, st, benchTail(string(log), 2000))
	}
}

// benchPct returns the p-th percentile (nearest rank) of ds.
func benchPct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func benchUS(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// benchBase is one baseline's figure for a measure.
type benchBase struct {
	name  string
	value float64
}

// benchReport reports a measure for jobfs and its baselines, and jobfs's
// ratio to each baseline. A baseline that could not be measured (NaN) is
// left out.
func benchReport(b *testing.B, measure string, jobfs float64, bases ...benchBase) {
	b.ReportMetric(jobfs, measure+"@jobfs")
	for _, base := range bases {
		if math.IsNaN(base.value) {
			continue
		}
		b.ReportMetric(base.value, measure+"@"+base.name)
		if base.value != 0 {
			b.ReportMetric(jobfs/base.value, "ratio-"+measure+"@"+base.name)
		}
	}
}

// benchTsp is a private task-spooler server (its own socket and folder).
type benchTsp struct {
	bin string
	env []string
}

// benchTaskSpooler starts a task-spooler server with slots slots, or
// returns nil (logged) when task-spooler is not installed.
func benchTaskSpooler(b *testing.B, slots int) *benchTsp {
	b.Helper()
	bin, err := exec.LookPath("tsp")
	if err != nil { // upstream's name; on Debian ts is moreutils' timestamper
		if p, err2 := exec.LookPath("ts"); err2 == nil {
			if out, _ := exec.Command(p, "-h").CombinedOutput(); bytes.Contains(out, []byte("TS_SOCKET")) {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		b.Logf("task-spooler is not installed (apt-get install task-spooler): its baseline is left out")
		return nil
	}
	dir := b.TempDir()
	ts := &benchTsp{bin: bin, env: append(os.Environ(),
		"TS_SOCKET="+filepath.Join(dir, "socket"), "TMPDIR="+dir, "TS_MAXFINISHED=100000",
		"TS_SLOTS="+strconv.Itoa(slots), "TS_ONFINISH=", "TS_SAVELIST=")}
	b.Cleanup(func() { ts.run("-K") })
	if _, err := ts.run("-S", strconv.Itoa(slots)); err != nil {
		b.Fatalf("tsp -S %d: %v", slots, err)
	}
	return ts
}

func (ts *benchTsp) run(args ...string) (string, error) {
	cmd := exec.Command(ts.bin, args...)
	cmd.Env = ts.env
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s %s: %v: %s", ts.bin, strings.Join(args, " "), err, ee.Stderr)
		}
	}
	return string(out), err
}

// waitAll polls the job list until n jobs have finished.
func (ts *benchTsp) waitAll(b *testing.B, n int) {
	b.Helper()
	deadline := time.Now().Add(runTimeout)
	for {
		out, err := ts.run("-l")
		if err != nil {
			b.Fatal(err)
		}
		if strings.Count(out, " finished ") >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("task-spooler: %d jobs not finished within %v:\n%s", n, runTimeout, benchTail(out, 2000))
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkCmpTrigger: `echo > data` until the run of a script that is
// /bin/true (#!/bin/true) has ended COMPLETED, as root with namespaces and
// a cgroup with limits, the run recorded durably (fsync'd bbolt), seen by a
// reader of runs/N/wait; against a fork/exec of /bin/true from Go and
// task-spooler's `tsp -n -f true` (a client process enqueues and waits),
// and against the same trigger of a second daemon whose state is on tmpfs
// (tmpfs-state: what the state's disk costs; a state that does not survive
// a reboot, so a measure, not a setting), and against the same write and
// read on a bare FUSE tree answering at no cost (fuse: benchBareTrigger).
// Samples are interleaved; p50 and p99 in ms.
func BenchmarkCmpTrigger(b *testing.B) {
	d, _ := benchDaemon(b, "")
	benchIsolated(b, d)
	benchJob(b, d, "true", "#!/bin/true\n", "config/keep", "100000")
	onTmpfs := benchOnTmpfs(b, "true")
	ts := benchTaskSpooler(b, 1)
	bare := benchBareTrigger(b)
	bareRuns := 0
	viaBare := func() time.Duration {
		bareRuns++
		t0 := time.Now()
		if err := os.WriteFile(filepath.Join(bare, "true", "data"), []byte("\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		st, err := os.ReadFile(filepath.Join(bare, "true", "runs", strconv.Itoa(bareRuns), "wait"))
		if err != nil || string(st) != "COMPLETED\n" {
			b.Fatalf("bare trigger: read wait: %q, %v", st, err)
		}
		return time.Since(t0)
	}
	ids := map[*daemon]int{}
	run := func(d *daemon) time.Duration {
		ids[d]++
		t0 := time.Now()
		benchTrigger(b, d, "true")
		st := benchWait(b, d, "true", ids[d])
		el := time.Since(t0)
		if st != "COMPLETED\n" {
			benchCompleted(b, d, "true", ids[d])
		}
		return el
	}
	for _, w := range []*daemon{d, onTmpfs} {
		if w != nil {
			run(w) // warm up: the first run makes the job's cgroup parents
			run(w)
		}
	}
	var viaJobfs, viaTmpfs, viaExec, viaTsp, viaFuse []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < benchSamples; k++ {
			viaJobfs = append(viaJobfs, run(d))
			t0 := time.Now()
			if err := exec.Command("/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
			viaExec = append(viaExec, time.Since(t0))
			viaFuse = append(viaFuse, viaBare())
			if ts != nil {
				t0 = time.Now()
				if _, err := ts.run("-n", "-f", "true"); err != nil {
					b.Fatal(err)
				}
				viaTsp = append(viaTsp, time.Since(t0))
			}
			if onTmpfs != nil {
				viaTmpfs = append(viaTmpfs, run(onTmpfs))
			}
		}
	}
	b.StopTimer()
	fresh, okFresh := benchFloor(b, 1, b.N*benchSamples, "")
	ahead, okAhead := benchFloor(b, 1, b.N*benchSamples, "prepared")
	for _, p := range []float64{50, 99} {
		m := fmt.Sprintf("p%.0f-ms", p)
		floor, floorAhead := fresh.p50MS, ahead.p50MS
		if p == 99 {
			floor, floorAhead = fresh.p99MS, ahead.p99MS
		}
		benchReport(b, m, benchMS(benchPct(viaJobfs, p)),
			benchBase{"exec", benchMS(benchPct(viaExec, p))},
			benchBase{"tsp", benchOrNaN(ts != nil, benchMS(benchPct(viaTsp, p)))},
			benchBase{"tmpfs-state", benchOrNaN(onTmpfs != nil, benchMS(benchPct(viaTmpfs, p)))},
			benchBase{"floor", benchOrNaN(okFresh, floor)},
			benchBase{"floor-ahead", benchOrNaN(okAhead, floorAhead)},
			benchBase{"fuse", benchMS(benchPct(viaFuse, p))})
	}
	fuseP50 := benchMS(benchPct(viaFuse, 50))
	if okFresh && ts != nil {
		// The floor against the goal's baseline: above 1 means that no
		// design making a fresh sandbox on the trigger's path meets it.
		b.ReportMetric(fresh.p50MS/benchMS(benchPct(viaTsp, 50)), "floor/tsp-p50")
		b.ReportMetric(ahead.p50MS/benchMS(benchPct(viaTsp, 50)), "floor-ahead/tsp-p50")
		// With the interface's own cost: the FUSE requests of the write
		// and of the read of wait, answered at no cost (the sum of two
		// medians measured apart, an estimate of the median of the sum).
		b.ReportMetric((fresh.p50MS+fuseP50)/benchMS(benchPct(viaTsp, 50)), "floor+fuse/tsp-p50")
		b.ReportMetric((ahead.p50MS+fuseP50)/benchMS(benchPct(viaTsp, 50)), "floor-ahead+fuse/tsp-p50")
	}
	if okAhead {
		// The goal's second half (at most 2x fork/exec) against the floor
		// with a perfect pool, and the share of its two durable commits.
		b.ReportMetric(ahead.p50MS/benchMS(benchPct(viaExec, 50)), "floor-ahead/exec-p50")
		b.ReportMetric((ahead.p50MS+fuseP50)/benchMS(benchPct(viaExec, 50)), "floor-ahead+fuse/exec-p50")
		if commits, ok := benchFloor(b, 1, b.N*benchSamples, "commits"); ok {
			b.ReportMetric(commits.p50MS, "floor-commits-p50-ms")
		}
	}
}

func benchOrNaN(ok bool, v float64) float64 {
	if !ok {
		return math.NaN()
	}
	return v
}

// BenchmarkCmpThroughput: sustained runs/s of benchRuns trivial runs
// (#!/bin/true) triggered by benchWriters concurrent writers, from the first
// write until every run is COMPLETED; jobfs with --max-active 2 against
// task-spooler with 2 slots (tsp -S 2; one `tsp -n true` client process per
// job, as it is used) and against the same daemon on a state on tmpfs
// (tmpfs-state, as in CmpTrigger).
func BenchmarkCmpThroughput(b *testing.B) {
	d, _ := benchDaemon(b, "", "--max-active", "2")
	benchIsolated(b, d)
	benchJob(b, d, "many", "#!/bin/true\n", "config/keep", "100000")
	ts := benchTaskSpooler(b, 2)
	per := benchRuns / benchWriters
	parallel := func(write func() error) error {
		errs := make(chan error, benchWriters)
		for w := 0; w < benchWriters; w++ {
			go func() {
				for k := 0; k < per; k++ {
					if err := write(); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		var first error
		for w := 0; w < benchWriters; w++ {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	onTmpfs := benchOnTmpfs(b, "many", "--max-active", "2")
	next := map[*daemon]int{}
	round := func(d *daemon) float64 {
		data := filepath.Join(d.mnt, "many", "data")
		t0 := time.Now()
		if err := parallel(func() error { return os.WriteFile(data, []byte("\n"), 0o644) }); err != nil {
			b.Fatal(err)
		}
		for id := next[d] + 1; id <= next[d]+per*benchWriters; id++ {
			benchCompleted(b, d, "many", id)
		}
		next[d] += per * benchWriters
		return float64(per*benchWriters) / time.Since(t0).Seconds()
	}
	var jobfsRate, tmpfsRate, tspRate []float64
	var jobfsCPU float64
	tsDone := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cpu0 := benchCPU(b, d)
		jobfsRate = append(jobfsRate, round(d))
		jobfsCPU += benchCPU(b, d) - cpu0
		if onTmpfs != nil {
			tmpfsRate = append(tmpfsRate, round(onTmpfs))
		}
		if ts != nil {
			t0 := time.Now()
			if err := parallel(func() error { _, err := ts.run("-n", "true"); return err }); err != nil {
				b.Fatal(err)
			}
			tsDone += per * benchWriters
			ts.waitAll(b, tsDone)
			tspRate = append(tspRate, float64(per*benchWriters)/time.Since(t0).Seconds())
		}
	}
	b.StopTimer()
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	floor, okFloor := benchFloor(b, benchWriters, b.N*per, "")
	noRoot, okNoRoot := benchFloor(b, benchWriters, b.N*per, "noroot")
	benchReport(b, "runs/s", mean(jobfsRate), benchBase{"tsp", benchOrNaN(ts != nil, mean(tspRate))},
		benchBase{"tmpfs-state", benchOrNaN(onTmpfs != nil, mean(tmpfsRate))},
		benchBase{"floor", benchOrNaN(okFloor, floor.runsPerSecond)},
		benchBase{"floor-noroot", benchOrNaN(okNoRoot, noRoot.runsPerSecond)})
	// CPU per run, the daemon's and its shims', inits' and steps': on two
	// cores it bounds runs/s at 2000/cpu-ms.
	benchReport(b, "cpu-ms/run", jobfsCPU*1000/float64(b.N*per*benchWriters),
		benchBase{"floor", benchOrNaN(okFloor, floor.cpuMSPerRun)})
	if okFloor && ts != nil {
		// Below the goal's 1.3 means that no design making a fresh sandbox
		// per run meets it here.
		b.ReportMetric(floor.runsPerSecond/mean(tspRate), "floor/tsp-runs/s")
		if okNoRoot {
			b.ReportMetric(noRoot.runsPerSecond/mean(tspRate), "floor-noroot/tsp-runs/s")
		}
	}
}

// BenchmarkCmpBigLog: a step writing benchBigLog bytes of log lines to
// stdout (yes | head -c), trigger to COMPLETED, against the same pipeline
// writing to a file in the same folder; then `cat > /dev/null` of the
// finished log through the mount against `cat` of the same file in the
// state folder (state/jobs/<shortname>/runs/<id>/log), best of three each,
// in MB/s (10^6 bytes). The job's cpu limit is lifted (config/limits/cpu
// 0) so both sides run the same pipeline unthrottled.
func BenchmarkCmpBigLog(b *testing.B) {
	d, _ := benchDaemon(b, "")
	benchIsolated(b, d)
	prog := fmt.Sprintf("yes '%s' | head -c %d", benchLine[:len(benchLine)-1], benchBigLog)
	benchJob(b, d, "big", "#!/bin/sh\n"+prog+"\n", "config/limits/cpu", "0", "config/keep", "1")
	short := strings.TrimSpace(benchRead(b, d, "big/shortname"))
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	catSecs := func(path string) float64 {
		best := math.Inf(1)
		for rep := 0; rep < 3; rep++ {
			var stderr bytes.Buffer
			cmd := exec.Command("cat", path)
			cmd.Stdout, cmd.Stderr = devnull, &stderr
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("cat %s: %v: %s", path, err, stderr.Bytes())
			}
			best = min(best, time.Since(t0).Seconds())
		}
		return best
	}
	file := filepath.Join(d.dir, "stdout.txt")
	var jobfsS, fileS, catMount, catDisk, fuseReads float64
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		t0 := time.Now()
		benchTrigger(b, d, "big")
		benchCompleted(b, d, "big", i)
		jobfsS += time.Since(t0).Seconds()

		t0 = time.Now()
		if out, err := exec.Command("/bin/sh", "-c", prog+` > "$0"`, file).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", prog, err, out)
		}
		fileS += time.Since(t0).Seconds()

		disk := filepath.Join(d.state, "jobs", short, "runs", strconv.Itoa(i), "log")
		st, err := os.Stat(disk)
		if err != nil {
			b.Fatal(err)
		}
		if st.Size() < benchBigLog {
			b.Fatalf("%s holds %d bytes, want at least %d", disk, st.Size(), benchBigLog)
		}
		mb := float64(st.Size()) / 1e6
		// Reading the metrics takes FUSE reads of its own: counted out.
		first := benchFuseReads(b, d)
		reads := benchFuseReads(b, d)
		catMount += mb / catSecs(filepath.Join(d.mnt, "big", "runs", strconv.Itoa(i), "log"))
		fuseReads += benchFuseReads(b, d) - reads - (reads - first)
		catDisk += mb / catSecs(disk)
		os.Remove(file)
	}
	b.StopTimer()
	n := float64(b.N)
	benchReport(b, "stdout-s", jobfsS/n, benchBase{"file", fileS / n})
	// Which path the kernel took: passthrough reads the file itself (no FUSE
	// read reaches the daemon); otherwise every read goes through it.
	path := "passthrough"
	if fuseReads > 0 {
		path = "fuse"
	}
	b.Logf("cat of the finished log: %s path (%.0f FUSE reads)", path, fuseReads)
	benchReport(b, "cat-"+path+"-MB/s", catMount/n, benchBase{"disk", catDisk / n})
}

// benchFuseReads returns how many FUSE reads d has answered, from
// MOUNT/.jobfs/metrics (jobfs_fuse_operations_total of op read).
func benchFuseReads(b *testing.B, d *daemon) float64 {
	b.Helper()
	sum, err := fuseOpsIn(benchRead(b, d, ".jobfs/metrics"), "read")
	if err != nil {
		b.Fatal(err)
	}
	return sum
}

// benchTickScript prints the wall clock (date +%s.%N) every 20 ms, lines
// times, after a pause that lets the reader attach.
func benchTickScript(lines int) string {
	return fmt.Sprintf("#!/bin/sh\nsleep 0.5\ni=0\nwhile [ $i -lt %d ]; do\n  date +%%s.%%N\n  sleep 0.02\n  i=$((i+1))\ndone\n", lines)
}

// benchParseStamp reads a date +%s.%N line.
func benchParseStamp(line string) (time.Time, bool) {
	sec, frac, ok := strings.Cut(strings.TrimSpace(line), ".")
	if !ok || len(frac) != 9 {
		return time.Time{}, false
	}
	s, err1 := strconv.ParseInt(sec, 10, 64)
	ns, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	return time.Unix(s, ns), true
}

// benchLatencies reads stamp lines from r until EOF and returns, for each,
// how long after its stamp it arrived.
func benchLatencies(r io.Reader) []time.Duration {
	var out []time.Duration
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if ts, ok := benchParseStamp(line); ok && strings.HasSuffix(line, "\n") {
			out = append(out, time.Since(ts))
		}
		if err != nil {
			return out
		}
	}
}

// BenchmarkCmpStream: a line a step prints (date +%s.%N, every 20 ms),
// until a reader of runs/N/stream through the mount has it, against the
// same script's stdout read through a pipe, and against the run's log file
// in the state folder followed with inotify (another run of the same job,
// no FUSE and no daemon: the floor of what the step's shim writes); p50
// and p99 in us.
func BenchmarkCmpStream(b *testing.B) {
	d, _ := benchDaemon(b, "")
	benchIsolated(b, d)
	script := benchTickScript(benchLines)
	benchJob(b, d, "ticks", script)
	local := filepath.Join(d.dir, "ticks.sh")
	if err := os.WriteFile(local, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	short := strings.TrimSpace(benchRead(b, d, "ticks/shortname"))
	var viaStream, viaPipe, viaFile []time.Duration
	run := 0
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		run++
		benchTrigger(b, d, "ticks")
		path := filepath.Join(d.mnt, "ticks", "runs", strconv.Itoa(run), "stream")
		var f *os.File
		var err error
		for deadline := time.Now().Add(runTimeout); ; time.Sleep(time.Millisecond) {
			// The run's log may not exist yet while the run is PENDING.
			if f, err = os.Open(path); err == nil || !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		lat := benchLatencies(f)
		f.Close()
		benchCompleted(b, d, "ticks", run)
		if len(lat) < benchLines*9/10 {
			b.Fatalf("run %d: %d lines read through stream, want %d", run, len(lat), benchLines)
		}
		viaStream = append(viaStream, lat...)

		run++
		benchTrigger(b, d, "ticks")
		lat = benchFollowFile(b, filepath.Join(d.state, "jobs", short, "runs", strconv.Itoa(run), "log"))
		benchCompleted(b, d, "ticks", run)
		if len(lat) < benchLines*9/10 {
			b.Fatalf("run %d: %d lines read from the log file, want %d", run, len(lat), benchLines)
		}
		viaFile = append(viaFile, lat...)

		cmd := exec.Command(local)
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		viaPipe = append(viaPipe, benchLatencies(pipe)...)
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, p := range []float64{50, 99} {
		m := fmt.Sprintf("p%.0f-us", p)
		benchReport(b, m, benchUS(benchPct(viaStream, p)), benchBase{"pipe", benchUS(benchPct(viaPipe, p))},
			benchBase{"file-inotify", benchUS(benchPct(viaFile, p))})
	}
}

// benchFollowFile follows the log file at path (waiting for it to exist)
// with inotify as the daemon does, reading stamp lines as they are
// appended, until benchLines of them came or runTimeout passed; it returns
// how long after its stamp each arrived.
func benchFollowFile(b *testing.B, path string) []time.Duration {
	b.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }() // read only
	deadline := time.Now().Add(runTimeout)
	var f *os.File
	for ; ; time.Sleep(time.Millisecond) {
		if f, err = os.Open(path); err == nil || !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		b.Fatal(err)
	}
	var out []time.Duration
	var partial []byte
	buf, ev := make([]byte, 64<<10), make([]byte, 4096)
	for len(out) < benchLines && time.Now().Before(deadline) {
		n, err := f.Read(buf)
		if n > 0 {
			partial = append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				if ts, ok := benchParseStamp(string(partial[:i+1])); ok {
					out = append(out, time.Since(ts))
				}
				partial = partial[i+1:]
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
		// Nothing new: wait for the next append (at most a second, so the
		// deadline is looked at).
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, _ := unix.Poll(pfd, 1000); k > 0 { // EINTR: look again
			_, _ = unix.Read(fd, ev) // the event itself says nothing more
		}
	}
	return out
}

// benchScratch returns a folder on tmpfs (/dev/shm) when there is one, so
// that building a state of benchJobs jobs costs no fsyncs, else in
// b.TempDir(); it is removed when b ends.
func benchScratch(b *testing.B) string {
	b.Helper()
	if dir, ok := benchTmpfs(b); ok {
		return dir
	}
	return b.TempDir()
}

// benchOnTmpfs starts a daemon (with args) whose state is on tmpfs, with a
// job of the given name whose script is /bin/true: the tmpfs-state
// baseline, what the state's disk costs. nil where there is no tmpfs.
func benchOnTmpfs(b *testing.B, job string, args ...string) *daemon {
	b.Helper()
	scratch, ok := benchTmpfs(b)
	if !ok {
		return nil
	}
	d, _ := benchDaemon(b, filepath.Join(scratch, "state"), args...)
	benchJob(b, d, job, "#!/bin/true\n", "config/keep", "100000")
	return d
}

// benchTmpfs returns a folder of its own on the tmpfs at /dev/shm, removed
// when b ends; false where there is none.
func benchTmpfs(b *testing.B) (string, bool) {
	b.Helper()
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && st.Type == 0x01021994 { // TMPFS_MAGIC
		dir, err := os.MkdirTemp("/dev/shm", "jobfs-bench-")
		if err == nil {
			b.Cleanup(func() { os.RemoveAll(dir) })
			return dir, true
		}
	}
	return "", false
}

// benchRSS returns the daemon's own resident memory in MiB: RssAnon. The
// store's file is mapped too and its pages, once read, count in VmRSS (as
// shared memory on tmpfs, page cache on a disk) though the kernel can drop
// them: 840 MB for a million runs.
func benchRSS(b *testing.B, d *daemon) float64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no RssAnon in /proc/PID/status")
	return 0
}

// benchLs times `ls dir` and checks it lists n names.
func benchLs(b *testing.B, dir string, n int) time.Duration {
	b.Helper()
	var out bytes.Buffer
	cmd := exec.Command("ls", dir)
	cmd.Stdout = &out
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("ls %s: %v", dir, err)
	}
	el := time.Since(t0)
	if got := bytes.Count(out.Bytes(), []byte("\n")); got != n {
		b.Fatalf("ls %s: %d names, want %d", dir, got, n)
	}
	return el
}

// benchStats times a stat of each of names in dir.
func benchStats(b *testing.B, dir string, names []string) []time.Duration {
	b.Helper()
	out := make([]time.Duration, 0, len(names))
	for _, n := range names {
		t0 := time.Now()
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(t0))
	}
	return out
}

// benchBareFuse mounts, in the benchmark's process, a FUSE folder of the
// given names made with go-fuse as jobfs is (no readdirplus, no entry
// cached), whose listing costs its server nothing (a slice made once): the
// floor of `ls` of as many jobs through FUSE; and a stat of a name there
// is one LOOKUP answered at no cost (the attributes it returns are kept):
// the floor of a stat the kernel does not answer alone. Unmounted when b
// ends.
func benchBareFuse(b *testing.B, names []string) string {
	b.Helper()
	ents := make([]fuse.DirEntry, len(names))
	byName := make(map[string]uint64, len(names))
	for i, n := range names {
		ents[i] = fuse.DirEntry{Name: n, Mode: syscall.S_IFDIR, Ino: uint64(i) + 2}
		byName[n] = uint64(i) + 2
	}
	zero := time.Duration(0)
	return benchMountBare(b, "bare", &benchBareDir{ents: ents, byName: byName},
		&gofs.Options{EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero})
}

// benchMountBare mounts root, a bare go-fuse tree in the benchmark's
// process, with the mount options jobfs uses (no readdirplus, 1 MiB
// writes), and unmounts it when b ends.
func benchMountBare(b *testing.B, name string, root gofs.InodeEmbedder, opts *gofs.Options) string {
	b.Helper()
	mnt := filepath.Join(b.TempDir(), name)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	mountpointsMu.Lock()
	mountpoints = append(mountpoints, mnt)
	mountpointsMu.Unlock()
	opts.MountOptions = fuse.MountOptions{FsName: name, DirectMount: true, DisableReadDirPlus: true, MaxWrite: 1 << 20}
	server, err := gofs.Mount(mnt, root, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			b.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// benchBareDir is benchBareFuse's folder.
type benchBareDir struct {
	gofs.Inode
	ents   []fuse.DirEntry
	byName map[string]uint64
}

func (d *benchBareDir) Readdir(context.Context) (gofs.DirStream, syscall.Errno) {
	return gofs.NewListDirStream(d.ents), 0
}

// Lookup answers a name with an empty folder whose attributes the kernel
// keeps (the entry is not kept: each stat is one LOOKUP).
func (d *benchBareDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n, ok := d.byName[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	out.Attr.Mode = syscall.S_IFDIR | 0o755
	out.Attr.Ino = n
	out.SetAttrTimeout(time.Hour)
	return d.NewInode(ctx, &gofs.Inode{}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: n}), 0
}

// benchManyJobsState returns a state of benchJobs jobs with benchRunsPerJob
// finished runs each, a native folder of as many sub-folders, and the jobs'
// names. The seed takes minutes, so $JOBFS_BENCH_SEED, when set, names a
// folder where it is made once and kept to be mounted again by later runs
// (profiling the mount of a big history); the caller removes it. Otherwise
// it is made in benchScratch and removed when b ends.
func benchManyJobsState(b *testing.B) (state, native string, names []string) {
	b.Helper()
	names = make([]string, benchJobs)
	for i := range names {
		names[i] = fmt.Sprintf("job%05d", i)
	}
	scratch := os.Getenv("JOBFS_BENCH_SEED")
	if scratch == "" {
		scratch = benchScratch(b)
	}
	state, native = filepath.Join(scratch, "state"), filepath.Join(scratch, "native")
	done := filepath.Join(scratch, "seeded")
	if _, err := os.Stat(done); err == nil {
		return state, native, names
	}
	for _, p := range []string{state, native} {
		if err := os.RemoveAll(p); err != nil { // a seed that did not finish
			b.Fatal(err)
		}
	}
	m, err := jobs.New(jobs.Options{StateDir: state})
	if err != nil {
		b.Fatal(err)
	}
	m.Store().(*boltstore.Store).SetNoSync(true) // a seed, not a measure: 1.1 million commits
	if err := os.Mkdir(native, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, name := range names {
		j, err := m.CreateJob(0, name)
		if err != nil {
			b.Fatal(err)
		}
		for r := 0; r < benchRunsPerJob; r++ {
			now, code := time.Now().UTC(), 0
			run := jobs.Run{Status: jobs.Completed, Trigger: jobs.Manual, Queued: now, StartedAt: now, EndedAt: now, ExitCode: &code}
			if _, err := m.Store().CreateRun(j.ID, run); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.Mkdir(filepath.Join(native, name), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return state, native, names
}

// BenchmarkCmpManyJobs: a state of benchJobs jobs with benchRunsPerJob
// finished runs each, made with the jobs package (jobs.New, CreateJob,
// Store.CreateRun) on tmpfs, then mounted: time from exec to ready and the
// daemon's RSS (against a daemon on an empty state), the first `ls MOUNT`
// after the mount (the median over benchFirstLs mounts; against a native
// folder of as many sub-folders on the same tmpfs, and benchBareFuse's
// folder of as many names: the FUSE floor),
// ls-cached: the `ls MOUNT` right after it, whose listing the kernel keeps
// (fs/rootlist.go; against a second `ls` of the native folder), and the
// p50 and p99 of a stat of benchStatN distinct jobs:
//   - stat: each job's first stat, which the kernel cannot answer alone:
//     one LOOKUP through the daemon (its answer's attributes are kept),
//     against the native folder and against a stat of as many names of
//     benchBareFuse's folder (one LOOKUP answered at no cost);
//   - stat-cached: the same jobs stat'ed again, answered by the kernel from
//     the entry and attributes it keeps (fs/cache.go), against the native
//     folder's stats.
func BenchmarkCmpManyJobs(b *testing.B) {
	benchBinary(b)
	state, native, names := benchManyJobsState(b)

	empty, emptyReady := benchDaemon(b, "")
	emptyRSS := benchRSS(b, empty)
	benchStop(b, empty)

	bare := benchBareFuse(b, names)

	b.ResetTimer()
	var ready, lsJobfs, lsNative, lsBare, lsCached, lsNativeAgain time.Duration
	var statJobfs, statCached, statNative, statFloor []time.Duration
	var rss float64
	for i := 0; i < b.N; i++ {
		// The first ls after a mount, its median over benchFirstLs mounts:
		// one sample swung by a third between tables on this VM.
		var firsts []time.Duration
		for k := 1; k < benchFirstLs; k++ {
			d, _ := benchDaemon(b, state)
			firsts = append(firsts, benchLs(b, d.mnt, benchJobs))
			benchStop(b, d)
		}
		d, r := benchDaemon(b, state)
		ready += r
		lsJobfs += benchPct(append(firsts, benchLs(b, d.mnt, benchJobs)), 50)
		lsCached += benchLs(b, d.mnt, benchJobs)
		lsNative += benchLs(b, native, benchJobs)
		lsNativeAgain += benchLs(b, native, benchJobs)
		lsBare += benchLs(b, bare, benchJobs)
		pick := rand.Perm(benchJobs)[:benchStatN]
		sample := make([]string, len(pick))
		for k, p := range pick {
			sample[k] = names[p]
		}
		statJobfs = append(statJobfs, benchStats(b, d.mnt, sample)...)
		statCached = append(statCached, benchStats(b, d.mnt, sample)...)
		statNative = append(statNative, benchStats(b, native, sample)...)
		statFloor = append(statFloor, benchStats(b, bare, sample)...)
		rss += benchRSS(b, d)
		benchStop(b, d)
	}
	b.StopTimer()
	n := time.Duration(b.N)
	benchReport(b, "mount-ms", benchMS(ready/n), benchBase{"empty", benchMS(emptyReady)})
	benchReport(b, "ls-ms", benchMS(lsJobfs/n), benchBase{"native", benchMS(lsNative / n)},
		benchBase{"fuse-floor", benchMS(lsBare / n)})
	benchReport(b, "ls-cached-ms", benchMS(lsCached/n), benchBase{"native", benchMS(lsNativeAgain / n)})
	for _, p := range []float64{50, 99} {
		benchReport(b, fmt.Sprintf("stat-p%.0f-us", p), benchUS(benchPct(statJobfs, p)),
			benchBase{"native", benchUS(benchPct(statNative, p))}, benchBase{"fuse-floor", benchUS(benchPct(statFloor, p))})
	}
	for _, p := range []float64{50, 99} {
		benchReport(b, fmt.Sprintf("stat-cached-p%.0f-us", p), benchUS(benchPct(statCached, p)),
			benchBase{"native", benchUS(benchPct(statNative, p))})
	}
	benchReport(b, "anon-rss-MiB", rss/float64(b.N), benchBase{"empty", emptyRSS})
}

// BenchmarkCmpCron: config/schedule `@every 1s` (ticks on the whole
// second); the step prints date +%s.%N first thing; the delay from the
// tick to that line over benchTicks ticks, p50 and p99 in ms. No baseline.
func BenchmarkCmpCron(b *testing.B) {
	d, _ := benchDaemon(b, "")
	benchIsolated(b, d)
	benchJob(b, d, "cron", "#!/bin/sh\ndate +%s.%N\n", "config/keep", "100000")
	var lat []time.Duration
	seen := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchWrite(b, d, "cron/config/enabled", "true\n")
		benchWrite(b, d, "cron/config/schedule", "@every 1s\n")
		time.Sleep(time.Duration(benchTicks)*time.Second + 500*time.Millisecond)
		benchWrite(b, d, "cron/config/enabled", "false\n")
		ents, err := os.ReadDir(filepath.Join(d.mnt, "cron", "runs"))
		if err != nil {
			b.Fatal(err)
		}
		var ids []int
		for _, e := range ents {
			if id, err := strconv.Atoi(e.Name()); err == nil && id > seen {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		if len(ids) < benchTicks/2 {
			b.Fatalf("%d scheduled runs in %d s, want about %d", len(ids), benchTicks, benchTicks)
		}
		for _, id := range ids {
			benchCompleted(b, d, "cron", id)
			if tr := benchRead(b, d, fmt.Sprintf("cron/runs/%d/trigger", id)); tr != "schedule\n" {
				b.Fatalf("run %d: trigger %q, want schedule", id, tr)
			}
			for _, line := range strings.Split(benchRead(b, d, fmt.Sprintf("cron/runs/%d/log", id)), "\n") {
				if ts, ok := benchParseStamp(line); ok {
					lat = append(lat, time.Duration(ts.Nanosecond()))
					break
				}
			}
			seen = id
		}
	}
	b.StopTimer()
	for _, p := range []float64{50, 99} {
		benchReport(b, fmt.Sprintf("tick-p%.0f-ms", p), benchMS(benchPct(lat, p)))
	}
}

// benchBareTrigger mounts, in the benchmark's process, a FUSE tree of a
// trigger's shape made with go-fuse as jobfs is: true/data takes a write
// and its close at no cost, and true/runs/<N>/wait, for any N, reads
// "COMPLETED\n" at once. The kernel keeps the job's folder, runs/ and
// data; a run's folder and its wait are asked for, as a new run's must
// be. `echo > data` and a read of wait there are the FUSE requests of a
// trigger answered at no cost: the kernel's round trips alone, which any
// design of this interface pays (the `fuse` baseline). Unmounted when b
// ends.
func benchBareTrigger(b *testing.B) string {
	b.Helper()
	return benchMountBare(b, "bare-trigger", &bareTriggerDir{level: 0}, &gofs.Options{})
}

// bareTriggerDir is a folder of benchBareTrigger's tree: the root (level
// 0), the job (1), runs/ (2) or a run (3).
type bareTriggerDir struct {
	gofs.Inode
	level int
}

func (d *bareTriggerDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	kept := func() { out.SetEntryTimeout(time.Hour); out.SetAttrTimeout(time.Hour) }
	dir := func(level int) *gofs.Inode {
		out.Attr.Mode = syscall.S_IFDIR | 0o755
		return d.NewInode(ctx, &bareTriggerDir{level: level}, gofs.StableAttr{Mode: syscall.S_IFDIR})
	}
	switch {
	case d.level == 0 && name == "true":
		kept()
		return dir(1), 0
	case d.level == 1 && name == "runs":
		kept()
		return dir(2), 0
	case d.level == 1 && name == "data":
		kept()
		out.Attr.Mode = syscall.S_IFREG | 0o644
		return d.NewInode(ctx, &bareTriggerData{}, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
	case d.level == 2:
		return dir(3), 0 // a new run's folder: not kept
	case d.level == 3 && name == "wait":
		out.Attr.Mode = syscall.S_IFREG | 0o444
		return d.NewInode(ctx, &bareTriggerWait{}, gofs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	return nil, syscall.ENOENT
}

// bareTriggerWait is benchBareTrigger's wait, opened as jobfs opens one: a
// verdict's size is not known before it comes, so reads go to the server
// (FOPEN_DIRECT_IO: the verdict, then the end of the file), and the close
// of a handle that only reads is no request (FOPEN_NOFLUSH).
type bareTriggerWait struct{ gofs.Inode }

var bareVerdict = []byte("COMPLETED\n")

func (*bareTriggerWait) Open(context.Context, uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
}

func (*bareTriggerWait) Read(_ context.Context, _ gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(bareVerdict)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(bareVerdict[off:]), 0
}

// bareTriggerData is benchBareTrigger's data: it takes an open, a
// truncation, writes and their flush, and keeps nothing.
type bareTriggerData struct{ gofs.Inode }

func (*bareTriggerData) Open(context.Context, uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (*bareTriggerData) Write(_ context.Context, _ gofs.FileHandle, data []byte, _ int64) (uint32, syscall.Errno) {
	return uint32(len(data)), 0
}

func (*bareTriggerData) Flush(context.Context, gofs.FileHandle) syscall.Errno { return 0 }

func (*bareTriggerData) Setattr(_ context.Context, _ gofs.FileHandle, _ *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	return 0
}

func (*bareTriggerData) Getattr(_ context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	return 0
}
