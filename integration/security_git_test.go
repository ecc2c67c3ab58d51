//go:build linux

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOwnGitImage: a user's own git repository under <repos>/<user>/ is an
// image of her jobs, by :latest and by a tag. git runs as the repository's
// owner (as root, git's ownership check refused it as "not a branch"), the
// snapshot is readable by her steps, and a symlink in the repository is
// exported as a symlink: nothing it points to is changed.
func TestOwnGitImage(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is needed for git images")
	}
	users, _ := shareUsers(t, 1, false)
	alice := users[0]
	A := shareAs(alice)
	d := shareDaemon(t)

	// A root-only file the repository links to: exporting the snapshot must
	// not follow the link (chmod of it made root's file world-readable).
	private := filepath.Join(t.TempDir(), "private")
	if err := os.WriteFile(private, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	shareCmd(t, "install", "-d", "-o", alice.name, "-g", alice.gid, "-m", "0755", filepath.Join(d.repos, alice.name))
	repo := filepath.Join(d.repos, alice.name, "img")
	e := shareEnv("R", repo, "P", private)
	A.ok(t, d, `set -e
g() { git -C "$R" -c user.name=jobfs-test -c user.email=test@jobfs.invalid -c init.defaultBranch=main "$@"; }
mkdir "$R"
g init -q
printf '#!/bin/sh\necho "v1 as $(id -u)"\necho v1 > "$2/out.txt"\n' > "$R/entrypoint"
chmod 755 "$R/entrypoint"
ln -s "$P" "$R/link"
g add entrypoint link
g commit -q -m v1
g tag v1
printf '#!/bin/sh\necho "latest as $(id -u)"\necho latest > "$2/out.txt"\ncat /app/entrypoint > /dev/null && echo app readable\n' > "$R/entrypoint"
g commit -q -a -m latest`, e...)

	A.check(t, d, e,
		shareDo(`mkdir mnt/latest mnt/tagged`),
		shareDo(`echo img > mnt/latest/config/chains`),
		shareDo(`echo img:v1 > mnt/tagged/config/chains`),
		shareDo(`echo '{}' > mnt/latest/data`),
		shareDo(`echo '{}' > mnt/tagged/data`))
	for job, want := range map[string]string{"latest": "latest", "tagged": "v1"} {
		if got := d.waitRun(t, "@"+alice.name+"/"+job, 1); got != "COMPLETED" {
			t.Errorf("%s: run ended %s, want COMPLETED; log:\n%s", job, got, A.ok(t, d, `cat mnt/`+job+`/runs/1/log mnt/`+job+`/log`))
			continue
		}
		A.want(t, d, `cat mnt/`+job+`/runs/1/result`, want+"\n")
		log := A.ok(t, d, `cat mnt/`+job+`/runs/1/log`)
		if !strings.HasPrefix(log, want+" as "+alice.uid+"\n") {
			t.Errorf("%s: log %q, want the step run as %s", job, log, alice.uid)
		}
		if job == "latest" && !strings.Contains(log, "app readable\n") {
			t.Errorf("%s: log %q: the step could not read its snapshot", job, log)
		}
	}

	// The snapshots: read-only, the link a link, its target untouched.
	snaps, err := filepath.Glob(filepath.Join(d.state, "images", alice.uid, "[0-9a-f]*"))
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots %q (%v), want two (v1 and latest)", snaps, err)
	}
	for _, s := range snaps {
		if st, err := os.Stat(s); err != nil || st.Mode().Perm() != 0o555 {
			t.Errorf("snapshot %s: %v %v, want a folder 0555", s, st.Mode(), err)
		}
		if target, err := os.Readlink(filepath.Join(s, "link")); err != nil || target != private {
			t.Errorf("snapshot %s: link -> %q (%v), want a symlink to %s", s, target, err, private)
		}
	}
	if st, err := os.Stat(private); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the file the repository links to is now %v (%v), want 0600 as before", st.Mode(), err)
	}
}

