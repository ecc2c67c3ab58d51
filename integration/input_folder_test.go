//go:build linux

package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// stageTree makes src/ outside the mount: a folder tree with an executable
// script, a file with an old time, a symlink inside the tree.
func stageTree(t *testing.T, d *daemon) {
	t.Helper()
	d.ok(t, `mkdir -p src/bin src/data/deep &&
printf '#!/bin/sh\necho "tool ran with $1"\n' > src/bin/tool.sh && chmod 755 src/bin/tool.sh &&
echo hello > src/data/deep/a.txt && touch -d '2020-01-02 03:04:05' src/data/deep/a.txt &&
ln -s ../bin/tool.sh src/data/tool && chmod 750 src/data`)
}

// toolJob's step runs the staged executable and lists its input.
func toolJob(t *testing.T, d *daemon, name string) {
	t.Helper()
	d.scriptJob(t, name, "#!/bin/sh\n\"$1/bin/tool.sh\" x\n\"$1/data/tool\" via-link\ncd \"$1\" && find . | sort && stat -c '%n %a' bin/tool.sh data && stat -c '%n %y' data/deep/a.txt\n")
}

// TestInputFolderCopies: cp -a and rsync -a of a tree with an executable
// into input/ work; modes, times and the symlink survive into the run, the
// step runs the staged executable; a second rsync sends nothing.
func TestInputFolderCopies(t *testing.T) {
	t.Parallel()
	codeNeed(t, "rsync")
	d := startDaemon(t, daemonOpts{})
	stageTree(t, d)
	for i, copyCmd := range []string{`cp -a src/. mnt/cp/input/`, `rsync -a src/ mnt/cp/input/`} {
		if i == 0 {
			toolJob(t, d, "cp")
		}
		d.ok(t, copyCmd)
		if i == 1 {
			if out := d.ok(t, `rsync -a --itemize-changes src/ mnt/cp/input/`); out != "" {
				t.Errorf("a second rsync -a sent:\n%s", out)
			}
			if out := d.ok(t, `rsync -a --itemize-changes mnt/cp/input/ src/`); out != "" {
				t.Errorf("rsync -a back out sent:\n%s", out)
			}
		}
		id := i + 1
		d.trigger(t, "cp", "{}")
		if got := d.waitRun(t, "cp", id); got != "COMPLETED" {
			t.Fatalf("%s: run %d ended %s: %s", copyCmd, id, got, d.cat(t, fmt.Sprintf("mnt/cp/runs/%d/log", id)))
		}
		log := d.cat(t, fmt.Sprintf("mnt/cp/runs/%d/log", id))
		for _, want := range []string{"tool ran with x", "tool ran with via-link", "./data/deep/a.txt",
			"bin/tool.sh 755", "data 750", "data/deep/a.txt 2020-01-02 03:04:05"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s: run log lacks %q:\n%s", copyCmd, want, log)
			}
		}
		if out := d.ok(t, `ls -A mnt/cp/input`); out != "" {
			t.Errorf("input/ after the run: %q, want empty", out)
		}
	}
}

