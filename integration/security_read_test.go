package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The root daemon never reads for a user what that user may not read: the
// state folder is closed to other users, symlinks a step leaves in its
// output are never followed (not in output/, steps/*/output, result or the
// zip, not even when a folder a shell sits in is swapped for a link), and a
// share removed locks out a shell whose working folder is inside the job.
// Every case runs as a throwaway user against an --allow-other mount.

// secretMarker is in /etc/shadow and in no step output: root's line.
const secretMarker = "root:"

// shadowLine matches root's line of /etc/shadow (root:HASH:DAYS:), also as
// grep -r prints it after a file name; not an error message that names a
// path ending in root (".../root: Is a directory").
var shadowLine = regexp.MustCompile(`root:[^:\s]*:[0-9]*:`)

// runFolder is the state folder of run id of the job with shortname short.
func runFolder(d *daemon, short string, id int) string {
	return filepath.Join(d.state, "jobs", short, "runs", strconv.Itoa(id))
}

// signalDir is a folder every user may write, for a test and a shell
// running as another user to signal each other with files.
func signalDir(t *testing.T, d *daemon) string {
	t.Helper()
	dir, err := os.MkdirTemp(d.dir, "signal-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startGroup starts cmd in a process group of its own, killed when t ends.
func startGroup(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// Ended already when the test passed: ESRCH is expected then.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	})
}

// waitShell waits for a shell startGroup started and returns its output.
func waitShell(t *testing.T, shell *exec.Cmd, out *syncBuffer) string {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- shell.Wait() }()
	select {
	case <-done:
	case <-time.After(shTimeout):
		t.Fatalf("the shell did not end:\n%s", out.String())
	}
	return out.String()
}

func TestSecurityStateFolderClosed(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	d := shareDaemon(t)
	A := shareAs(users[0])
	A.job(t, d, "etl", "#!/bin/sh\necho secret-output > \"$2/out.txt\"\n")
	A.ok(t, d, `echo '{"k": "payload-secret"}' > mnt/etl/data`)
	if got := d.waitRun(t, "@"+users[0].name+"/etl", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	for path, want := range map[string]os.FileMode{
		d.state:                              0o711,
		filepath.Join(d.state, "jobs"):       0o700,
		filepath.Join(d.state, "images"):     0o700,
		filepath.Join(d.state, "jobfs.db"):   0o600,
		filepath.Join(d.state, "master.key"): 0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
	short := strings.TrimSpace(A.ok(t, d, `cat mnt/etl/shortname`))
	run := runFolder(d, short, 1)
	// Another user, the owner herself: nothing below the state folder is
	// reachable from the host, so no link can be planted in a run folder.
	for _, script := range []string{
		`ls "$S"`, `cat "$S/jobfs.db"`, `cat "$S/master.key"`, `ls "$S/jobs"`,
		`cat "$R/input/input.json"`, `cat "$R/output/out.txt"`,
		`ln -sf /etc/shadow "$R/output/out.txt"`,
	} {
		r := A.run(t, d, script, "S="+d.state, "R="+run)
		if r.code == 0 || strings.Contains(r.out, "secret") {
			t.Errorf("as the job's owner on the host: %s\nwant a failure", r)
		}
	}
	A.check(t, d, nil,
		shareOut(`cat mnt/etl/runs/1/result`, "secret-output\n"),
		shareOut(`cat mnt/etl/runs/1/input/input.json`, `{"k": "payload-secret"}`+"\n"))
}

// TestSecuritySymlinksNotFollowed: links a step leaves in its output, and
// links planted on the host (here by root, standing in for a state folder
// of an older jobfs that users could write), are never followed by the
// daemon: not in output/, steps/*/output, result or the zip. A link is
// listed as a link, its target is text (readlink); a reader that follows
// it does so in its own namespace with its own rights (here: Permission
// denied on /etc/shadow), as on any disk.
func TestSecuritySymlinksNotFollowed(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	d := shareDaemon(t)
	A := shareAs(users[0])
	alice := "@" + users[0].name

	t.Run("left by a step", func(t *testing.T) {
		A.job(t, d, "links", `#!/bin/sh
ln -s /etc/shadow "$2/shadow"
ln -s /etc "$2/etc"
ln -s / "$2/root"
mkdir "$2/sub" && ln -s /etc/shadow "$2/sub/deep"
echo ok > "$2/sub/real.txt"
`)
		A.ok(t, d, `echo '{}' > mnt/links/data`)
		if got := d.waitRun(t, alice+"/links", 1); got != "COMPLETED" {
			t.Fatalf("run 1 ended %s, want COMPLETED", got)
		}
		A.check(t, d, nil,
			shareOut(`ls -A mnt/links/runs/1/output`, "etc\nroot\nshadow\nsub\n"),
			shareOut(`ls -A mnt/links/runs/1/output/sub`, "deep\nreal.txt\n"),
			shareOut(`readlink mnt/links/runs/1/output/shadow mnt/links/runs/1/output/sub/deep`, "/etc/shadow\n/etc/shadow\n"),
			shareErr(`cat mnt/links/runs/1/output/shadow`, "Permission denied"),
			shareErr(`cat mnt/links/runs/1/output/etc/shadow`, "Permission denied"),
			shareErr(`cat mnt/links/runs/1/output/root/etc/shadow`, "Permission denied"),
			shareErr(`cat mnt/links/runs/1/output/sub/deep`, "Permission denied"),
			// the single regular file is the result
			shareOut(`cat mnt/links/runs/1/result`, "ok\n"),
			shareDo(`find mnt/links >/dev/null && du -s mnt/links >/dev/null && tar -cf /dev/null mnt/links/runs`))
		r := A.run(t, d, `grep -r root: mnt/links/runs; cat mnt/links/runs/1/output/* 2>&1`)
		if shadowLine.MatchString(r.out) {
			t.Fatalf("a link a step left was followed:\n%s", r)
		}
	})

	t.Run("left by a chain step", func(t *testing.T) {
		dir := filepath.Join(d.repos, users[0].name)
		shareCmd(t, "install", "-d", "-o", users[0].name, "-g", users[0].gid, "-m", "0755", dir)
		A.ok(t, d, `set -e
mkdir "$R/linker" "$R/after"
printf '#!/bin/sh\nln -s /etc/shadow "$2/shadow"\nln -s /etc "$2/etc"\necho x > "$2/x.txt"\n' > "$R/linker/entrypoint"
printf '#!/bin/sh\nls -A "$1" > "$2/seen.txt"\n' > "$R/after/entrypoint"
chmod 755 "$R/linker/entrypoint" "$R/after/entrypoint"
mkdir mnt/chainlinks
printf 'a <- linker\nb <- after\na -> b\n' > mnt/chainlinks/config/chains
echo '{}' > mnt/chainlinks/data`, "R="+dir)
		if got := d.waitRun(t, alice+"/chainlinks", 1); got != "COMPLETED" {
			t.Fatalf("run 1 ended %s, want COMPLETED; log:\n%s", got, A.ok(t, d, `cat mnt/chainlinks/runs/1/log`))
		}
		A.check(t, d, nil,
			shareOut(`ls -A mnt/chainlinks/runs/1/steps/a/output`, "etc\nshadow\nx.txt\n"),
			shareErr(`cat mnt/chainlinks/runs/1/steps/a/output/shadow`, "Permission denied"),
			shareErr(`cat mnt/chainlinks/runs/1/steps/a/output/etc/shadow`, "Permission denied"),
			// The next step sees what a reads (links included: inside a
			// step they resolve with the step user's rights, in its root).
			shareDo(`grep -qx x.txt mnt/chainlinks/runs/1/result`))
		if r := A.run(t, d, `grep -r root: mnt/chainlinks/runs`); shadowLine.MatchString(r.out) {
			t.Fatalf("a link a chain step left was followed:\n%s", r)
		}
	})

	t.Run("folder swapped for a link under a shell", func(t *testing.T) {
		// The step makes output/d, waits until a shell sits in it, then
		// swaps d for a link to /etc; the shell's relative lookups must not
		// reach /etc.
		A.job(t, d, "swap", `#!/bin/sh
mkdir "$2/d" && echo inside > "$2/d/x"
while [ ! -e "$2/go" ]; do sleep 0.05; done
rm -rf "$2/d" && ln -s /etc "$2/d"
echo done > "$2/swapped"
exec sleep 60
`)
		A.ok(t, d, `echo '{}' > mnt/swap/data`)
		d.waitStatus(t, alice+"/swap", 1, "RUNNING")
		tmp := signalDir(t, d)
		short := strings.TrimSpace(A.ok(t, d, `cat mnt/swap/shortname`))
		out := runFolder(d, short, 1) + "/output"
		waitFor(t, "the step to make output/d", func() bool { _, err := os.Stat(out + "/d/x"); return err == nil })
		shell := exec.Command("runuser", "-u", users[0].name, "--", "/bin/bash", "-c", `
cd mnt/swap/runs/1/output/d || exit 9
cat x
touch "$T/ready"
while [ ! -e "$T/swapped" ]; do sleep 0.05; done
cat shadow; echo "cat=$?"
cat ../d/shadow; echo "cat2=$?"
ls; echo "ls=$?"`)
		shell.Dir = d.dir
		shell.Env = append(os.Environ(), "T="+tmp, "LC_ALL=C")
		var buf syncBuffer
		shell.Stdout, shell.Stderr = &buf, &buf
		startGroup(t, shell)
		waitFor(t, "the shell to sit in output/d", func() bool { _, err := os.Stat(tmp + "/ready"); return err == nil })
		if err := os.WriteFile(out+"/go", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the step to swap d for a link", func() bool { _, err := os.Stat(out + "/swapped"); return err == nil })
		if err := os.WriteFile(tmp+"/swapped", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		got := waitShell(t, shell, &buf)
		if strings.Contains(got, secretMarker) || strings.Contains(got, "passwd") || !strings.Contains(got, "inside") ||
			strings.Contains(got, "cat=0") || strings.Contains(got, "cat2=0") {
			t.Fatalf("a shell inside a folder swapped for a link to /etc:\n%s", got)
		}
		A.ok(t, d, `echo kill > mnt/swap/runs/1/ctl`)
		d.waitRun(t, alice+"/swap", 1)
	})

	t.Run("planted on the host: result and zip", func(t *testing.T) {
		A.job(t, d, "plant", `#!/bin/sh
echo one > "$2/a.txt"
while [ ! -e "$2/go" ]; do sleep 0.05; done
echo two > "$2/b.txt"
`)
		A.ok(t, d, `echo '{}' > mnt/plant/data`)
		d.waitStatus(t, alice+"/plant", 1, "RUNNING")
		short := strings.TrimSpace(A.ok(t, d, `cat mnt/plant/shortname`))
		out := runFolder(d, short, 1) + "/output"
		waitFor(t, "the step to write a.txt", func() bool { _, err := os.Stat(out + "/a.txt"); return err == nil })
		for name, target := range map[string]string{"evil": "/etc/shadow", "etc": "/etc", "key": filepath.Join(d.state, "master.key")} {
			if err := os.Symlink(target, filepath.Join(out, name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(out+"/go", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := d.waitRun(t, alice+"/plant", 1); got != "COMPLETED" {
			t.Fatalf("run 1 ended %s, want COMPLETED", got)
		}
		listing := A.ok(t, d, `python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(" ".join(sorted(z.namelist()))); [sys.stdout.write(z.read(n).decode()) for n in z.namelist()]' mnt/plant/runs/1/result`)
		if !strings.HasPrefix(listing, "a.txt b.txt go\n") || strings.Contains(listing, secretMarker) {
			t.Fatalf("the result zip holds more than the run's regular files:\n%s", listing)
		}
		// A single-file result swapped for a link after the run.
		A.job(t, d, "single", "#!/bin/sh\necho mine > \"$2/out.txt\"\n")
		A.ok(t, d, `echo '{}' > mnt/single/data`)
		if got := d.waitRun(t, alice+"/single", 1); got != "COMPLETED" {
			t.Fatalf("run 1 ended %s, want COMPLETED", got)
		}
		short = strings.TrimSpace(A.ok(t, d, `cat mnt/single/shortname`))
		res := runFolder(d, short, 1) + "/output/out.txt"
		A.check(t, d, nil, shareOut(`cat mnt/single/runs/1/result`, "mine\n"))
		if err := os.Remove(res); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/shadow", res); err != nil {
			t.Fatal(err)
		}
		r := A.run(t, d, `cat mnt/single/runs/1/result; cat mnt/single/runs/1/output/out.txt`)
		if r.code == 0 || strings.Contains(r.out, secretMarker) {
			t.Fatalf("a result swapped for a link to /etc/shadow was followed:\n%s", r)
		}
	})
}

// TestSecurityRevokedShellInside: bob's shell sits inside alice's job when
// alice removes his share; nothing of a run made afterwards reaches him.
func TestSecurityRevokedShellInside(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	d := shareDaemon(t)
	A := shareAs(alice)
	A.job(t, d, "etl", "#!/bin/sh\necho log-after\necho result-after > \"$2/out.txt\"\n")
	A.ok(t, d, `echo '{}' > mnt/etl/data && touch "mnt/etl/shared/@$U"`, "U="+bob.name)
	if got := d.waitRun(t, "@"+alice.name+"/etl", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s, want COMPLETED", got)
	}
	tmp := signalDir(t, d)
	shell := exec.Command("runuser", "-u", bob.name, "--", "/bin/bash", "-c", `
cd "mnt/@$A/etl/runs" || exit 9
cat 1/status
touch "$T/inside"
while [ ! -e "$T/revoked" ]; do sleep 0.05; done
cat 2/input/input.json; echo "payload=$?"
cat 2/log; echo "log=$?"
cat latest/result; echo "result=$?"
cat 1/result; echo "old=$?"
ls; echo "ls=$?"
cat ../config/timeout; echo "config=$?"`)
	shell.Dir = d.dir
	shell.Env = append(os.Environ(), "T="+tmp, "A="+alice.name, "LC_ALL=C")
	var buf syncBuffer
	shell.Stdout, shell.Stderr = &buf, &buf
	startGroup(t, shell)
	waitFor(t, "bob's shell to sit inside alice's job", func() bool { _, err := os.Stat(tmp + "/inside"); return err == nil })
	A.ok(t, d, `rm "mnt/etl/shared/@$U" && echo '{"p": "payload-after"}' > mnt/etl/data`, "U="+bob.name)
	if got := d.waitRun(t, "@"+alice.name+"/etl", 2); got != "COMPLETED" {
		t.Fatalf("run 2 ended %s, want COMPLETED", got)
	}
	if err := os.WriteFile(tmp+"/revoked", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := waitShell(t, shell, &buf)
	if !strings.HasPrefix(got, "COMPLETED\n") {
		t.Fatalf("bob could not read alice's run before the share was removed:\n%s", got)
	}
	for _, leak := range []string{"payload-after", "log-after", "result-after", "payload=0", "log=0", "result=0", "old=0", "ls=0", "config=0"} {
		if strings.Contains(got, leak) {
			t.Errorf("after the share was removed, bob's shell inside the job still got %q:\n%s", leak, got)
		}
	}
}
