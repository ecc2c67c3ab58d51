//go:build linux

package integration

import (
	"fmt"
	"strings"
	"testing"
)

// Issue 14: every file created in config/ that is not a setting is a
// temporary file until it is renamed over a setting (a validated write) or
// removed, and never outlives the daemon; install, mkstemp + os.replace,
// rsync and editors work; a setting's readers hold no memory.

// TestConfigInstallOverScript: install -m 755 unlinks config/script (a
// reset) and creates it again with O_EXCL; the script ends up installed,
// its run works, and a bad script is refused with its reason.
func TestConfigInstallOverScript(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "inst", "#!/bin/sh\necho old\n")
	d.ok(t, `printf '#!/bin/sh\necho installed\n' > step.sh && install -m 755 step.sh mnt/inst/config/script`)
	d.wantFile(t, "mnt/inst/config/script", "#!/bin/sh\necho installed\n")
	d.trigger(t, "inst", "{}")
	if got := d.waitRun(t, "inst", 1); got != "COMPLETED" {
		t.Fatalf("run after install: %s", got)
	}
	d.wantFile(t, "mnt/inst/runs/1/log", "installed\n")
	// Again over itself, and cp --remove-destination (the same pattern).
	d.ok(t, `install -m 755 step.sh mnt/inst/config/script && cp --remove-destination step.sh mnt/inst/config/script`)
	d.wantFile(t, "mnt/inst/config/script", "#!/bin/sh\necho installed\n")
	// A script without #! is refused by the write, with the reason.
	d.fails(t, `echo 'echo no interpreter' > bad.sh && install -m 755 bad.sh mnt/inst/config/script`, "Invalid argument")
	if got := d.ok(t, `tail -n 1 mnt/inst/log`); !strings.Contains(got, "config/script rejected: ") {
		t.Errorf("tail -n 1 log = %q, want config/script rejected", got)
	}
	// Others still see the setting after an unlink: only the process that
	// removed it may create it again.
	d.ok(t, `rm mnt/inst/config/timeout`)
	d.wantFile(t, "mnt/inst/config/timeout", "1h\n")
}

