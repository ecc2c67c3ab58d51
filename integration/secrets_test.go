//go:build linux

package integration

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 6: secrets (config/env) and schedules (config/schedule,
// config/enabled, config/overlap, next_run), through the mount.

// TestSecretEnv: write-only env files, their injection into a step, the
// masking of their values in every log, their size limits, and the failure
// of a run after config/type changed under them.
func TestSecretEnv(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	t.Run("write list deny remove", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/r`)
		token := secRandom(t, 20)
		d.ok(t, `printf '%s' "$TOKEN" > mnt/r/config/env/api_token`, "TOKEN="+token)

		ls := d.ok(t, `ls -l mnt/r/config/env`)
		if !regexp.MustCompile(`(?m)^-rw-r--r-- +\d+ \S+ \S+ +\d+ .* api_token$`).MatchString(ls) {
			t.Errorf("ls -l config/env = %q, want a line -rw-r--r-- ... api_token", ls)
		}
		if strings.Contains(ls, token) {
			t.Errorf("ls -l config/env shows the value: %q", ls)
		}
		// Issue 14: a read gives the sealed form, never the value.
		if got := d.cat(t, "mnt/r/config/env/api_token"); !strings.HasPrefix(got, "jobfs-sealed:v1:") || strings.Contains(got, token) {
			t.Errorf("cat config/env/api_token = %q, want its sealed form", got)
		}

		d.fails(t, `echo x > mnt/r/config/env/API_TOKEN`, "Invalid argument")
		if got := secLastLog(t, d, "r"); !strings.Contains(got, "config/env/API_TOKEN rejected: ") || !strings.Contains(got, "lower case") {
			t.Errorf("after the upper-case name, tail -n 1 log = %q, want config/env/API_TOKEN rejected: ... lower case ...", got)
		}
		if got := d.ok(t, `ls mnt/r/config/env`); got != "api_token\n" {
			t.Errorf("ls config/env = %q, want only api_token", got)
		}

		d.ok(t, `rm mnt/r/config/env/api_token`)
		if got := d.ok(t, `ls -A mnt/r/config/env`); got != "" {
			t.Errorf("after rm, ls -A config/env = %q, want nothing", got)
		}
		d.fails(t, `ls mnt/r/config/env/api_token`, "No such file or directory")
		if got := d.cat(t, "mnt/r/log"); strings.Contains(got, token) {
			t.Errorf("the job log holds the value:\n%s", got)
		}
	})

	t.Run("inject and mask", func(t *testing.T) {
		t.Parallel()
		// Every line the step prints is known, so the log can be compared
		// whole: both names of api_token, abcdefgh printed in two writes with
		// a pause between, a 3-byte value (below the masking threshold, so it
		// is shown: documented in the README) and a value written with echo
		// (its newline dropped).
		d.scriptJob(t, "mask", `#!/bin/sh
echo "lower=$api_token"
echo "upper=$API_TOKEN"
printf 'abcd'; sleep 0.2; printf 'efgh\n'
echo "short=$short"
case "$nl" in
v*e) echo "nl=stripped" ;;
*) echo "nl=kept ${#nl}" ;;
esac
`)
		token := secRandom(t, 24) // 48 hex digits
		d.ok(t, `printf '%s' "$TOKEN" > mnt/mask/config/env/api_token`, "TOKEN="+token)
		d.ok(t, `printf 'abcdefgh' > mnt/mask/config/env/split`)
		d.ok(t, `printf 'xyz' > mnt/mask/config/env/short`)
		d.ok(t, `echo value > mnt/mask/config/env/nl`)
		if got := d.ok(t, `ls mnt/mask/config/env`); got != "api_token\nnl\nshort\nsplit\n" {
			t.Errorf("ls config/env = %q, want api_token nl short split", got)
		}

		d.trigger(t, "mask", "{}")
		if got := d.waitRun(t, "mask", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/mask/runs/1/log"))
		}
		want := "lower=***\nupper=***\n***\nshort=xyz\nnl=stripped\n"
		d.wantFile(t, "mnt/mask/runs/1/log", want)
		d.wantFile(t, "mnt/mask/runs/1/stream", want)
		steps := strings.Fields(d.ok(t, `ls mnt/mask/runs/1/steps`))
		if len(steps) != 1 {
			t.Fatalf("ls runs/1/steps = %q, want one step", steps)
		}
		d.wantFile(t, "mnt/mask/runs/1/steps/"+steps[0]+"/log", want)

		secrets := []string{token, "abcdefgh"}
		for _, s := range secrets {
			if log := d.cat(t, "mnt/mask/log"); strings.Contains(log, s) {
				t.Errorf("the job log holds the value %q:\n%s", s, log)
			}
		}
		// Nothing under the state folder holds a value in clear: the bbolt
		// file, the job and run logs, the run folders.
		if found := secFilesHolding(t, d.state, secrets...); len(found) > 0 {
			t.Errorf("files under state/ hold a value in clear: %v", found)
		}
		if out := d.out.String(); strings.Contains(out, token) {
			t.Errorf("the daemon's output holds the value of api_token")
		}
		// The same with strings(1), as a person would look. Files of other
		// runs may come and go meanwhile: strings' complaints are ignored,
		// and the job log's lines show that the scan saw the files.
		if _, err := exec.LookPath("strings"); err != nil {
			t.Skip("strings is not installed (apt-get install -y binutils); the byte-level check above passed")
		}
		d.ok(t, `find state -type f -exec strings -a -n 4 {} + > strings.out 2>/dev/null; true`)
		if out := d.ok(t, `grep -c -F -e "config/env/api_token set" strings.out || true`); strings.TrimSpace(out) == "0" {
			t.Errorf("strings over state/ did not see the job log")
		}
		if out := d.ok(t, `grep -c -F -e "$A" -e "$B" strings.out || true`, "A="+token, "B=abcdefgh"); strings.TrimSpace(out) != "0" {
			t.Errorf("strings over the files of state/ found a value in %s line(s)", strings.TrimSpace(out))
		}
	})

	t.Run("mask live", func(t *testing.T) {
		t.Parallel()
		// While the step sleeps between the two halves of a secret, the
		// first half is not in the log (it could be the start of the
		// secret); a stream followed from the start masks it too.
		d.scriptJob(t, "live", "#!/bin/sh\nprintf 'abcd'\nsleep 3\nprintf 'efgh\\n'\necho done\n")
		d.ok(t, `printf 'abcdefgh' > mnt/live/config/env/split`)
		// Not d.sh: it may call t.Fatal, which belongs to the test's goroutine.
		stream := exec.Command("sh", "-c", `printf '{}\n' > mnt/live/data && cat mnt/live/runs/1/stream`)
		stream.Dir = d.dir
		var streamOut, streamErr bytes.Buffer
		stream.Stdout, stream.Stderr = &streamOut, &streamErr
		if err := stream.Start(); err != nil {
			t.Fatal(err)
		}
		streamed := make(chan error, 1)
		go func() { streamed <- stream.Wait() }()
		d.waitStatus(t, "live", 1, "RUNNING", "COMPLETED", "FAILED")
		time.Sleep(1500 * time.Millisecond)
		for _, p := range []string{"mnt/live/runs/1/log", "mnt/live/runs/1/steps/script/log"} {
			if r := d.sh(t, `cat "$P"`, "P="+p); strings.Contains(r.out, "abcd") {
				t.Errorf("during the run, %s = %q: the first half of a secret is shown", p, r.out)
			}
		}
		select {
		case err := <-streamed:
			if err != nil || streamOut.String() != "***\ndone\n" {
				t.Errorf("cat runs/1/stream from the trigger on: %v, stdout %q, stderr %q; want ***, done", err, streamOut.String(), streamErr.String())
			}
		case <-time.After(runTimeout):
			stream.Process.Kill()
			<-streamed
			t.Errorf("cat runs/1/stream did not end within %v of the trigger", runTimeout)
		}
		if got := d.waitRun(t, "live", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED", got)
		}
		d.wantFile(t, "mnt/live/runs/1/log", "***\ndone\n")
	})

	t.Run("sizes", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "vals", "#!/bin/sh\necho \"big=${#big} edge=${#edge}\"\n")
		// 64 KiB exactly; 64 KiB and the newline echo would add (dropped);
		// 64 KiB + 2 bytes, refused at the write.
		d.ok(t, `head -c 49152 /dev/urandom | base64 -w 0 > v64k && test "$(wc -c < v64k)" = 65536`)
		d.ok(t, `cat v64k > mnt/vals/config/env/big`)
		// 64 KiB and a newline: the value is 64 KiB once its newline is
		// dropped (README: "values up to 64 KiB, one trailing newline
		// dropped"), so it is accepted.
		wantEdge := 65536
		if r := d.sh(t, `{ cat v64k; echo; } > v64k_nl && cat v64k_nl > mnt/vals/config/env/edge`); r.code != 0 {
			t.Errorf("64 KiB and a trailing newline refused; the value without its newline is 64 KiB:\n%s\njob log: %s", r, secLastLog(t, d, "vals"))
			wantEdge = 0
		}
		r := d.fails(t, `{ cat v64k; printf 'xy'; } > v64k_2 && cat v64k_2 > mnt/vals/config/env/big`, "File too large")
		if strings.Contains(r.err, "Invalid argument") {
			t.Errorf("the refusal of 64 KiB + 2 bytes names EINVAL, want EFBIG:\n%s", r)
		}
		if got := secLastLog(t, d, "vals"); !strings.Contains(got, "config/env/big rejected: ") || !strings.Contains(got, "65536") {
			t.Errorf("tail -n 1 log = %q, want config/env/big rejected: ... 65536 byte limit", got)
		}
		d.trigger(t, "vals", "{}")
		if got := d.waitRun(t, "vals", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s\nerror: %s", got, d.cat(t, "mnt/vals/runs/1/log"), d.cat(t, "mnt/vals/runs/1/error"))
		}
		// The refused write kept the 64 KiB value; edge lost its newline.
		d.wantFile(t, "mnt/vals/runs/1/log", fmt.Sprintf("big=65536 edge=%d\n", wantEdge))
	})

	t.Run("type change", func(t *testing.T) {
		t.Parallel()
		secImage(t, d, "secimg", "#!/bin/sh\necho \"image sees $API_TOKEN and $api_token\"\n")
		d.scriptJob(t, "tc", "#!/bin/sh\necho \"script sees $API_TOKEN\"\n")
		token := secRandom(t, 16)
		d.ok(t, `printf '%s' "$TOKEN" > mnt/tc/config/env/api_token`, "TOKEN="+token)
		d.trigger(t, "tc", "{}")
		if got := d.waitRun(t, "tc", 1); got != "COMPLETED" {
			t.Fatalf("run 1 ended %s, want COMPLETED; error: %s", got, d.cat(t, "mnt/tc/runs/1/error"))
		}
		d.wantFile(t, "mnt/tc/runs/1/log", "script sees ***\n")

		d.ok(t, `echo chains > mnt/tc/config/type && echo secimg > mnt/tc/config/chains`)
		// A trigger after the type change is refused in write(), and
		// records no run, until the value is set again.
		for range 2 {
			d.fails(t, `printf '{}\n' > mnt/tc/data`, "Invalid argument")
			if line := d.ok(t, `tail -n 1 mnt/tc/log`); !strings.Contains(line, "config/env was set for runtime script; set again: api_token") {
				t.Errorf("job log's last line %q, want the reason", line)
			}
		}
		d.ok(t, `test ! -e mnt/tc/runs/2`)

		d.ok(t, `printf '%s' "$TOKEN" > mnt/tc/config/env/api_token`, "TOKEN="+token)
		d.trigger(t, "tc", "{}")
		if got := d.waitRun(t, "tc", 2); got != "COMPLETED" {
			t.Fatalf("run 2 after setting env again ended %s, want COMPLETED; error: %s", got, d.cat(t, "mnt/tc/runs/2/error"))
		}
		if got := d.cat(t, "mnt/tc/runs/2/log"); !strings.Contains(got, "image sees *** and ***\n") {
			t.Errorf("runs/2/log = %q, want image sees *** and ***", got)
		}
	})
}

// TestSecretMasterKey: state/master.key is made 0600 and 32 bytes at the
// first start; a key readable by others stops the next start with a
// message naming the file; once fixed, the daemon starts and the values
// set before still open.
func TestSecretMasterKey(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	key := filepath.Join(d.state, "master.key")
	st, err := os.Stat(key)
	if err != nil {
		t.Fatalf("after the first start: %v", err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != 32 || !st.Mode().IsRegular() {
		t.Errorf("state/master.key: mode %v, %d bytes; want a regular file -rw------- of 32 bytes", st.Mode(), st.Size())
	}

	token := secRandom(t, 16)
	// The step compares the value it sees with the one written.
	d.scriptJob(t, "k", fmt.Sprintf("#!/bin/sh\n[ \"$api_token\" = %q ] && echo match || { echo mismatch; exit 1; }\n", token))
	d.ok(t, `printf '%s' "$TOKEN" > mnt/k/config/env/api_token`, "TOKEN="+token)
	d.trigger(t, "k", "{}")
	if got := d.waitRun(t, "k", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/k/runs/1/log"))
	}

	if code := d.stop(t); code != 0 {
		t.Fatalf("jobfs exited %d on SIGTERM", code)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, d.args()...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Errorf("jobfs started with state/master.key mode 0644 (err %v):\n%s", err, out)
		if d.mounted() {
			exec.Command("umount", "-l", d.mnt).Run()
		}
	} else if !strings.Contains(string(out), key) || !strings.Contains(string(out), "chmod 600") {
		t.Errorf("the refusal does not name %s and its fix:\n%s", key, out)
	}
	if d.mounted() {
		t.Errorf("%s is mounted after the refused start", d.mnt)
	}

	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	d.restart(t)
	d.trigger(t, "k", "{}")
	if got := d.waitRun(t, "k", 2); got != "COMPLETED" {
		t.Fatalf("run 2 after the restart ended %s, want COMPLETED; log:\n%s\nerror: %s", got, d.cat(t, "mnt/k/runs/2/log"), d.cat(t, "mnt/k/runs/2/error"))
	}
	d.wantFile(t, "mnt/k/runs/2/log", "match\n")
}

// TestSchedule: config/schedule fires with trigger schedule, next_run,
// config/enabled, the skip and queue overlap policies and refused lines.
func TestSchedule(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	rfc3339 := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$`)

	t.Run("fires and is disabled", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "every", "#!/bin/sh\necho tick\n")
		d.ok(t, `echo '@every 1s' > mnt/every/config/schedule`)
		d.wantFile(t, "mnt/every/config/schedule", "@every 1s\n")
		next := d.cat(t, "mnt/every/next_run")
		if !rfc3339.MatchString(next) {
			t.Errorf("next_run = %q, want an RFC 3339 UTC time", next)
		} else if at, _ := time.Parse(time.RFC3339, strings.TrimSpace(next)); at.Before(time.Now().Add(-5*time.Second)) || at.After(time.Now().Add(5*time.Second)) {
			t.Errorf("next_run = %s for @every 1s, now is %s", next, time.Now().UTC().Format(time.RFC3339))
		}
		secWithin(t, 10*time.Second, "two scheduled runs of @every 1s", func() bool { return len(secRunIDs(t, d, "every")) >= 2 })
		d.waitRun(t, "every", 1)
		d.wantFile(t, "mnt/every/runs/1/trigger", "schedule\n")
		d.wantFile(t, "mnt/every/runs/2/trigger", "schedule\n")

		d.ok(t, `echo false > mnt/every/config/enabled`)
		d.wantFile(t, "mnt/every/next_run", "")
		time.Sleep(time.Second) // a tick that passed the check before the write
		before := secRunIDs(t, d, "every")
		time.Sleep(3 * time.Second)
		if after := secRunIDs(t, d, "every"); !slices.Equal(before, after) {
			t.Errorf("config/enabled is false, yet runs were started: %v, then %v", before, after)
		}
		if log := d.cat(t, "mnt/every/log"); !regexp.MustCompile(`schedule: tick \S+ skipped: config/enabled is false\n`).MatchString(log) {
			t.Errorf("job log has no line schedule: tick ... skipped: config/enabled is false:\n%s", log)
		}

		d.ok(t, `echo > mnt/every/data`)
		manual := len(before) + 1
		if got := d.waitRun(t, "every", manual); got != "COMPLETED" {
			t.Fatalf("manual run %d while disabled ended %s, want COMPLETED", manual, got)
		}
		d.wantFile(t, fmt.Sprintf("mnt/every/runs/%d/trigger", manual), "manual\n")
		d.ok(t, `rm mnt/every/config/schedule`)
	})

	// A step that takes 3 s under @every 1s: skip starts nothing while it
	// runs; queue keeps one tick waiting. Each run prints when it started
	// and ended, to the nanosecond, so that overlaps show.
	const slow = "#!/bin/sh\necho \"start $(date +%s.%N)\"\nsleep 3\necho \"end $(date +%s.%N)\"\n"

	t.Run("overlap skip", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "skip", slow)
		d.wantFile(t, "mnt/skip/config/overlap", "skip\n")
		d.ok(t, `echo '@every 1s' > mnt/skip/config/schedule`)
		d.waitRun(t, "skip", 2)
		// Disabling stops the ticks while a run is active.
		d.ok(t, `echo false > mnt/skip/config/enabled`)
		ids := secSettle(t, d, "skip")
		secNoOverlap(t, d, "skip", ids)
		if log := d.cat(t, "mnt/skip/log"); !strings.Contains(log, "skipped: a run is active (overlap skip)\n") {
			t.Errorf("job log has no line ... skipped: a run is active (overlap skip):\n%s", log)
		}
	})

	t.Run("overlap queue", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "queue", slow)
		d.ok(t, `echo queue > mnt/queue/config/overlap`)
		d.wantFile(t, "mnt/queue/config/overlap", "queue\n")
		d.ok(t, `echo '@every 1s' > mnt/queue/config/schedule`)
		// Disable the job while a tick waits for run 2: the waiting tick is
		// a scheduled run, and config/enabled false skips scheduled runs.
		d.waitStatus(t, "queue", 2, "RUNNING")
		secWithin(t, 10*time.Second, "a tick queued behind run 2", func() bool {
			log := d.cat(t, "mnt/queue/log")
			_, after, ok := strings.Cut(log, "run 2 started\n")
			return ok && strings.Contains(after, "queued until the active run ends")
		})
		d.ok(t, `echo false > mnt/queue/config/enabled`)
		ids := secSettle(t, d, "queue")
		secNoOverlap(t, d, "queue", ids)
		log := d.cat(t, "mnt/queue/log")
		if !strings.Contains(log, "queued until the active run ends (overlap queue)\n") {
			t.Errorf("job log has no line ... queued until the active run ends (overlap queue):\n%s", log)
		}
		if !strings.Contains(log, "skipped: a run already waits for the active one (overlap queue)\n") {
			t.Errorf("job log has no line ... skipped: a run already waits for the active one (overlap queue):\n%s", log)
		}
		// At most one tick waits: between two scheduled runs, one queued tick.
		waiting := 0
		runQueued := regexp.MustCompile(`run \d+ queued \(schedule\)`)
		for _, l := range strings.Split(log, "\n") {
			switch {
			case runQueued.MatchString(l):
				waiting = 0
			case strings.Contains(l, "queued until the active run ends"):
				if waiting++; waiting > 1 {
					t.Errorf("two ticks wait at once:\n%s", log)
				}
			}
		}
		for _, id := range ids {
			if got := d.cat(t, fmt.Sprintf("mnt/queue/runs/%d/trigger", id)); got != "schedule\n" {
				t.Errorf("run %d: trigger = %q, want schedule", id, got)
			}
		}
		if _, after, _ := strings.Cut(log, "config/enabled set to false\n"); runQueued.MatchString(after) {
			t.Errorf("a tick queued before config/enabled was set to false started a scheduled run after it (runs %v):\n%s", ids, log)
		}
	})

	t.Run("refused and accepted lines", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/cron && echo '@every 1h' > mnt/cron/config/schedule`)
		for _, c := range []struct{ line, reason string }{
			{"61 * * * *", "61"},
			{"* * * *", "5 fields"},
			{"TZ=Mars/Olympus * * * * *", "Mars/Olympus"},
		} {
			d.fails(t, `echo "$L" > mnt/cron/config/schedule`, "Invalid argument", "L="+c.line)
			d.wantFile(t, "mnt/cron/config/schedule", "@every 1h\n")
			if got := secLastLog(t, d, "cron"); !strings.Contains(got, "config/schedule rejected: ") || !strings.Contains(got, c.reason) {
				t.Errorf("after %q, tail -n 1 log = %q, want config/schedule rejected: ... %s ...", c.line, got, c.reason)
			}
		}

		d.ok(t, `echo '0 9 * * Mon-Fri  # weekdays at nine' > mnt/cron/config/schedule`)
		d.wantFile(t, "mnt/cron/config/schedule", "0 9 * * Mon-Fri  # weekdays at nine\n")
		want := time.Now().UTC().Truncate(time.Hour)
		for want = want.Add(time.Hour); want.Hour() != 9 || want.Weekday() == time.Saturday || want.Weekday() == time.Sunday; want = want.Add(time.Hour) {
		}
		next := d.cat(t, "mnt/cron/next_run")
		if next != want.Format(time.RFC3339)+"\n" {
			t.Errorf("next_run for 0 9 * * Mon-Fri = %q, want %s", next, want.Format(time.RFC3339))
		}

		d.ok(t, `echo 'TZ=Europe/Oslo */15 * * * *' > mnt/cron/config/schedule`)
		next = d.cat(t, "mnt/cron/next_run")
		at, err := time.Parse(time.RFC3339, strings.TrimSpace(next))
		if !rfc3339.MatchString(next) || err != nil || at.Minute()%15 != 0 || at.Second() != 0 || at.After(time.Now().Add(15*time.Minute)) {
			t.Errorf("next_run for TZ=Europe/Oslo */15 * * * * = %q, want the next quarter hour in UTC", next)
		}
	})
}

// TestScheduleMissedTicks: ticks that fell while the daemon was down are
// counted in the job log and not replayed.
func TestScheduleMissedTicks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "m", "#!/bin/sh\necho tick\n")
	short := strings.TrimSpace(d.cat(t, "mnt/m/shortname"))
	d.ok(t, `echo '@every 1s' > mnt/m/config/schedule`)
	secWithin(t, 10*time.Second, "two scheduled runs", func() bool { return len(secRunIDs(t, d, "m")) >= 2 })

	if code := d.stop(t); code != 0 {
		t.Fatalf("jobfs exited %d on SIGTERM", code)
	}
	// The job log on disk (jobs/doc.go: state/jobs/<shortname>/log) names
	// every run the daemon started.
	lastID := func() int {
		b, err := os.ReadFile(filepath.Join(d.state, "jobs", short, "log"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range regexp.MustCompile(`run (\d+) queued`).FindAllStringSubmatch(string(b), -1) {
			n = max(n, secAtoi(t, m[1]))
		}
		return n
	}
	before := lastID()
	time.Sleep(3 * time.Second)
	d.restart(t)
	time.Sleep(1 * time.Second)
	ids := secRunIDs(t, d, "m")
	if n := len(ids); n == 0 || ids[n-1]-before > 2 {
		t.Errorf("the last run before the stop was %d; one second after the restart runs are %v: missed ticks replayed?", before, ids)
	}
	log := d.cat(t, "mnt/m/log")
	m := regexp.MustCompile(`schedule: missed (\d+) scheduled run\(s\) while jobfs was down; not replayed`).FindStringSubmatch(log)
	if m == nil {
		t.Errorf("job log does not say how many ticks were missed:\n%s", log)
	} else if n := secAtoi(t, m[1]); n < 2 || n > 30 {
		t.Errorf("job log says %d ticks were missed; @every 1s and about 3 s down (plus the stop and start): want 2 to 30", n)
	}
	d.ok(t, `echo false > mnt/m/config/enabled`)
	secSettle(t, d, "m")
}

// secRandom returns n random bytes in hex.
func secRandom(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// secLastLog returns the last line of the job's log.
func secLastLog(t *testing.T, d *daemon, job string) string {
	t.Helper()
	return d.ok(t, `tail -n 1 "mnt/$J/log"`, "J="+job)
}

// secImage makes repo image <repos>/<daemon user>/name with entrypoint.
func secImage(t *testing.T, d *daemon, name, entrypoint string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(d.repos, u.Username, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "entrypoint"), []byte(entrypoint), 0o755); err != nil {
		t.Fatal(err)
	}
}

// secFilesHolding lists the files below dir whose bytes contain one of
// values.
func secFilesHolding(t *testing.T, dir string, values ...string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil // a run folder removed meanwhile
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				found = append(found, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// secRunIDs lists the ids in runs/, sorted.
func secRunIDs(t *testing.T, d *daemon, job string) []int {
	t.Helper()
	var ids []int
	for _, f := range strings.Fields(d.ok(t, `ls "mnt/$J/runs"`, "J="+job)) {
		if n, err := strconv.Atoi(f); err == nil {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	return ids
}

// secSettle waits until every run of job has ended and no new one came
// for 1.5 s (a queued tick starts when the active run ends), and returns
// the ids.
func secSettle(t *testing.T, d *daemon, job string) []int {
	t.Helper()
	for deadline := time.Now().Add(runTimeout); time.Now().Before(deadline); {
		ids := secRunIDs(t, d, job)
		for _, id := range ids {
			d.waitRun(t, job, id)
		}
		time.Sleep(1500 * time.Millisecond)
		if slices.Equal(ids, secRunIDs(t, d, job)) {
			return ids
		}
	}
	t.Fatalf("runs of %s still starting after %v", job, runTimeout)
	return nil
}

// secNoOverlap fails the test if two of the runs (each printing "start
// <unix time>" and "end <unix time>") were active at once.
func secNoOverlap(t *testing.T, d *daemon, job string, ids []int) {
	t.Helper()
	type span struct {
		id         int
		start, end float64
	}
	var spans []span
	re := regexp.MustCompile(`(?m)^start (\d+\.\d+)\nend (\d+\.\d+)$`)
	for _, id := range ids {
		log := d.cat(t, fmt.Sprintf("mnt/%s/runs/%d/log", job, id))
		m := re.FindStringSubmatch(log)
		if m == nil {
			t.Errorf("run %d: log %q, want start ... and end ... lines", id, log)
			continue
		}
		s, _ := strconv.ParseFloat(m[1], 64)
		e, _ := strconv.ParseFloat(m[2], 64)
		spans = append(spans, span{id, s, e})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if p, c := spans[i-1], spans[i]; c.start < p.end {
			t.Errorf("run %d started %.3f s before run %d ended: the runs overlap", c.id, p.end-c.start, p.id)
		}
	}
	if len(spans) < 2 {
		t.Errorf("only %d complete runs to compare, want at least 2", len(spans))
	}
}

// secWithin polls cond for at most limit (a bound this test states, not
// the harness's generic one). The bounds are loose: @every 1s should show
// two runs in about 2 s, but a loaded CI machine is slow to start runs.
func secWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(pollEvery) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %v", what, limit)
}

func secAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
