//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// usageNames are the lines of a usage file, in order.
var usageNames = []string{"cpu_seconds", "memory_peak_bytes", "io_read_bytes", "io_write_bytes", "pids_peak"}

// ruUsage parses a usage file: each of usageNames once, in order, with a
// number or `unknown` (kept as nil).
func ruUsage(t *testing.T, what, text string) map[string]*float64 {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(usageNames) {
		t.Fatalf("%s: %d lines, want %v:\n%s", what, len(lines), usageNames, text)
	}
	out := map[string]*float64{}
	for i, l := range lines {
		name, v, ok := strings.Cut(l, " ")
		if !ok || name != usageNames[i] {
			t.Fatalf("%s: line %d is %q, want %s VALUE", what, i+1, l, usageNames[i])
		}
		if v == "unknown" {
			out[name] = nil
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			t.Fatalf("%s: %s is %q, want a number or unknown", what, name, v)
		}
		out[name] = &f
	}
	return out
}

// ruStatus reads runs/<id>/status.json of job: it must pass python3 -m
// json.tool, and is decoded with its numbers kept as written.
func ruStatus(t *testing.T, d *daemon, job string, id int) map[string]any {
	t.Helper()
	p := "mnt/" + job + "/runs/" + strconv.Itoa(id) + "/status.json"
	d.ok(t, `python3 -m json.tool "$P" > /dev/null`, "P="+p)
	dec := json.NewDecoder(bytes.NewReader([]byte(d.cat(t, p))))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return doc
}

// ruText is how a single file shows a status.json value: a string or
// number on one line, null as an empty file.
func ruText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v + "\n"
	case json.Number:
		return v.String() + "\n"
	}
	return "?"
}

// ruAgree checks that status.json says what the single files of the run
// (and of each step) say. The run must have ended.
func ruAgree(t *testing.T, d *daemon, job string, id int) map[string]any {
	t.Helper()
	doc := ruStatus(t, d, job, id)
	dir := "mnt/" + job + "/runs/" + strconv.Itoa(id) + "/"
	for _, f := range []string{"status", "exit_code", "error", "trigger", "triggered_by", "started_at", "ended_at", "duration"} {
		if got, want := ruText(doc[f]), d.cat(t, dir+f); got != want {
			t.Errorf("%sstatus.json %s = %q, the file says %q", dir, f, got, want)
		}
	}
	if doc["id"] != json.Number(strconv.Itoa(id)) {
		t.Errorf("%sstatus.json id = %v", dir, doc["id"])
	}
	ruAgreeUsage(t, dir+"usage", doc["usage"], d.cat(t, dir+"usage"))
	steps, _ := doc["steps"].([]any)
	listed := strings.Fields(d.ok(t, `ls "$P"`, "P="+dir+"steps"))
	if len(steps) != len(listed) {
		t.Errorf("%sstatus.json has %d steps, steps/ lists %v", dir, len(steps), listed)
	}
	for _, s := range steps {
		s, _ := s.(map[string]any)
		label, _ := s["label"].(string)
		sdir := dir + "steps/" + label + "/"
		for _, f := range []string{"status", "exit_code", "error", "started_at", "ended_at"} {
			if got, want := ruText(s[f]), d.cat(t, sdir+f); got != want {
				t.Errorf("%s: status.json says %s = %q, the file says %q", sdir, f, got, want)
			}
		}
		ruAgreeUsage(t, sdir+"usage", s["usage"], d.cat(t, sdir+"usage"))
	}
	return doc
}

// ruAgreeUsage checks one usage object of status.json against its file.
func ruAgreeUsage(t *testing.T, path string, obj any, file string) {
	t.Helper()
	u, _ := obj.(map[string]any)
	var b strings.Builder
	for _, n := range usageNames {
		v, ok := u[n]
		if !ok {
			t.Errorf("%s: status.json lacks %s", path, n)
		}
		s := "unknown"
		if v != nil {
			s = strings.TrimSuffix(ruText(v), "\n")
		}
		b.WriteString(n + " " + s + "\n")
	}
	if b.String() != file {
		t.Errorf("%s in status.json:\n%s\nthe file:\n%s", path, b.String(), file)
	}
}