// TestInputFolderTools: tar -x, shutil.copytree and git clone into input/;
// mkdir, rmdir, chmod, install -m, touch -d, mv, ln and ln -s work there;
// inode numbers do not change on rename; a symlink out of input/ is
// refused with its reason.
func TestInputFolderTools(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	stageTree(t, d)
	d.scriptJob(t, "tools", "#!/bin/sh\ncd \"$1\" && find . | sort && ./t/bin/tool.sh from-tar\n")
	d.ok(t, `tar -C src -cf src.tar . && mkdir mnt/tools/input/t && tar -C mnt/tools/input/t -xf src.tar`)
	d.ok(t, `python3 -c 'import shutil; shutil.copytree("src", "mnt/tools/input/py", symlinks=True)'`)
	d.ok(t, `git init -q repo && cp -a src/. repo/ && git -C repo add -A && git -C repo -c user.email=a@b -c user.name=a commit -qm x &&
git clone -q repo mnt/tools/input/clone && git -C mnt/tools/input/clone status --porcelain && git -C mnt/tools/input/clone fsck`)
	d.ok(t, `cd mnt/tools/input && mkdir -p a/b/c && rmdir a/b/c && install -m 750 ../../../src/bin/tool.sh a/b/inst.sh &&
test "$(stat -c %a a/b/inst.sh)" = 750 && chmod 604 a/b/inst.sh && test "$(stat -c %a a/b/inst.sh)" = 604 &&
touch -d '2001-02-03 04:05:06' a/b && test "$(stat -c %Y a/b)" = "$(date -d '2001-02-03 04:05:06' +%s)" &&
i=$(stat -c %i a/b/inst.sh) && mv a/b/inst.sh a/moved.sh && test "$(stat -c %i a/moved.sh)" = "$i" &&
ln a/moved.sh hard && test "$(stat -c %h hard)" = 2 && test "$(stat -c %i hard)" = "$i" &&
ln -s a/moved.sh soft && test "$(readlink soft)" = a/moved.sh && cat soft > /dev/null && rm hard soft`)
	for _, target := range []string{"/etc/passwd", "../data", "a/../../x"} {
		d.fails(t, `ln -s "$T" mnt/tools/input/out`, "Operation not permitted", "T="+target)
		if line := d.ok(t, `tail -n 1 mnt/tools/log`); !strings.Contains(line, "must point inside input/") {
			t.Errorf("ln -s %s: last log line %q", target, line)
		}
	}
	d.fails(t, `mknod mnt/tools/input/dev c 1 3`, "Operation not permitted")
	d.ok(t, `mkfifo mnt/tools/input/fifo && rm mnt/tools/input/fifo`)

	d.trigger(t, "tools", "{}")
	if got := d.waitRun(t, "tools", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s", got)
	}
	log := d.cat(t, "mnt/tools/runs/1/log")
	for _, want := range []string{"./t/bin/tool.sh", "./py/data/deep/a.txt", "./clone/.git/HEAD", "./a/moved.sh", "tool ran with from-tar"} {
		if !strings.Contains(log, want) {
			t.Errorf("the run's input lacks %s:\n%s", want, log)
		}
	}
}

// TestInputFolderOwner: as a runner (another user) on a shared mount,
// staged files and folders belong to the job's owner, so the owner's step
// reads them, modes included.
func TestInputFolderOwner(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	A, B := shareAs(users[0]), shareAs(users[1])
	d := shareDaemon(t)
	A.job(t, d, "own", "#!/bin/sh\ncat \"$1/sub/secret.txt\"\nstat -c '%U %a' \"$1/sub\" \"$1/sub/secret.txt\"\n")
	A.ok(t, d, `echo runner > mnt/own/shared/@`+users[1].name)
	path := "mnt/@" + users[0].name + "/own"
	B.ok(t, d, `umask 077 && mkdir `+path+`/input/sub && echo from-bob > `+path+`/input/sub/secret.txt`)
	if got := B.ok(t, d, `stat -c %U `+path+`/input/sub/secret.txt`); got != users[0].name+"\n" {
		t.Errorf("staged file shows owner %q, want the job owner", got)
	}
	if got := A.ok(t, d, `stat -c '%U %a' mnt/own/input/sub/secret.txt`); got != users[0].name+" 600\n" {
		t.Errorf("staged file shows %q to its owner, want mode 600", got)
	}
	B.ok(t, d, `echo '{}' > `+path+`/data`)
	if got := d.waitRun(t, "@"+users[0].name+"/own", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s", got)
	}
	want := "from-bob\n" + users[0].name + " 700\n" + users[0].name + " 600\n"
	if got := A.ok(t, d, `cat mnt/own/runs/1/log`); got != want {
		t.Errorf("run log %q, want %q", got, want)
	}
}

// TestInputFolderOpenWriter: a file still being written when a run starts
// stays staged, whole, for the next run, and the run's log names it; a
// closed copy is taken whole.
func TestInputFolderOpenWriter(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "big", "#!/bin/sh\ncd \"$1\" && for f in *; do echo \"$f $(wc -c < \"$f\")\"; done\n")
	// The writer writes 400,000 bytes, lets the test trigger a run, then
	// writes the rest and closes.
	d.ok(t, `python3 -c '
import os, subprocess, time
with open("mnt/big/input/big.bin", "wb") as f:
    f.write(b"x" * 400000)
    f.flush()
    subprocess.run("echo {} > mnt/big/data", shell=True, check=True)
    while not os.path.exists("mnt/big/runs/1/log"):
        time.sleep(0.05)
    f.write(b"y" * 600000)
'`)
	if got := d.waitRun(t, "big", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s", got)
	}
	log := d.cat(t, "mnt/big/runs/1/log")
	if !strings.Contains(log, "input/big.bin is still open for writing: it stays staged for the next run") {
		t.Errorf("run 1's log does not name the open file:\n%s", log)
	}
	if strings.HasPrefix(log, "big.bin") || strings.Contains(log, "\nbig.bin") {
		t.Errorf("run 1 got part of the open file:\n%s", log)
	}
	if got := d.ok(t, `stat -c %s mnt/big/input/big.bin`); got != "1000000\n" {
		t.Errorf("staged size %q, want 1000000", got)
	}
	d.trigger(t, "big", "{}")
	if got := d.waitRun(t, "big", 2); got != "COMPLETED" {
		t.Fatalf("run 2 ended %s", got)
	}
	if log := d.cat(t, "mnt/big/runs/2/log"); !strings.Contains(log, "big.bin 1000000") {
		t.Errorf("run 2 did not get the whole file:\n%s", log)
	}
}

