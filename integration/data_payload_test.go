//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// echoJob makes job name whose step prints its payload.
func echoJob(t *testing.T, d *daemon, name string) {
	t.Helper()
	d.scriptJob(t, name, "#!/bin/sh\ncat \"$1/input.json\"\n")
}

// runCount is the number of runs job has.
func runCount(t *testing.T, d *daemon, job string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Fields(d.ok(t, `ls "mnt/$J/runs"`, "J="+job)) {
		if _, err := strconv.Atoi(l); err == nil {
			n++
		}
	}
	return n
}

// TestDataForkingWriters: a writer that forks while data is open (a bash
// script, a command group with an external command, a reparented
// grandchild, a child that writes after its parent closed, Python's
// subprocess, a file opened by an ended thread)
// starts exactly one run, with the whole payload: the children's closes
// only flush, the last close judges it.
func TestDataForkingWriters(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	echoJob(t, d, "fork")
	if err := os.WriteFile(filepath.Join(d.dir, "gen.sh"),
		[]byte("/bin/echo '{'\nsleep 0.2\n/bin/echo '\"a\": 1,'\necho '\"b\": 2}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, script, want string }{
		{"bash script", `bash gen.sh > mnt/fork/data`, "{\n\"a\": 1,\n\"b\": 2}\n"},
		{"command group", `{ /bin/echo '{'; echo '"c": 3}'; } > mnt/fork/data`, "{\n\"c\": 3}\n"},
		{"blank line first", `{ echo; /bin/echo '{"d":'; sleep 0.2; echo '4}'; } > mnt/fork/data`, "\n{\"d\":\n4}\n"},
		// A whole object is judged at the child's close; the shell's
		// newline after it is white space, taken and left out.
		{"object from a child, newline after", `{ /bin/echo -n '{"f": 6}'; echo; } > mnt/fork/data`, `{"f": 6}`},
		// The child that writes last was reparented (its parent, a
		// subshell, ended at once): it is found by being newer than the
		// open, not by descent.
		{"reparented child", `{ echo; ( (sleep 0.3; /bin/echo '{"g": 7}') & ); } > mnt/fork/data`, "\n{\"g\": 7}\n"},
		// Opened by a thread that has ended: who else of its process holds
		// the file is found by the whole scan.
		{"opened by an ended thread", `python3 -c '
import threading
box = {}
t = threading.Thread(target=lambda: box.update(f=open("mnt/fork/data", "w")))
t.start()
t.join()
box["f"].write("\n")
box["f"].close()
'`, "{}\n"}, // a blank payload's input: an empty object
		// The opener closes first, the child it forked writes the rest
		// later. A truncating open (the shell's >) without a stat after it
		// (Python's open() makes one) is what renumbered data 0.
		{"parent closes first", `python3 -c '
import os, time
fd = os.open("mnt/fork/data", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
ino = open("/proc/self/fdinfo/%d" % fd).read().split("ino:")[1].split()[0]
assert ino != "0", "data renumbered 0 by its truncating open"
os.write(fd, b"{\"h\": ")
if os.fork() == 0:
    time.sleep(0.3)
    os.write(fd, b"9}")
    os._exit(0)
os.close(fd)
os.wait()
'`, "{\"h\": 9}"},
		{"python subprocess", `python3 -c '
import subprocess
with open("mnt/fork/data", "w") as f:
    f.write("{\"e\": ")
    f.flush()
    subprocess.run(["/bin/echo", "5}"], stdout=f, check=True)
'`, "{\"e\": 5}\n"},
	}
	for i, c := range cases {
		d.ok(t, c.script)
		id := i + 1
		if got := d.waitRun(t, "fork", id); got != "COMPLETED" {
			t.Fatalf("%s: run %d ended %s: %s", c.name, id, got, d.cat(t, fmt.Sprintf("mnt/fork/runs/%d/error", id)))
		}
		if got := d.cat(t, fmt.Sprintf("mnt/fork/runs/%d/input/input.json", id)); got != c.want {
			t.Errorf("%s: payload %q, want %q", c.name, got, c.want)
		}
		if n := runCount(t, d, "fork"); n != id {
			t.Errorf("%s: %d runs, want %d: one run per write", c.name, n, id)
		}
	}
}

// TestDataErrorAtLastClose: an incomplete payload is refused at the last
// close, so a writer that checks close(2) sees it; nothing starts.
func TestDataErrorAtLastClose(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	echoJob(t, d, "inc")
	d.fails(t, `/bin/echo '{' > mnt/inc/data`, "Invalid argument")
	if line := d.ok(t, `tail -n 1 mnt/inc/log`); !strings.Contains(line, "data rejected: invalid JSON: unexpected end of input") {
		t.Errorf("last log line %q", line)
	}
	d.fails(t, `python3 -c 'f = open("mnt/inc/data", "w"); f.write("[1,"); f.close()'`, "Invalid argument")
	if n := runCount(t, d, "inc"); n != 0 {
		t.Errorf("%d runs, want none", n)
	}
}

// TestDataLongPayloadSmallWrites: a payload of 3 MiB written 4 KiB at a
// time (Python's json.dump, dd bs=4k) is checked in write() only in its
// first 64 KiB (each check scanned the whole payload again: seconds of
// the daemon's CPU per MiB); a bad byte past that is refused at the close,
// which such writers see. Good ones start their run whole.
func TestDataLongPayloadSmallWrites(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	echoJob(t, d, "long")
	write := func(bad string) string {
		return `python3 -c '
import os, sys
body = "[" + ",".join(["1234567"] * (3 << 17)) + "]\n"
bad = sys.argv[1]
if bad:
    body = body[: len(body) // 2] + bad + body[len(body) // 2 :]
fd = os.open("mnt/long/data", os.O_WRONLY | os.O_TRUNC)
for i in range(0, len(body), 4096):
    os.write(fd, body[i : i + 4096].encode())
os.close(fd)
' '` + bad + `'`
	}
	d.fails(t, write("x"), "Invalid argument")
	if line := d.ok(t, `tail -n 1 mnt/long/log`); !strings.Contains(line, "data rejected: invalid JSON at byte ") {
		t.Errorf("last log line %q, want the bad byte's offset", line)
	}
	d.ok(t, write(""))
	if got := d.waitRun(t, "long", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	if got := d.ok(t, `wc -c < mnt/long/runs/1/input/input.json`); strings.TrimSpace(got) != strconv.Itoa(8*(3<<17)+2) {
		t.Errorf("input.json has %s bytes, want %d", strings.TrimSpace(got), 8*(3<<17)+2)
	}
}

// TestDataFsync: fsync of data succeeds once the run is recorded (its
// folder is there before close), for Python and dd conv=fsync.
func TestDataFsync(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	echoJob(t, d, "sync")
	d.ok(t, `python3 -c '
import os
with open("mnt/sync/data", "w") as f:
    f.write("{\"s\": 1}\n")
    f.flush()
    os.fsync(f.fileno())
    assert os.path.isdir("mnt/sync/runs/1"), "no run 1 after fsync"
'`)
	d.ok(t, `printf '{"s": 2}' | dd of=mnt/sync/data conv=fsync status=none`)
	for id, want := range map[int]string{1: "{\"s\": 1}\n", 2: `{"s": 2}`} {
		if got := d.waitRun(t, "sync", id); got != "COMPLETED" {
			t.Fatalf("run %d ended %s", id, got)
		}
		if got := d.cat(t, fmt.Sprintf("mnt/sync/runs/%d/input/input.json", id)); got != want {
			t.Errorf("run %d payload %q, want %q", id, got, want)
		}
	}
	if n := runCount(t, d, "sync"); n != 2 {
		t.Errorf("%d runs, want 2", n)
	}
}

// TestDataRunIDReadBack: the clone pattern: open data read-write, write
// the payload, read back the id of the run it started, from bash, Python
// and Go (this process).
func TestDataRunIDReadBack(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	echoJob(t, d, "rb")
	ids := map[string]string{}
	ids["bash"] = strings.TrimSpace(d.ok(t, `exec 3<>mnt/rb/data && echo '{"w": "bash"}' >&3 && read -r id <&3 && exec 3>&- && echo "$id"`))
	ids["python"] = strings.TrimSpace(d.ok(t, `python3 -c '
import os
fd = os.open("mnt/rb/data", os.O_RDWR)
os.write(fd, b"{\"w\": \"python\"}")
print(os.read(fd, 64).decode().strip())
os.close(fd)
'`))
	f, err := os.OpenFile(filepath.Join(d.mnt, "rb", "data"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(`{"w": "go"}`)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := f.Read(buf)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ids["go"] = strings.TrimSpace(string(buf[:n]))
	for who, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil {
			t.Fatalf("%s read back %q, not a run id", who, id)
		}
		if got := d.waitRun(t, "rb", n); got != "COMPLETED" {
			t.Fatalf("%s: run %d ended %s", who, n, got)
		}
		if got := d.cat(t, fmt.Sprintf("mnt/rb/runs/%d/log", n)); got != `{"w": "`+who+`"}`+map[bool]string{true: "\n"}[who == "bash"] {
			t.Errorf("%s: run %d printed %q: not its payload", who, n, got)
		}
	}
	if n := runCount(t, d, "rb"); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

// TestDataRefusedTriggers: a trigger of a job that cannot start is refused
// in write() (Invalid argument), the reason is the job log's last line,
// and no run is recorded.
func TestDataRefusedTriggers(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	secImage(t, d, "gone", "#!/bin/sh\necho hi\n")
	secImage(t, d, "noexec", "#!/bin/sh\necho hi\n")
	d.ok(t, `mkdir mnt/empty && echo script > mnt/empty/config/type`)
	d.ok(t, `mkdir mnt/nochains`)
	d.ok(t, `mkdir mnt/gone && echo gone > mnt/gone/config/chains && rm -r "$R/gone"`, "R="+filepath.Join(d.repos, currentUser(t)))
	d.ok(t, `mkdir mnt/noexec && echo noexec > mnt/noexec/config/chains && chmod 644 "$R/noexec/entrypoint"`, "R="+filepath.Join(d.repos, currentUser(t)))
	for job, reason := range map[string]string{
		"empty":    "config/script is empty",
		"nochains": "config/chains is empty",
		"gone":     "unknown image @" + currentUser(t) + "/gone:latest",
		"noexec":   "no executable",
	} {
		d.fails(t, `echo '{}' > "mnt/$J/data"`, "Invalid argument", "J="+job)
		if line := d.ok(t, `tail -n 1 "mnt/$J/log"`, "J="+job); !strings.Contains(line, "trigger refused: ") || !strings.Contains(line, reason) {
			t.Errorf("%s: last log line %q, want trigger refused: ...%s", job, line, reason)
		}
		if n := runCount(t, d, job); n != 0 {
			t.Errorf("%s: %d runs recorded, want none", job, n)
		}
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestDataWholeObjectStartsAtOnce: a writer whose child still holds data
// (a daemon it started, a sleeper) does not hold back a payload that is
// already a whole object: the run starts at the writer's close, not at the
// child's.
func TestDataWholeObjectStartsAtOnce(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	echoJob(t, d, "held")
	d.ok(t, `python3 -c '
import subprocess
with open("mnt/held/data", "w") as f:
    f.write("{\"h\": 8}")
    f.flush()
    p = subprocess.Popen(["sleep", "20"], stdout=f, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.pid)
' > sleeper.pid`)
	defer d.sh(t, `kill $(cat sleeper.pid) 2>/dev/null`)
	if got := d.waitRun(t, "held", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s", got)
	}
	if r := d.sh(t, `kill -0 $(cat sleeper.pid)`); r.code != 0 {
		t.Errorf("the child that holds data was gone before the run ended: it should not have had to end first")
	}
	if got := d.cat(t, "mnt/held/runs/1/input/input.json"); got != `{"h": 8}` {
		t.Errorf("payload %q", got)
	}
}
