//go:build linux

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The tests of this file check issue 13's "hang or exhaust the daemon"
// cases as a throwaway user on an --allow-other mount: every input that can
// grow the daemon's memory (writes, truncates, open handles) is bounded per
// handle and per user, refused with an errno that reads right and a reason
// line in the job log, and never panics with a lock held.

// boundsPython is the interpreter the throwaway users run: /usr/bin's, not
// a shim below root's home.
const boundsPython = "/usr/bin/python3"

func boundsSkip(t *testing.T) {
	t.Helper()
	shareSkip(t)
	if _, err := os.Stat(boundsPython); err != nil {
		t.Skipf("%s is needed: %v", boundsPython, err)
	}
}

// daemonMemory returns the daemon's VmHWM and VmRSS in KiB.
func daemonMemory(t *testing.T, d *daemon) (hwm, rss int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwm, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rss, _ = strconv.Atoi(f[1])
		}
	}
	return hwm, rss
}

// maxDaemonKiB is the generous bound the daemon's peak memory must stay
// under during the abuse (it reached 3.4 GiB before the budget).
const maxDaemonKiB = 1 << 20

// TestHugeTruncateTempFile: ftruncate to 2^63-1 on a vim swap file (and
// truncate(2) by path, and `truncate -s 1G` on a backup file) is EFBIG with
// a reason line; the file keeps its content and a later stat, by the user
// and by root, answers. Four 15 MiB temporary files fit a user's budget, a
// fifth is ENOSPC, and removing them gives the budget back.
func TestHugeTruncateTempFile(t *testing.T) {
	t.Parallel()
	boundsSkip(t)
	users, _ := shareUsers(t, 1, false)
	A := shareAs(users[0])
	d := shareDaemon(t)
	e := []string{"PY=" + boundsPython}
	A.check(t, d, e,
		shareDo(`mkdir mnt/big && echo script > mnt/big/config/type && printf '#!/bin/sh\necho hi\n' > mnt/big/config/script`),
		// vim's swap file, written and then truncated through its descriptor
		shareErr(`"$PY" -c 'import os
fd = os.open("mnt/big/config/.script.swp", os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b"swap")
os.ftruncate(fd, 2**63 - 1)'`, "[Errno 27] File too large"),
		shareOut(`stat -c %s mnt/big/config/.script.swp`, "4\n"),
		shareErr(`"$PY" -c 'import os; os.truncate("mnt/big/config/.script.swp", 2**63 - 1)'`, "[Errno 27] File too large"),
		shareErr(`truncate -s 1G mnt/big/config/script~`, "File too large"),
		shareOut(`stat -c %s mnt/big/config/script~ mnt/big/config/.script.swp`, "0\n4\n"),
		shareOut(`cat mnt/big/config/.script.swp`, "swap"),
		shareOut(`grep -c 'config/.script.swp rejected: a temporary file is at most 16 MiB; 9223372036854775807 bytes refused' mnt/big/log`, "2\n"),
		shareOut(`grep -c 'config/script~ rejected: a temporary file is at most 16 MiB; 1073741824 bytes refused' mnt/big/log`, "1\n"),
		// a user's budget (64 MiB) holds four 15 MiB files, not five
		shareDo(`for i in 1 2 3 4; do truncate -s 15M mnt/big/config/.f$i.tmp || exit 1; done`),
		shareErr(`truncate -s 15M mnt/big/config/.f5.tmp`, "No space left on device"),
		shareOut(`grep -c 'config/.f5.tmp rejected: uid [0-9]* already buffers .* the limit is 64 MiB per user' mnt/big/log`, "1\n"),
		shareDo(`rm mnt/big/config/.f1.tmp mnt/big/config/.f2.tmp`),
		shareDo(`truncate -s 15M mnt/big/config/.f5.tmp`),
		// the swap file renamed over the script is a validated write
		shareDo(`printf '#!/bin/sh\necho swapped\n' > mnt/big/config/.script.new && mv mnt/big/config/.script.new mnt/big/config/script`),
		shareOut(`cat mnt/big/config/script`, "#!/bin/sh\necho swapped\n"),
	)
	// Root's stat of the file the panic used to leave locked answers too.
	shareRoot.check(t, d, nil, shareOut(`stat -c %s mnt/@`+users[0].name+`/big/config/.script.swp`, "4\n"))
	hwm, rss := daemonMemory(t, d)
	t.Logf("daemon memory after the truncates: VmHWM %d MiB, VmRSS %d MiB", hwm>>10, rss>>10)
	if hwm > maxDaemonKiB {
		t.Errorf("daemon peak memory %d MiB, want < %d MiB", hwm>>10, maxDaemonKiB>>10)
	}
}