// TestInputFolderSetIDDropped: no staged file carries a set-user-ID or
// set-group-ID bit. A runner's staged file is the job owner's (root's here)
// with the runner's bytes: with the bit, cp -a of input/ by root made a
// set-user-ID root copy of them. A chmod drops them (the job's log says
// so), and so do a create and cp -a, rsync -a, tar -x and install -m of a
// set-user-ID program, which still succeed; a folder keeps set-group-ID. A
// staged program runs from the mount (its exec open was EINVAL).
func TestInputFolderSetIDDropped(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "sid", "#!/bin/sh\nstat -c '%n %a' \"$1\"/*\n")
	d.ok(t, `cp /bin/true mnt/sid/input/t && chmod 4755 mnt/sid/input/t && chmod g+s mnt/sid/input/t`)
	if got := d.ok(t, `stat -c %a mnt/sid/input/t`); got != "755\n" {
		t.Errorf("after chmod 4755 and g+s: mode %q, want 755", got)
	}
	if log := d.cat(t, "mnt/sid/log"); !strings.Contains(log, "input/t: mode 4755 set as 0755: set-user-ID and set-group-ID bits are not kept in input/") {
		t.Errorf("job log lacks the dropped bits:\n%s", log)
	}
	d.ok(t, `python3 -c 'import os; os.close(os.open("mnt/sid/input/c", os.O_CREAT|os.O_WRONLY, 0o6755))'`)
	d.ok(t, `mkdir -p src && cp /bin/true src/s && chmod 4755 src/s &&
		cp -a src/s mnt/sid/input/cpa && rsync -a src/s mnt/sid/input/rs && tar -C src -cf - s | tar -C mnt/sid/input -xf - &&
		install -m 4755 /bin/true mnt/sid/input/in`)
	for _, f := range []string{"c", "cpa", "rs", "s", "in"} {
		if got := d.ok(t, `stat -c %a mnt/sid/input/`+f); got != "755\n" {
			t.Errorf("input/%s: mode %q, want 755", f, got)
		}
	}
	d.ok(t, `mkdir mnt/sid/input/g && chmod 2775 mnt/sid/input/g`)
	if got := d.ok(t, `stat -c %a mnt/sid/input/g`); got != "2775\n" {
		t.Errorf("folder chmod 2775: mode %q", got)
	}
	d.ok(t, `mnt/sid/input/t`) // exec from the mount
	// A file an older jobfs let keep the bit: not shown, so not copied out.
	d.ok(t, `D=$(echo state/jobs/*/input) && cp /bin/true "$D/old" && chmod 4755 "$D/old"`)
	if got := d.ok(t, `stat -c %a mnt/sid/input/old && mkdir out && cp -a mnt/sid/input/old out/ && stat -c %a out/old`); got != "755\n755\n" {
		t.Errorf("a staged file set-user-ID on disk: shown and copied out as %q, want 755 twice", got)
	}
	d.ok(t, `rm mnt/sid/input/old`)
	d.ok(t, `rm -r mnt/sid/input/g`)
	d.trigger(t, "sid", "{}")
	if got := d.waitRun(t, "sid", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s", got)
	}
	if log := d.cat(t, "mnt/sid/runs/1/log"); !strings.Contains(log, "/input/c 755") || !strings.Contains(log, "/input/t 755") || strings.Contains(log, "4755") {
		t.Errorf("run log:\n%s", log)
	}
}

