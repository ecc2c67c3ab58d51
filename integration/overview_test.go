//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ovEvent is one line of MOUNT/.jobfs/events.
type ovEvent struct {
	Seq      uint64 `json:"seq"`
	Type     string `json:"type"`
	Owner    string `json:"owner"`
	Job      string `json:"job"`
	Run      uint64 `json:"run"`
	Status   string `json:"status"`
	Setting  string `json:"setting"`
	Missed   uint64 `json:"missed"`
	ExitCode *int   `json:"exit_code"`
}

// ovReader is a `cat mnt/.jobfs/events` running in the background.
type ovReader struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// ovStartReader starts cat of the events file as the caller prefix names
// (nil: root), and waits until the daemon counts it among its readers
// (want readers in all). It is ended when t ends.
func ovStartReader(t *testing.T, d *daemon, prefix []string, want int) *ovReader {
	t.Helper()
	argv := append(slices.Clone(prefix), "cat", "mnt/.jobfs/events")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = d.dir
	r := &ovReader{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait() // the reader ends killed: its status says nothing
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped reader must be able to die
		_ = cmd.Process.Kill()                  // it may have ended meanwhile
		<-r.done
	})
	ovWaitMetric(t, d, `jobfs_stream_readers{kind="events"}`, strconv.Itoa(want))
	return r
}