// TestRunUsage: a root daemon with cgroups. A two-step chain whose first
// step allocates and touches 200 MiB and whose second spins: each step's
// usage comes from its cgroup (memory peak at least 200 MiB, CPU time of
// the busy loop), the run's sums them (the peak of steps in sequence is
// the larger one); duration grows while a run is active and is fixed at
// its end; triggered_by names the writer; status.json parses and agrees
// with every single file; all of it is the same after a restart.
func TestRunUsage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	chainsImage(t, d, "ru_alloc", `#!/bin/sh
exec python3 -c '
b = bytearray(200 * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = 1
print("touched", len(b) // 4096, "pages")
'
`)
	chainsImage(t, d, "ru_busy", "#!/bin/sh\ni=0\nwhile [ $i -lt 300000 ]; do i=$((i+1)); done\necho spun $i\n")
	d.ok(t, `mkdir mnt/use && printf 'a <- ru_alloc\nb <- ru_busy\na -> b\n' > mnt/use/config/chains`)
	d.trigger(t, "use", `{}`)
	if st := d.waitRun(t, "use", 1); st != "COMPLETED" {
		t.Fatalf("run ended %s:\n%s", st, d.cat(t, "mnt/use/runs/1/log"))
	}
	log := d.cat(t, "mnt/use/runs/1/log")
	if strings.Contains(log, "limits not enforced") {
		t.Skipf("this host gives the daemon no cgroup: %s", log)
	}
	a := ruUsage(t, "steps/a/usage", d.cat(t, "mnt/use/runs/1/steps/a/usage"))
	b := ruUsage(t, "steps/b/usage", d.cat(t, "mnt/use/runs/1/steps/b/usage"))
	run := ruUsage(t, "usage", d.cat(t, "mnt/use/runs/1/usage"))
	t.Logf("step a: %s", d.cat(t, "mnt/use/runs/1/steps/a/usage"))
	t.Logf("step b: %s", d.cat(t, "mnt/use/runs/1/steps/b/usage"))
	for _, u := range []map[string]*float64{a, b, run} {
		for _, n := range []string{"cpu_seconds", "memory_peak_bytes"} {
			if u[n] == nil {
				t.Fatalf("%s unknown with cgroups", n)
			}
		}
	}
	if *a["memory_peak_bytes"] < 200<<20 {
		t.Errorf("step a touched 200 MiB, memory_peak_bytes = %.0f", *a["memory_peak_bytes"])
	}
	if *b["cpu_seconds"] <= 0 || *a["cpu_seconds"] <= 0 {
		t.Errorf("cpu_seconds: step a %v, step b %v: want > 0", *a["cpu_seconds"], *b["cpu_seconds"])
	}
	if got, want := *run["cpu_seconds"], *a["cpu_seconds"]+*b["cpu_seconds"]; got < want-2e-6 || got > want+2e-6 {
		t.Errorf("run cpu_seconds %v, steps sum to %v", got, want)
	}
	if got, want := *run["memory_peak_bytes"], max(*a["memory_peak_bytes"], *b["memory_peak_bytes"]); got != want {
		t.Errorf("run memory_peak_bytes %v, want the larger step's %v (they ran one after the other)", got, want)
	}
	d.wantFile(t, "mnt/use/runs/1/triggered_by", "root\n")
	d.wantFile(t, "mnt/use/runs/1/trigger", "manual\n")
	doc := ruAgree(t, d, "use", 1)
	if doc["job"] != "use" || doc["owner"] != "root" {
		t.Errorf("status.json job %v owner %v, want use and root", doc["job"], doc["owner"])
	}
	d.ok(t, `ls mnt/use/runs/1 | grep -qx usage && ls mnt/use/runs/1/steps/a | grep -qx usage && ls mnt/use/runs/1 | grep -qx status.json`)

	// duration: empty before the start, growing while active, fixed after.
	d.scriptJob(t, "hold", "#!/bin/sh\nexec sleep "+sleepArgs()+"\n")
	d.trigger(t, "hold", `{}`)
	d.waitStatus(t, "hold", 1, "RUNNING")
	first := ruSeconds(t, d.cat(t, "mnt/hold/runs/1/duration"))
	waitFor(t, "duration to grow while the run is active", func() bool {
		return ruSeconds(t, d.cat(t, "mnt/hold/runs/1/duration")) > first
	})
	active := ruStatus(t, d, "hold", 1)
	if active["status"] != "RUNNING" || active["duration"] == nil || active["ended_at"] != nil {
		t.Errorf("status.json of an active run: status %v duration %v ended_at %v", active["status"], active["duration"], active["ended_at"])
	}
	d.ok(t, `echo kill > mnt/hold/runs/1/ctl`)
	d.waitRun(t, "hold", 1)
	end := d.cat(t, "mnt/hold/runs/1/duration")
	if ruSeconds(t, end) < first {
		t.Errorf("duration at the end %q, %v while it ran", end, first)
	}
	d.wantFile(t, "mnt/hold/runs/1/duration", end) // fixed once ended
	ruAgree(t, d, "hold", 1)

	// Kept in the run records: the same after a restart.
	var before []string
	files := []string{"usage", "steps/a/usage", "steps/b/usage", "duration", "triggered_by", "status.json"}
	for _, f := range files {
		before = append(before, d.cat(t, "mnt/use/runs/1/"+f))
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("jobfs exited %d on SIGTERM", code)
	}
	d.restart(t)
	for i, f := range files {
		d.wantFile(t, "mnt/use/runs/1/"+f, before[i])
	}
}