// boundsHolder opens 100 handles of data and writes 15 MiB into each,
// keeping them open; it prints one JSON line with what each write got,
// waits for a line on stdin, closes them, then opens write handles until
// refused and prints how many it got and the errno.
const boundsHolder = `
import errno, json, os, sys, time

# 128 KiB at a time: one FUSE write each, so the first refused write is
# the one that gets the errno (not a partial write before it).
def fill(fd, n):
    chunk = b'"' + b'a' * ((128 << 10) - 1)
    done = 0
    while done < n:
        try:
            done += os.write(fd, chunk)
        except OSError as e:
            return errno.errorcode[e.errno]
        chunk = b'a' * (128 << 10)
    return "ok"

fds = [os.open("mnt/hold/data", os.O_WRONLY) for _ in range(100)]
got = [fill(fd, 15 << 20) for fd in fds]
print(json.dumps(got), flush=True)
sys.stdin.readline()
for fd in fds:
    try:
        os.close(fd)  # an unfinished JSON string: refused at close
    except OSError:
        pass

# Releases follow closes asynchronously: try again until every earlier
# handle is uncounted (a bounded number of rounds).
for attempt in range(50):
    held, err = [], "none"
    while len(held) < 1000:
        try:
            held.append(os.open("mnt/hold/data", os.O_WRONLY))
        except OSError as e:
            err = errno.errorcode[e.errno]
            break
    for fd in held:
        os.close(fd)
    if len(held) >= 256:
        break
    time.sleep(0.1)
print(json.dumps({"opened": len(held), "err": err}), flush=True)
`

// TestFileHandlesBounded: a user's open files that each keep one of the
// daemon's descriptors (staged files, logs, a run's files) are bounded,
// an eighth of the daemon's (here 2048: 256): the 257th open is EMFILE,
// with the reason in the job's log, and meanwhile root's runs start and
// read their logs. Unbounded, 21,000 opens of one staged file took all
// the daemon's descriptors and every other user's runs failed.
func TestFileHandlesBounded(t *testing.T) {
	t.Parallel()
	boundsSkip(t)
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit is needed to give the daemon few descriptors")
	}
	users, _ := shareUsers(t, 1, false)
	B := shareAs(users[0])
	d := startDaemon(t, daemonOpts{args: []string{"--allow-other"}, nofile: 2048})
	shareOpen(t, d)
	B.ok(t, d, `mkdir mnt/hog && echo hi > mnt/hog/input/f`)
	d.scriptJob(t, "mine", "#!/bin/sh\necho mine ran\n")
	res := filepath.Join(t.TempDir(), "res")
	if err := os.Chmod(filepath.Dir(res), 0o777); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("runuser", "-u", users[0].name, "--", boundsPython, "-c", `
import os, sys, time
held, err = [], ""
for i in range(400):
    try:
        held.append(os.open("mnt/hog/input/f" if i % 2 else "mnt/hog/log", os.O_RDONLY))
    except OSError as e:
        err = e.strerror
        break
open(sys.argv[1], "w").write("%d %s\n" % (len(held), err))
time.sleep(60)
`, res)
	holder.Dir = d.dir
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // runuser's child too is killed with its group
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		_ = syscall.Kill(-holder.Process.Pid, syscall.SIGKILL) // gone already: fine
		_ = holder.Wait()
	}
	t.Cleanup(stop) // registered after the daemon's and the user's: runs before them
	waitFor(t, "the holder's opens", func() bool { b, _ := os.ReadFile(res); return strings.HasSuffix(string(b), "\n") })
	if got, _ := os.ReadFile(res); string(got) != "256 Too many open files\n" {
		t.Errorf("the user's opens: %q, want 256 taken, then Too many open files", got)
	}
	if line := d.ok(t, `tail -n 1 mnt/@$U/hog/log`, "U="+users[0].name); !strings.Contains(line, "files of jobfs open, the limit is 256 per user") {
		t.Errorf("the hog's last log line %q, want the limit named", line)
	}
	d.trigger(t, "mine", "{}")
	if got := d.waitRun(t, "mine", 1); got != "COMPLETED" {
		t.Errorf("root's run, while the user holds 256 files, ended %s, want COMPLETED", got)
	}
	d.wantFile(t, "mnt/mine/runs/1/log", "mine ran\n")
	stop()
	// The kernel releases the holder's files once it is gone: then they
	// are uncounted.
	waitFor(t, "the user's files uncounted", func() bool {
		return B.run(t, d, `cat mnt/hog/input/f mnt/hog/log > /dev/null`).code == 0
	})
}