// TestOthersPrivateImage: bob's image folder, private to him, is refused
// as an image of alice's job (the root init would bind it whatever the
// path's permissions, and git runs as bob); once bob opens it, it runs.
func TestOthersPrivateImage(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	A, B := shareAs(alice), shareAs(bob)
	d := shareDaemon(t)
	shareCmd(t, "install", "-d", "-o", bob.name, "-g", bob.gid, "-m", "0700", filepath.Join(d.repos, bob.name))
	e := shareEnv("R", filepath.Join(d.repos, bob.name, "img"), "B", bob.name)
	B.ok(t, d, `mkdir -m 0755 "$R" && printf '#!/bin/sh\necho bob-image > "$2/out.txt"\n' > "$R/entrypoint" && chmod 755 "$R/entrypoint"`, e...)
	A.ok(t, d, `mkdir mnt/uses`)
	r := A.run(t, d, `echo "@$B/img" > mnt/uses/config/chains`, e...)
	if r.code == 0 || !strings.Contains(A.ok(t, d, `tail -n 1 mnt/uses/log`), "img is not a folder "+alice.name+" may read") {
		t.Fatalf("alice's chain on bob's private image: %s\nlog: %s", r, A.ok(t, d, `tail -n 1 mnt/uses/log`))
	}
	// Nor does a link in her own repos folder through his private one: a
	// link is refused whatever it leads to (the daemon resolved it as root).
	shareCmd(t, "install", "-d", "-o", alice.name, "-g", alice.gid, "-m", "0755", filepath.Join(d.repos, alice.name))
	A.ok(t, d, `ln -s "$R" "$L"`, append(e, "L="+filepath.Join(d.repos, alice.name, "viabob"))...)
	r = A.run(t, d, `echo viabob > mnt/uses/config/chains`, e...)
	if r.code == 0 || !strings.Contains(A.ok(t, d, `tail -n 1 mnt/uses/log`), "viabob is not a folder "+alice.name+" may read") {
		t.Fatalf("alice's chain on a link through bob's private folder: %s\nlog: %s", r, A.ok(t, d, `tail -n 1 mnt/uses/log`))
	}
	// A name that is not there reads the same: bob's private folder tells
	// alice nothing of what is in it.
	r = A.run(t, d, `echo "@$B/nothere" > mnt/uses/config/chains`, e...)
	if r.code == 0 || !strings.Contains(A.ok(t, d, `tail -n 1 mnt/uses/log`), "nothere is not a folder "+alice.name+" may read") {
		t.Fatalf("alice's chain on a name bob does not have: %s\nlog: %s", r, A.ok(t, d, `tail -n 1 mnt/uses/log`))
	}
	B.ok(t, d, `chmod 0755 "$(dirname "$R")"`, e...)
	A.ok(t, d, `echo "@$B/img" > mnt/uses/config/chains && echo '{}' > mnt/uses/data`, e...)
	if got := d.waitRun(t, "@"+alice.name+"/uses", 1); got != "COMPLETED" {
		t.Fatalf("run on bob's opened image ended %s", got)
	}
	A.want(t, d, `cat mnt/uses/runs/1/result`, "bob-image\n")
}

// TestGitImageNotShared: a snapshot of a git image serves only images of
// the same user's repositories. Bob's git prints whatever he makes a commit
// id stand for (a refs/replace entry, a crafted object): with snapshots
// kept by commit id alone, bob's job exported alice's commit from his
// repository with his code in it, and alice's job then ran bob's code as
// alice, with her secrets (as root, for a root job). Now bob's replace ref
// is ignored (his repository has no such commit: refused at write), a
// snapshot bob's git had made of that commit is not alice's, and the
// snapshots an older jobfs kept by commit id alone are removed at start.
func TestGitImageNotShared(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is needed for git images")
	}
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	A, B := shareAs(alice), shareAs(bob)
	d := shareDaemon(t)
	for _, u := range users {
		shareCmd(t, "install", "-d", "-o", u.name, "-g", u.gid, "-m", "0755", filepath.Join(d.repos, u.name))
	}
	git := `g() { git -C "$R" -c user.name=jobfs-test -c user.email=test@jobfs.invalid -c init.defaultBranch=main "$@"; }
mkdir "$R"
g init -q
printf '#!/bin/sh\necho "%s"\n' "$SAY" > "$R/entrypoint"
chmod 755 "$R/entrypoint"
g add entrypoint
g commit -q -m one
g rev-parse HEAD`
	commit := strings.TrimSpace(A.ok(t, d, "set -e\n"+git, "R="+filepath.Join(d.repos, alice.name, "tool"), "SAY=alice's tool"))
	evil := strings.TrimSpace(B.ok(t, d, "set -e\n"+git, "R="+filepath.Join(d.repos, bob.name, "evil"), "SAY=EVIL"))
	B.ok(t, d, `mkdir -p "$R/.git/refs/replace" && echo "$Y" > "$R/.git/refs/replace/$X"`,
		"R="+filepath.Join(d.repos, bob.name, "evil"), "X="+commit, "Y="+evil)

	// bob's repository does not have alice's commit: his replace ref does
	// not make it so.
	B.ok(t, d, `mkdir mnt/poison`)
	B.fails(t, d, `echo "evil:$X" > mnt/poison/config/chains`, "Invalid argument", "X="+commit)

	// A snapshot of alice's commit id made by bob's git (planted here as his
	// git would have printed it), and one an older jobfs kept by id alone.
	for _, dir := range []string{filepath.Join(d.state, "images", bob.uid, commit), filepath.Join(d.state, "images", commit)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "entrypoint"), []byte("#!/bin/sh\necho EVIL as $(id -u)\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	A.ok(t, d, `mkdir mnt/victim && echo tool > mnt/victim/config/chains && echo '{}' > mnt/victim/data`)
	if got := d.waitRun(t, "@"+alice.name+"/victim", 1); got != "COMPLETED" {
		t.Fatalf("alice's run ended %s, want COMPLETED; log:\n%s", got, A.ok(t, d, `cat mnt/victim/runs/1/log`))
	}
	A.want(t, d, `cat mnt/victim/runs/1/log`, "alice's tool\n")
	if _, err := os.Stat(filepath.Join(d.state, "images", alice.uid, commit, "entrypoint")); err != nil {
		t.Errorf("alice's snapshot is not under images/<her uid>/: %v", err)
	}
	d.stop(t)
	d.restart(t)
	waitFor(t, "the snapshot kept by commit id alone removed", func() bool {
		_, err := os.Stat(filepath.Join(d.state, "images", commit))
		return os.IsNotExist(err)
	})
}