func ruSeconds(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return f
}

// TestRunTriggeredBy: on an --allow-other mount, a run names the user
// whose write started it, not the job's owner: alice on her own job, bob
// as a runner of it, root; trigger stays manual for all.
func TestRunTriggeredBy(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	d := shareDaemon(t)
	A, B := shareAs(alice), shareAs(bob)
	A.job(t, d, "etl", "#!/bin/sh\necho hi\n")
	A.ok(t, d, `echo runner > "mnt/etl/shared/@$U" && echo '{}' > mnt/etl/data`, "U="+bob.name)
	atA := "@" + alice.name + "/etl"
	if st := d.waitRun(t, atA, 1); st != "COMPLETED" {
		t.Fatalf("run 1 ended %s", st)
	}
	B.ok(t, d, `echo '{}' > "mnt/$J/data"`, "J="+atA)
	if st := d.waitRun(t, atA, 2); st != "COMPLETED" {
		t.Fatalf("run 2 ended %s", st)
	}
	d.ok(t, `echo '{}' > "mnt/$J/data"`, "J="+atA)
	if st := d.waitRun(t, atA, 3); st != "COMPLETED" {
		t.Fatalf("run 3 ended %s", st)
	}
	A.check(t, d, nil,
		shareOut(`cat mnt/etl/runs/1/triggered_by mnt/etl/runs/2/triggered_by mnt/etl/runs/3/triggered_by`,
			alice.name+"\n"+bob.name+"\nroot\n"),
		shareOut(`cat mnt/etl/runs/[0-9]*/trigger`, "manual\nmanual\nmanual\n"),
		shareDo(`python3 -m json.tool mnt/etl/runs/2/status.json > /dev/null`))
	B.check(t, d, shareEnv("J", atA), shareOut(`cat "mnt/$J/runs/2/triggered_by"`, bob.name+"\n"))
	for id, who := range map[int]string{1: alice.name, 2: bob.name, 3: "root"} {
		doc := ruAgree(t, d, atA, id)
		if doc["owner"] != alice.name || doc["triggered_by"] != who {
			t.Errorf("run %d: status.json owner %v triggered_by %v, want %s and %s", id, doc["owner"], doc["triggered_by"], alice.name, who)
		}
	}
}

// TestRunUsageRootless: a normal user's daemon without a cgroup of its own
// measures nothing: every usage field says unknown (never 0), while
// duration and triggered_by are there as everywhere.
func TestRunUsageRootless(t *testing.T) {
	rootlessSkip(t)
	u := rootlessUser(t)
	d := startUserDaemon(t, u, "")
	status, log := d.run(t, "spin", "#!/bin/sh\ni=0\nwhile [ $i -lt 10000 ]; do i=$((i+1)); done\n")
	if status != "COMPLETED" {
		t.Fatalf("run ended %s:\n%s", status, log)
	}
	if !strings.Contains(log, "limits not enforced") {
		t.Skipf("this user's daemon has a cgroup here:\n%s", log)
	}
	want := "cpu_seconds unknown\nmemory_peak_bytes unknown\nio_read_bytes unknown\nio_write_bytes unknown\npids_peak unknown\n"
	for _, p := range []string{"mnt/spin/runs/1/usage", "mnt/spin/runs/1/steps/script/usage"} {
		if got := d.ok(t, `cat "$P"`, "P="+p); got != want {
			t.Errorf("%s without cgroups:\n%s\nwant:\n%s", p, got, want)
		}
	}
	if got := d.ok(t, `cat mnt/spin/runs/1/triggered_by`); got != u.name+"\n" {
		t.Errorf("triggered_by = %q, want %s", got, u.name)
	}
	if dur := d.ok(t, `cat mnt/spin/runs/1/duration`); ruSeconds(t, dur) < 0 {
		t.Errorf("duration = %q", dur)
	}
	js := d.ok(t, `python3 -m json.tool mnt/spin/runs/1/status.json`)
	if !strings.Contains(js, `"memory_peak_bytes": null`) || strings.Contains(js, `"cpu_seconds": 0`) {
		t.Errorf("status.json without cgroups: usage must be null, never 0:\n%s", js)
	}
}