// TestDataHandlesBounded: one process of a user holds 100 data handles
// open with 15 MiB written to each. The user's budget takes four; every
// other write is ENOSPC with a reason line, the daemon's memory stays far
// below the 3.4 GiB it took before, another user triggers runs meanwhile,
// a user's 257th write handle is EMFILE, and after closing a plain
// `echo '{}' > data` starts a run.
func TestDataHandlesBounded(t *testing.T) {
	t.Parallel()
	boundsSkip(t)
	users, _ := shareUsers(t, 2, false)
	A, B := shareAs(users[0]), shareAs(users[1])
	d := shareDaemon(t)
	script := "#!/bin/sh\ncat \"$1/input.json\" > \"$2/out.json\"\n"
	for _, w := range []shareWho{A, B} {
		w.ok(t, d, `mkdir mnt/hold && echo script > mnt/hold/config/type && printf '%s' "$S" > mnt/hold/config/script`, "S="+script)
	}
	hwm0, rss0 := daemonMemory(t, d)

	cmd := exec.Command("runuser", "-u", users[0].name, "--", boundsPython, "-c", boundsHolder)
	cmd.Dir = d.dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered after the daemon's: runs before it
		stdin.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the holder ended early: %v\nstderr:\n%s", lines.Err(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("holder printed %q: %v", lines.Text(), err)
		}
	}

	var got []string
	next(&got)
	counts := map[string]int{}
	for _, g := range got {
		counts[g]++
	}
	hwm, rss := daemonMemory(t, d)
	t.Logf("100 data handles x 15 MiB: writes %v; daemon VmHWM %d -> %d MiB, VmRSS %d -> %d MiB",
		counts, hwm0>>10, hwm>>10, rss0>>10, rss>>10)
	if counts["ok"] != 4 || counts["ENOSPC"] != 96 {
		t.Errorf("writes: %v, want 4 ok (64 MiB per user) and 96 ENOSPC", counts)
	}
	if hwm > maxDaemonKiB {
		t.Errorf("daemon peak memory %d MiB with 100 handles held, want < %d MiB", hwm>>10, maxDaemonKiB>>10)
	}
	// Another user's budget is their own.
	B.ok(t, d, `echo '{"b": 1}' > mnt/hold/data`)
	if st := B.ok(t, d, `cat mnt/hold/runs/1/wait`); st != "COMPLETED\n" {
		t.Errorf("the other user's run: %q", st)
	}
	A.check(t, d, nil,
		shareOut(`grep -c 'data rejected: uid [0-9]* already buffers 64 MiB in open data handles and temporary files, the limit is 64 MiB per user' mnt/hold/log`, "96\n"))

	if _, err := stdin.Write([]byte("close\n")); err != nil {
		t.Fatal(err)
	}
	var opened struct {
		Opened int
		Err    string
	}
	next(&opened)
	if err := cmd.Wait(); err != nil {
		t.Errorf("holder: %v\nstderr:\n%s", err, stderr.String())
	}
	if opened.Opened != 256 || opened.Err != "EMFILE" {
		t.Errorf("write handles of one user: %d opened, then %s; want 256, then EMFILE", opened.Opened, opened.Err)
	}
	A.check(t, d, nil,
		shareDo(`grep -q 'data rejected: uid [0-9]* already has 256 files of jobfs open for writing, the limit is 256 per user' mnt/hold/log`),
		shareDo(`echo '{}' > mnt/hold/data`),
		shareOut(`cat mnt/hold/runs/1/wait mnt/hold/runs/1/result`, "COMPLETED\n{}\n"),
	)
	hwm, rss = daemonMemory(t, d)
	t.Logf("after closing: daemon VmHWM %d MiB, VmRSS %d MiB", hwm>>10, rss>>10)
	if hwm > maxDaemonKiB {
		t.Errorf("daemon peak memory %d MiB, want < %d MiB", hwm>>10, maxDaemonKiB>>10)
	}
}