// ovWaitMetric polls .jobfs/metrics until the series reads value.
func ovWaitMetric(t *testing.T, d *daemon, series, value string) {
	t.Helper()
	deadline := time.Now().Add(shTimeout)
	for {
		m := d.cat(t, "mnt/.jobfs/metrics")
		if strings.Contains("\n"+m, "\n"+series+" "+value+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never read %s:\n%s", series, value, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// until waits for the reader to have printed a line matching re, and
// returns its events.
func (r *ovReader) until(t *testing.T, re string) []ovEvent {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(shTimeout)
	for !rx.Match(r.out.Bytes()) {
		if time.Now().After(deadline) {
			t.Fatalf("the events reader never printed %s; it printed:\n%s", re, ovTail(r.out.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ovParse(t, r.out.Bytes())
}

// ovParse decodes whole lines of events; every line must be one JSON event.
func ovParse(t *testing.T, b []byte) []ovEvent {
	t.Helper()
	var out []ovEvent
	lines := bytes.Split(b, []byte("\n"))
	for _, l := range lines[:len(lines)-1] {
		var e ovEvent
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("an events line is not JSON (%v): %q", err, l)
		}
		out = append(out, e)
	}
	return out
}

func ovTail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// ovCheckSeq checks that a reader's events are numbered 1, 2, 3 ... with a
// missed line standing for as many numbers as it missed, and returns the
// events it missed in all.
func ovCheckSeq(t *testing.T, evs []ovEvent) uint64 {
	t.Helper()
	next, missed := uint64(1), uint64(0)
	for i, e := range evs {
		if e.Seq != next {
			t.Fatalf("event %d has seq %d, want %d (every event once, in order): %+v", i, e.Seq, next, e)
		}
		next++
		if e.Type == "missed" {
			if e.Missed == 0 {
				t.Fatalf("a missed line that missed nothing: %+v", e)
			}
			next += e.Missed - 1
			missed += e.Missed
		}
	}
	return missed
}

// ovStatus splits .jobfs/status into rows of fields and checks that the
// columns are aligned: every field of a column starts at the same offset.
func ovStatus(t *testing.T, out string) map[string][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	field := regexp.MustCompile(`\S+`)
	header := field.FindAllStringIndex(lines[0], -1)
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "JOB OWNER STATE LAST STATUS DURATION NEXT" {
		t.Fatalf("status header = %q:\n%s", got, out)
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		idx := field.FindAllStringIndex(l, -1)
		if len(idx) != len(header) {
			t.Fatalf("status line %q has %d fields, want %d:\n%s", l, len(idx), len(header), out)
		}
		for i := range idx {
			if idx[i][0] != header[i][0] {
				t.Errorf("status column %d of %q starts at %d, the header's at %d:\n%s", i, l, idx[i][0], header[i][0], out)
			}
		}
		f := strings.Fields(l)
		rows[f[1]+"/"+f[0]] = f
	}
	return rows
}

// The overview follows sharing: alice's status lists her jobs (one that
// never ran too) and the one bob shares with her, not bob's other one; her
// events show what happens to those jobs only (also the shared job's
// deletion), root's show everything; Ctrl-C ends a reader.
func TestOverviewFollowsSharing(t *testing.T) {
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	d := shareDaemon(t)
	A, B := shareAs(alice), shareAs(bob)
	script := "#!/bin/sh\necho hi\n"
	A.job(t, d, "etl", script) // never runs
	A.job(t, d, "built", script)
	A.ok(t, d, `echo '{}' > mnt/built/data`)
	d.waitRun(t, "@"+alice.name+"/built", 1)
	B.job(t, d, "secret", script)
	B.job(t, d, "open", script)
	B.ok(t, d, `touch "mnt/open/shared/@$U"`, "U="+alice.name)

	rows := ovStatus(t, A.ok(t, d, `cat mnt/.jobfs/status`))
	want := map[string]string{
		alice.name + "/built": "built " + alice.name + " idle 1 COMPLETED",
		alice.name + "/etl":   "etl " + alice.name + " idle - - - -",
		bob.name + "/open":    "open " + bob.name + " idle - - - -",
	}
	if len(rows) != len(want) {
		t.Errorf("alice's status has %d jobs, want %d: %v", len(rows), len(want), rows)
	}
	for k, w := range want {
		if got := strings.Join(rows[k], " "); !strings.HasPrefix(got, w) {
			t.Errorf("alice's status line of %s = %q, want %q...", k, got, w)
		}
	}
	rows = ovStatus(t, d.ok(t, `cat mnt/.jobfs/status`))
	if _, ok := rows[bob.name+"/secret"]; !ok || len(rows) != 4 {
		t.Errorf("root's status does not list all 4 jobs: %v", rows)
	}
	A.ok(t, d, `test -d mnt/.jobfs && ls mnt/.jobfs | tr '\n' ' ' | grep -qx 'metrics status '`)

	asAlice := shareSetpriv(t, alice.name, alice.uid, alice.gid)
	ra := ovStartReader(t, d, asAlice.prefix, 1)
	rr := ovStartReader(t, d, nil, 2)
	B.ok(t, d, `echo '{}' > mnt/secret/data && echo '{}' > mnt/open/data && echo note > mnt/secret/description`)
	d.waitRun(t, "@"+bob.name+"/secret", 1)
	d.waitRun(t, "@"+bob.name+"/open", 1)
	B.ok(t, d, `rmdir mnt/open`)
	A.ok(t, d, `mkdir mnt/sentinel`)
	sentinel := `"type":"job.created","owner":"` + alice.name + `","job":"sentinel"`
	got := ra.until(t, sentinel)
	ovCheckSeq(t, got)
	var seen []string
	for _, e := range got {
		if e.Job == "secret" {
			t.Errorf("alice sees an event of bob's unshared job: %+v", e)
		}
		seen = append(seen, e.Type+" "+e.Job)
	}
	if w := []string{"run.queued open", "run.started open", "run.ended open", "job.deleted open", "job.created sentinel"}; !slices.Equal(seen, w) {
		t.Errorf("alice's events = %q, want %q", seen, w)
	}
	all := rr.until(t, sentinel)
	ovCheckSeq(t, all)
	secret := 0
	for _, e := range all {
		if e.Job == "secret" {
			secret++
		}
	}
	if secret < 4 { // queued, started, ended, description
		t.Errorf("root saw %d events of bob's secret job, want at least 4:\n%s", secret, rr.out)
	}

	// Metrics: alice's file has her series, not bob's; root's has both.
	if m := A.ok(t, d, `cat mnt/.jobfs/metrics`); !strings.Contains(m, `owner="`+alice.name+`"`) || strings.Contains(m, `owner="`+bob.name+`"`) {
		t.Errorf("alice's metrics must hold her runs and none of bob's:\n%s", m)
	} else if strings.Contains(m, "jobfs_fuse_operations_total") || strings.Contains(m, "jobfs_store_commit_seconds") {
		t.Errorf("alice's metrics hold the daemon's totals, which count every user's activity:\n%s", m)
	}
	if m := d.cat(t, "mnt/.jobfs/metrics"); !strings.Contains(m, `owner="`+alice.name+`"`) || !strings.Contains(m, `owner="`+bob.name+`"`) {
		t.Errorf("root's metrics must hold every owner's runs:\n%s", m)
	}

	// Ctrl-C ends a reader waiting for the next event.
	if err := ra.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ra.done:
	case <-time.After(shTimeout):
		t.Fatalf("SIGINT did not end cat of .jobfs/events")
	}
	ovWaitMetric(t, d, `jobfs_stream_readers{kind="events"}`, "1")
}

// Two readers see every event of 100 runs exactly once, in order, and the
// same events; status lists a job that never ran.
func TestOverviewEventsTwoReaders(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "burst", "#!/bin/sh\nexit 0\n")
	d.scriptJob(t, "never", "#!/bin/sh\nexit 0\n")
	r1 := ovStartReader(t, d, nil, 1)
	r2 := ovStartReader(t, d, nil, 2)
	d.ok(t, `for i in $(seq 100); do echo '{}' > mnt/burst/data || exit 1; done`)
	for i := 1; i <= 100; i++ {
		if st := d.waitRun(t, "burst", i); st != "COMPLETED" {
			t.Fatalf("run %d: %s", i, st)
		}
	}
	d.ok(t, `mkdir mnt/sentinel`)
	var lists [][]string
	for _, r := range []*ovReader{r1, r2} {
		evs := r.until(t, `"type":"job.created","owner":"[^"]*","job":"sentinel"`)
		if missed := ovCheckSeq(t, evs); missed != 0 {
			t.Errorf("a reader that keeps up missed %d events", missed)
		}
		state := map[uint64]string{}
		var list []string
		for _, e := range evs {
			list = append(list, fmt.Sprintf("%s %s %d %s", e.Type, e.Job, e.Run, e.Status))
			if e.Job != "burst" {
				continue
			}
			prev := map[string]string{"run.queued": "", "run.started": "run.queued", "run.ended": "run.started"}[e.Type]
			if state[e.Run] != prev {
				t.Errorf("run %d: %s after %q", e.Run, e.Type, state[e.Run])
			}
			state[e.Run] = e.Type
		}
		for id := uint64(1); id <= 100; id++ {
			if state[id] != "run.ended" {
				t.Errorf("run %d: last event %q, want run.ended", id, state[id])
			}
		}
		lists = append(lists, list)
	}
	if !slices.Equal(lists[0], lists[1]) {
		t.Errorf("the two readers saw different events:\n%q\n%q", lists[0], lists[1])
	}
	rows := ovStatus(t, d.cat(t, "mnt/.jobfs/status"))
	if got := strings.Join(rows["root/never"], " "); got != "never root idle - - - -" {
		t.Errorf("status of a job that never ran = %q", got)
	}
	if got := rows["root/burst"]; len(got) < 5 || got[3] != "100" || got[4] != "COMPLETED" {
		t.Errorf("status of burst = %q, want run 100 COMPLETED", got)
	}
	// .jobfs is no job: it cannot be removed, renamed, taken or written.
	for _, c := range []string{`rmdir mnt/.jobfs`, `rm -f mnt/.jobfs/status`, `mv mnt/.jobfs mnt/x`,
		`mv mnt/never mnt/.jobfs`, `touch mnt/.jobfs/new`, `echo x > mnt/.jobfs/status`} {
		d.fails(t, c, "")
	}
	d.fails(t, `mkdir mnt/.jobfs2`, "Invalid argument")
	d.ok(t, `test -f mnt/.jobfs/status && test -f mnt/.jobfs/metrics && test -d mnt/never`)
	d.ok(t, `test -r mnt/.jobfs/status && ! test -w mnt/.jobfs/status && ! test -w mnt/.jobfs &&
		[ "$(stat -f -c '%b %l' mnt/.jobfs/events)" = "$(stat -f -c '%b %l' mnt/never)" ]`)
}

// A reader stopped with SIGSTOP never holds up the daemon: settings are
// written and a run completes meanwhile, and when it goes on it is told
// how many events it missed, as one line, numbered so nothing is lost
// unseen.
func TestOverviewStoppedReader(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "j", "#!/bin/sh\necho ran\n")
	r := ovStartReader(t, d, nil, 1)
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// 1300 settings, 100 to a shell command: each is a durable commit, and
	// one command of all of them outran the harness's 60 s on a loaded
	// machine (17 commits/s under another process's fsyncs).
	for from := 1; from <= 1300; from += 100 {
		d.ok(t, `for i in $(seq $A $B); do echo "note $i" > mnt/j/description || exit 1; done`,
			fmt.Sprint("A=", from), fmt.Sprint("B=", from+99))
	}
	d.trigger(t, "j", `{}`)
	if st := d.waitRun(t, "j", 1); st != "COMPLETED" {
		t.Fatalf("a run while the reader is stopped: %s", st)
	}
	d.wantFile(t, "mnt/j/description", "note 1300\n")
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	d.ok(t, `mkdir mnt/sentinel`)
	evs := r.until(t, `"job":"sentinel"`)
	missed := ovCheckSeq(t, evs)
	lines := 0
	for _, e := range evs {
		if e.Type == "missed" {
			lines++
		}
	}
	if missed == 0 || lines != 1 {
		t.Errorf("the stopped reader was told of %d missed events in %d lines; want some, in one line", missed, lines)
	}
	if last := evs[len(evs)-1]; last.Type != "job.created" {
		t.Errorf("the last event is %+v, want the sentinel's creation", last)
	}
	t.Logf("stopped reader: %d events, %d missed", len(evs)-lines, missed)
	m := d.cat(t, "mnt/.jobfs/metrics")
	if !regexp.MustCompile(`(?m)^jobfs_events_total\{outcome="missed"\} [1-9]`).MatchString(m) {
		t.Errorf("metrics do not count the missed events:\n%s", m)
	}
}

// ovFreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func ovFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// ovMetric is the value of the series of family name with the given labels
// (a counter, gauge, or a histogram's count).
func ovMetric(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// The metrics of a known workload (3 runs COMPLETED, 2 FAILED), scraped
// over HTTP and read from .jobfs/metrics, parsed by Prometheus's own
// parser and, where Debian's prometheus package is installed, checked by
// promtool.
func TestOverviewMetrics(t *testing.T) {
	addr := ovFreePort(t)
	d := startDaemon(t, daemonOpts{args: []string{"--metrics", addr}})
	d.scriptJob(t, "good", "#!/bin/sh\necho fine\n")
	d.scriptJob(t, "bad", "#!/bin/sh\nexit 3\n")
	for i := 1; i <= 3; i++ {
		d.trigger(t, "good", `{}`)
		d.waitRun(t, "good", i)
	}
	for i := 1; i <= 2; i++ {
		d.trigger(t, "bad", `{}`)
		d.waitRun(t, "bad", i)
	}
	d.fails(t, `mkdir mnt/bad:name`, "Invalid argument")
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	file := []byte(d.cat(t, "mnt/.jobfs/metrics"))
	for src, body := range map[string][]byte{"http": scraped, "file": file} {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: the exposition does not parse: %v\n%s", src, err, body)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"jobfs_runs_total", map[string]string{"owner": "root", "status": "COMPLETED"}, 3},
			{"jobfs_runs_total", map[string]string{"owner": "root", "status": "FAILED"}, 2},
			{"jobfs_runs_queued_total", map[string]string{"owner": "root"}, 5},
			{"jobfs_run_duration_seconds", map[string]string{"status": "COMPLETED"}, 3},
			{"jobfs_run_duration_seconds", map[string]string{"status": "FAILED"}, 2},
			{"jobfs_trigger_to_start_seconds", nil, 5},
			{"jobfs_store_commit_seconds", map[string]string{"op": "queue"}, 5},
			{"jobfs_store_commit_seconds", map[string]string{"op": "end"}, 5},
			{"jobfs_runs_active", nil, 0},
			{"jobfs_runs_queued", nil, 0},
			{"jobfs_stream_readers", map[string]string{"kind": "stream"}, 0},
		} {
			if got, ok := ovMetric(families, c.name, c.labels); !ok || got != c.want {
				t.Errorf("%s: %s%v = %v (found %v), want %v", src, c.name, c.labels, got, ok, c.want)
			}
		}
		for _, l := range []map[string]string{{"op": "mkdir", "errno": "22"}, {"op": "mkdir", "errno": "0"}} {
			if got, ok := ovMetric(families, "jobfs_fuse_operations_total", l); !ok || got < 1 {
				t.Errorf("%s: jobfs_fuse_operations_total%v = %v, want at least 1", src, l, got)
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("promtool not installed (apt-get install prometheus): the Go parser's check only")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scraped)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// --log-format json: every line the daemon writes is one JSON object, and
// a run's lines name its owner, job and run.
func TestOverviewLogFormatJSON(t *testing.T) {
	d := startDaemon(t, daemonOpts{args: []string{"--log-format", "json"}})
	d.scriptJob(t, "j", "#!/bin/sh\necho ran\n")
	d.trigger(t, "j", `{}`)
	d.waitRun(t, "j", 1)
	d.ok(t, `echo soon > mnt/j/config/timeout || true`)
	deadline := time.Now().Add(shTimeout) // the daemon's output is followed into d.out
	for !strings.Contains(d.out.String(), "config/timeout rejected") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	found := map[string]bool{}
	for _, l := range strings.Split(d.out.String(), "\n") {
		if l == "" || strings.HasPrefix(l, "=== jobfs ") || (testing.Verbose() && !strings.HasPrefix(l, "{")) {
			continue // the harness's header; --debug's FUSE lines
		}
		var rec struct {
			Time  time.Time `json:"time"`
			Level string    `json:"level"`
			Msg   string    `json:"msg"`
			Owner string    `json:"owner"`
			Job   string    `json:"job"`
			Run   uint64    `json:"run"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Time.IsZero() || rec.Level == "" {
			t.Errorf("a daemon log line is not a JSON record (%v): %q", err, l)
			continue
		}
		switch {
		case strings.HasPrefix(rec.Msg, "ready: "):
			found["ready"] = true
		case strings.HasPrefix(rec.Msg, "run 1 COMPLETED"):
			found["run"] = rec.Owner == "root" && rec.Job == "j" && rec.Run == 1
		case strings.HasPrefix(rec.Msg, "config/timeout rejected"):
			found["rejected"] = rec.Owner == "root" && rec.Job == "j" && rec.Level == "INFO"
		}
	}
	for _, k := range []string{"ready", "run", "rejected"} {
		if !found[k] {
			t.Errorf("no JSON line for %s with owner, job (and run):\n%s", k, d.out)
		}
	}
}

// A job's log is capped: past --max-job-log it moves to log.1, and the two
// hold the newest lines with none lost between them. A skipped tick every
// second is logged once, then counted in one line.
func TestOverviewJobLogRotatesAndFolds(t *testing.T) {
	d := startDaemon(t, daemonOpts{args: []string{"--max-job-log", "4K"}})
	d.scriptJob(t, "chatty", "#!/bin/sh\necho hi\n")
	d.ok(t, `for i in $(seq 300); do echo "${i}s" > mnt/chatty/config/timeout || exit 1; done`)
	short := strings.TrimSpace(d.cat(t, "mnt/chatty/shortname"))
	dir := filepath.Join(d.state, "jobs", short)
	cur, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, "log.1"))
	if err != nil {
		t.Fatalf("no log.1 after 300 settings with --max-job-log 4K: %v", err)
	}
	if len(cur) > 4096 || len(old) > 4096 {
		t.Errorf("log is %d bytes, log.1 %d: want at most 4096 each", len(cur), len(old))
	}
	if got := d.cat(t, "mnt/chatty/log"); got != string(cur) {
		t.Errorf("mnt/chatty/log is not the current log")
	}
	notes := regexp.MustCompile(`config/timeout set to (\d+)s\n`)
	var ns []int
	for _, m := range notes.FindAllStringSubmatch(string(old)+string(cur), -1) {
		n, _ := strconv.Atoi(m[1]) // \d+ of a few digits
		ns = append(ns, n)
	}
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			t.Fatalf("log.1 and log skip from timeout %d to %d", ns[i-1], ns[i])
		}
	}
	if len(ns) == 0 || ns[len(ns)-1] != 300 {
		t.Errorf("the newest timeout in the log is not 300s: %v", ns)
	}

	d.scriptJob(t, "tick", "#!/bin/sh\nexec sleep "+sleepArgs()+"\n")
	d.ok(t, `echo '@every 1s' > mnt/tick/config/schedule`)
	d.waitStatus(t, "tick", 1, "RUNNING")
	time.Sleep(4 * time.Second) // a few ticks find run 1 active
	d.ok(t, `rm mnt/tick/config/schedule && echo kill > mnt/tick/runs/1/ctl`)
	d.waitRun(t, "tick", 1)
	log := d.cat(t, "mnt/tick/log")
	end := strings.Index(log, "config/schedule reset")
	if end < 0 {
		t.Fatalf("the schedule's reset is not in the log:\n%s", log)
	}
	upTo := log[:end]
	if n := strings.Count(upTo, "skipped: a run is active (overlap skip)\n"); n != 1 {
		t.Errorf("%d skipped ticks logged in full, want 1 (the rest folded):\n%s", n, log)
	}
	m := regexp.MustCompile(`schedule: skipped (\d+) more ticks since \S+ \(the last at \S+\): a run is active \(overlap skip\)\n\S+ config/schedule reset`).FindStringSubmatch(log)
	if m == nil || m[1] == "0" {
		t.Errorf("no line counting the folded ticks before the next event:\n%s", log)
	}
}