// TestConfigTempAnyName: Python's tempfile.mkstemp + os.replace, a file of
// any name (listed, read back, removed, gone after a restart), and a
// refused os.replace that keeps the old value and the temporary file.
func TestConfigTempAnyName(t *testing.T) {
	t.Parallel()
	codeNeed(t, "python3")
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/py`)
	py := `import os, sys, tempfile
cfg, name, value = sys.argv[1], sys.argv[2], sys.argv[3]
fd, tmp = tempfile.mkstemp(dir=cfg)
os.write(fd, value.encode())
os.fsync(fd)
os.close(fd)
os.chmod(tmp, 0o644)
try:
    os.replace(tmp, os.path.join(cfg, name))
except OSError as e:
    print("refused:", e.strerror, "left:", os.path.basename(tmp))
    sys.exit(3)
`
	d.ok(t, `python3 -c "$PY" mnt/py/config timeout 90s`, "PY="+py)
	d.wantFile(t, "mnt/py/config/timeout", "90s\n")
	d.ok(t, `python3 -c "$PY" mnt/py/config/limits memory 256`, "PY="+py)
	d.wantFile(t, "mnt/py/config/limits/memory", "256\n")
	r := d.sh(t, `python3 -c "$PY" mnt/py/config timeout 5x`, "PY="+py)
	if r.code != 3 || !strings.Contains(r.out, "refused: Invalid argument left: tmp") {
		t.Errorf("os.replace of a bad value: want exit 3 and Invalid argument:\n%s", r)
	}
	d.wantFile(t, "mnt/py/config/timeout", "90s\n")
	left := strings.TrimSpace(r.out[strings.LastIndex(r.out, " ")+1:])
	d.wantFile(t, "mnt/py/config/"+left, "5x")
	d.ok(t, `rm "mnt/py/config/$L"`, "L="+left)
	// Beside description in the job folder too (mkstemp's tmpXXXXXXXX is
	// a name a tool uses, not a mistyped file).
	d.ok(t, `python3 -c "$PY" mnt/py description 'made by python'`, "PY="+py)
	d.wantFile(t, "mnt/py/description", "made by python") // as written: description is free text
	if got := d.ok(t, `ls -A mnt/py`); strings.Contains(got, "tmp") {
		t.Errorf("ls -A of the job after os.replace = %q: the temporary file is left", got)
	}

	// Any name: a file like any other until removed, with a note in the log.
	d.ok(t, `echo draft > mnt/py/config/notes.txt`)
	d.wantFile(t, "mnt/py/config/notes.txt", "draft\n")
	if got := d.ok(t, `ls mnt/py/config`); !strings.Contains(got, "notes.txt\n") {
		t.Errorf("ls config = %q, want notes.txt listed", got)
	}
	if got := d.ok(t, `tail -n 1 mnt/py/log`); !strings.Contains(got, "config/notes.txt is not a setting: kept as a temporary file") {
		t.Errorf("tail -n 1 log = %q", got)
	}
	// mv of a setting to another name is still refused (settings stay).
	if r := d.sh(t, `mv mnt/py/config/timeout mnt/py/config/other`); r.code == 0 {
		t.Errorf("mv of a setting to another name succeeded:\n%s", r)
	}
	d.wantFile(t, "mnt/py/config/timeout", "90s\n")
	d.ok(t, `echo kept > mnt/py/config/later.txt`)
	d.stop(t)
	d.restart(t)
	if got := d.ok(t, `ls -A mnt/py/config`); strings.Contains(got, "notes.txt") || strings.Contains(got, "later.txt") {
		t.Errorf("after a restart ls -A config = %q: temporary files outlived the daemon", got)
	}
	d.wantFile(t, "mnt/py/config/timeout", "90s\n")
}

// TestConfigRsyncAndEditors: rsync -a of a config folder (settings,
// limits/ and a secret's sealed form), sed -i and vim on settings.
func TestConfigRsyncAndEditors(t *testing.T) {
	t.Parallel()
	codeNeed(t, "rsync", "vim")
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "src", "#!/bin/sh\necho \"n=${api_token:+set}\"\n")
	d.ok(t, `echo 20m > mnt/src/config/timeout && echo 50 > mnt/src/config/limits/cpu && printf 's3cret-v' > mnt/src/config/env/api_token`)
	d.ok(t, `rsync -a mnt/src/config/ defs/`)
	d.ok(t, `rm mnt/src/config/env/api_token && echo 1h > mnt/src/config/timeout && echo 100 > mnt/src/config/limits/cpu`)
	d.ok(t, `rsync -a defs/ mnt/src/config/`)
	d.wantFile(t, "mnt/src/config/timeout", "20m\n")
	d.wantFile(t, "mnt/src/config/limits/cpu", "50\n")
	d.ok(t, `cmp defs/env/api_token mnt/src/config/env/api_token`)
	if got := d.ok(t, `ls -A mnt/src/config mnt/src/config/env`); strings.Contains(got, ".") {
		t.Errorf("rsync left a temporary file: %q", got)
	}
	d.trigger(t, "src", "{}")
	if got := d.waitRun(t, "src", 1); got != "COMPLETED" {
		t.Fatalf("run: %s", got)
	}
	d.wantFile(t, "mnt/src/runs/1/log", "n=set\n")

	d.ok(t, `sed -i 's/20m/30m/' mnt/src/config/timeout`)
	d.wantFile(t, "mnt/src/config/timeout", "30m\n")
	d.ok(t, `vim -Es -u NONE -c '%s/30m/40m/' -c 'wq' mnt/src/config/timeout`)
	d.wantFile(t, "mnt/src/config/timeout", "40m\n")
	if got := d.ok(t, `ls -A mnt/src/config`); strings.Contains(got, "~") || strings.Contains(got, ".swp") {
		t.Errorf("an editor left a temporary file: %q", got)
	}
}

// TestConfigReadersHoldNoMemory: 400 open read descriptors of a 512 KiB
// script (past the 256 open files a user may hold for writing, 200 MiB if
// each held a copy) all read it whole; write descriptors are counted
// (Too many open files past 256, with the reason in the log).
func TestConfigReadersHoldNoMemory(t *testing.T) {
	t.Parallel()
	codeNeed(t, "python3")
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/big && { echo '#!/bin/sh'; head -c 524288 /dev/zero | tr '\0' '#'; } > big.sh && cat big.sh > mnt/big/config/script`)
	py := `import os, sys
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fds = []
try:
    for i in range(n):
        fds.append(os.open(path, os.O_RDONLY if mode == "r" else os.O_WRONLY))
except OSError as e:
    print("opened", len(fds), "then", e.strerror)
    sys.exit(3)
if mode == "r":
    want = open("big.sh", "rb").read()
    for fd in fds:
        if os.pread(fd, len(want) + 1, 0) != want:
            sys.exit("a read differs")
print("opened", len(fds))
`
	if got := d.ok(t, `python3 -c "$PY" mnt/big/config/script 400 r`, "PY="+py); got != "opened 400\n" {
		t.Errorf("400 readers: %q", got)
	}
	r := d.sh(t, `python3 -c "$PY" mnt/big/config/timeout 300 w`, "PY="+py)
	if r.code != 3 || !strings.Contains(r.out, "opened 256 then Too many open files") {
		t.Errorf("300 writers: want 256 opened, then Too many open files:\n%s", r)
	}
	if got := d.ok(t, `tail -n 1 mnt/big/log`); !strings.Contains(got, fmt.Sprintf("config/timeout rejected: uid %d already has 256 files", 0)) {
		t.Errorf("tail -n 1 log = %q", got)
	}
}

// TestConfigTruncateToSize: `truncate -s N` of a setting, through its
// descriptor (coreutils) and by path (Python's os.truncate), stores the
// value cut to N bytes, judged as any value written; grown with zero
// bytes it is refused in the call, with its reason in the job's log, and
// the value stays.
func TestConfigTruncateToSize(t *testing.T) {
	t.Parallel()
	codeNeed(t, "python3")
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "cut", "#!/bin/sh\necho one\necho two\n")
	d.ok(t, `echo 45s > mnt/cut/config/timeout && truncate -s 2 mnt/cut/config/timeout`)
	d.wantFile(t, "mnt/cut/config/timeout", "45\n")
	d.ok(t, `truncate -s 19 mnt/cut/config/script`)
	d.wantFile(t, "mnt/cut/config/script", "#!/bin/sh\necho one\n")
	d.ok(t, `python3 -c 'import os; os.truncate("mnt/cut/config/script", 14)'`)
	d.wantFile(t, "mnt/cut/config/script", "#!/bin/sh\necho")
	d.fails(t, `truncate -s 10 mnt/cut/config/timeout`, "Invalid argument")
	d.wantFile(t, "mnt/cut/config/timeout", "45\n")
	if got := d.ok(t, `tail -n 1 mnt/cut/log`); !strings.Contains(got, "config/timeout rejected: ") || !strings.Contains(got, "zero bytes") {
		t.Errorf("tail -n 1 log = %q, want config/timeout rejected for its zero bytes", got)
	}
	d.fails(t, `python3 -c 'import os; os.truncate("mnt/cut/config/timeout", 9)'`, "Invalid argument")
	d.wantFile(t, "mnt/cut/config/timeout", "45\n")
}