// TestInputFolderHardLinks: a file staged under two names (ln) shows in
// the run's input/ as one file with two links, as the step sees it: one
// inode number in stat and in the listing, a link count of 2, so du and
// tar count its bytes once.
func TestInputFolderHardLinks(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "hl", "#!/bin/sh\nstat -c '%h %n' \"$1\"/a \"$1\"/b\n")
	d.ok(t, `head -c 100000 /dev/urandom > mnt/hl/input/a && ln mnt/hl/input/a mnt/hl/input/b && echo x > mnt/hl/input/c`)
	d.trigger(t, "hl", "{}")
	if got := d.waitRun(t, "hl", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s", got)
	}
	in := "mnt/hl/runs/1/input/"
	st := d.ok(t, `stat -c '%h %i' `+in+`a `+in+`b `+in+`c`)
	lines := strings.Split(strings.TrimSpace(st), "\n")
	if len(lines) != 3 || lines[0] != lines[1] || !strings.HasPrefix(lines[0], "2 ") || !strings.HasPrefix(lines[2], "1 ") || lines[2] == lines[0] {
		t.Errorf("stat of a, b (hard links) and c = %q, want one number with 2 links for a and b", lines)
	}
	ls := strings.Fields(d.ok(t, `ls -i `+in+` | sort -k2`))
	if len(ls) < 4 || ls[0] != ls[2] || ls[0] != strings.Fields(lines[0])[1] {
		t.Errorf("ls -i = %q, want a and b listed with their stat number %s", ls, strings.Fields(lines[0])[1])
	}
	if got := d.ok(t, `tar -cf - -C mnt/hl/runs/1 input | tar -tvf - | grep -c 'link to'`); got != "1\n" {
		t.Errorf("tar stored %q hard links, want 1", got)
	}
	if log := d.cat(t, "mnt/hl/runs/1/log"); !strings.Contains(log, "2 /input/a") || !strings.Contains(log, "2 /input/b") {
		t.Errorf("the step's view:\n%s", log)
	}
}

// TestInputFolderLinksOut: a staged symlink accepted as text that leads out
// of input/ once followed (through a link to ".", or moved to a shallower
// folder) is not followed through the mount (EPERM) and is left out of the
// run, with a line in the run's log: the job's step, which sees its input
// in a root with the host's /etc and its own /proc, would follow it as the
// job's owner (a runner read root's /etc/shadow and the owner's secrets so).
func TestInputFolderLinksOut(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "lo", "#!/bin/sh\ncd \"$1\" && for f in *; do echo \"== $f\"; cat \"$f\"; done\nls -A \"$1\"\n")
	d.ok(t, `cd mnt/lo/input && ln -s . d && ln -s d/d/d/../../../etc/hostname s &&
		mkdir -p a/b && ln -s ../../etc/hostname a/b/l && mv a/b/l l && rm -r a &&
		mkdir -p data bin && echo tool > bin/x && ln -s ../bin/x data/y && echo kept > k`)
	for _, l := range []string{"s", "l"} {
		d.fails(t, `cat mnt/lo/input/`+l, "Operation not permitted")
	}
	d.wantFile(t, "mnt/lo/input/data/y", "tool\n")
	d.trigger(t, "lo", "{}")
	if got := d.waitRun(t, "lo", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s: %s", got, d.cat(t, "mnt/lo/runs/1/log"))
	}
	log := d.cat(t, "mnt/lo/runs/1/log")
	host, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, strings.TrimSpace(string(host))) {
		t.Errorf("the step read the host's /etc/hostname through a staged link:\n%s", log)
	}
	for _, want := range []string{"jobfs: input/s is a symlink that leads out of input/: it was left out of the run",
		"jobfs: input/l is a symlink that leads out of input/: it was left out of the run", "== k\nkept"} {
		if !strings.Contains(log, want) {
			t.Errorf("run log lacks %q:\n%s", want, log)
		}
	}
	if got := d.ok(t, `ls -A mnt/lo/runs/1/input && cat mnt/lo/runs/1/input/data/y`); got != "bin\nd\ndata\ninput.json\nk\ntool\n" {
		t.Errorf("the run's input: %q, want every entry but s and l, data/y followed inside", got)
	}
	// A run kept from a build before the check: its link is not followed.
	d.ok(t, `ln -s ../../../../../../../../etc/hostname "$(echo state/jobs/*/runs/1/input)/old"`)
	d.fails(t, `cat mnt/lo/runs/1/input/old`, "Operation not permitted")
	// And its rerun leaves the link out as a new run's move does.
	d.ok(t, `echo 1 > mnt/lo/rerun`)
	if got := d.waitRun(t, "lo", 2); got != "COMPLETED" {
		t.Fatalf("rerun ended %s", got)
	}
	if log := d.cat(t, "mnt/lo/runs/2/log"); !strings.Contains(log, "jobfs: input/old is a symlink that leads out of input/: it was left out of the run") ||
		strings.Contains(log, strings.TrimSpace(string(host))) {
		t.Errorf("the rerun's log:\n%s", log)
	}
}
