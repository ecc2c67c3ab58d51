package jobs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/jobs/chain"
)

// Image is a resolved repo image: the folder holding its entrypoint.
type Image struct {
	Ref        string // canonical @owner/name:label
	Dir        string // the folder the step runs from
	Entrypoint string // Dir/entrypoint
	Commit     string // for git repos: the commit of the snapshot
}

// ResolvedChain is a chain whose images were found.
type ResolvedChain struct {
	chain.Chain
	Images map[string]Image // by label
}

// resolveChains parses a chains value for job j and resolves its images
// (without exporting git snapshots: that waits for a run).
func (m *Manager) resolveChains(j Job, v string) (ResolvedChain, error) {
	c, err := chain.Parse(v)
	if err != nil {
		return ResolvedChain{}, err
	}
	rc := ResolvedChain{Chain: c, Images: map[string]Image{}}
	for _, s := range c.Steps {
		img, err := m.resolveImage(j, s.Ref, false)
		if err != nil {
			return ResolvedChain{}, fmt.Errorf("config/chains: line %d: %w", s.Line, err)
		}
		rc.Images[s.Label] = img
	}
	return rc, nil
}

// resolveImage turns `name` or `@owner/name:label` into a runnable folder.
// A plain folder has only the label latest. In a git repository a label is
// a branch, tag or commit, and latest is HEAD; with export set, the commit is
// exported once to a read-only snapshot under <state>/images.
func (m *Manager) resolveImage(j Job, ref string, export bool) (Image, error) {
	owner, name, label, ok := chain.SplitRef(ref)
	if !ok {
		return Image{}, errorf(ErrInvalid, "%q is not an image reference (name or @owner/name:label)", ref)
	}
	if owner == "" {
		owner = userName(j.Owner)
	}
	if label == "" {
		label = "latest"
	}
	repo := filepath.Join(m.repos, owner, name)
	img := Image{Ref: "@" + owner + "/" + name + ":" + label, Dir: repo}
	if st, err := os.Stat(repo); err != nil || !st.IsDir() {
		return Image{}, errorf(ErrInvalid, "unknown image %s: no folder %s", img.Ref, repo)
	}
	if err := ownerMayRead(j.Owner, repo); err != nil {
		return Image{}, errorf(ErrInvalid, "image %s: %v", img.Ref, err)
	}
	if isGitRepo(repo) {
		return m.gitImage(img, repo, label, export)
	}
	if label != "latest" {
		return Image{}, errorf(ErrInvalid, "image %s: %s is not a git repository, so its only label is latest", img.Ref, repo)
	}
	img.Entrypoint = filepath.Join(repo, "entrypoint")
	if err := checkEntrypoint(img); err != nil {
		return Image{}, err
	}
	return img, nil
}

func checkEntrypoint(img Image) error {
	st, err := os.Stat(img.Entrypoint)
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return errorf(ErrInvalid, "unknown image %s: no executable %s", img.Ref, img.Entrypoint)
	}
	return nil
}

func isGitRepo(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".git"))
	return err == nil
}

// gitRunner runs git in one repository as the repository's owner when the
// daemon is root: git then reads no more than that user could, its
// ownership check (safe.directory) holds, and a .git file or symlink
// pointing elsewhere is followed with the owner's rights, not root's.
type gitRunner struct {
	repo string
	cred *syscall.Credential // nil: as the daemon itself
	env  []string
}

// newGitRunner prepares git for repo, a real folder (not a symlink: its
// owner is who git runs as).
func newGitRunner(repo string) (gitRunner, error) {
	st, err := os.Lstat(repo)
	if err != nil {
		return gitRunner{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok {
		return gitRunner{}, fmt.Errorf("%s is not a folder (a git image cannot be a symlink: git runs as the owner of the folder)", repo)
	}
	g := gitRunner{repo: repo}
	home := "/"
	if u, err := user.LookupId(strconv.FormatUint(uint64(sys.Uid), 10)); err == nil && u.HomeDir != "" {
		home = u.HomeDir
	}
	if os.Geteuid() == 0 && sys.Uid != 0 {
		g.cred = &syscall.Credential{Uid: sys.Uid, Gid: primaryGroup(sys.Uid), Groups: groupsOf(sys.Uid)}
	} else if os.Geteuid() != 0 {
		home = os.Getenv("HOME") // the daemon's own user
	}
	// Nothing of the daemon's environment (GIT_DIR and friends); C
	// messages, so that git's errors read the same everywhere.
	g.env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LC_ALL=C"}
	return g, nil
}

// gitTimeout bounds one git command. git runs as the repository's owner,
// who can stop or slow it (ptrace): a run or a write of config/chains
// waits for it no longer than this.
const gitTimeout = 10 * time.Minute

// command is git args in the repository, as its owner, killed when ctx
// ends.
func (g gitRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.repo // entered after the switch to the owner: with the owner's rights
	cmd.Env = g.env
	cmd.WaitDelay = time.Second // a child of git holding its output open does not hold us
	if g.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: g.cred}
	}
	return cmd
}

// gitError is a failed git command: stderr says why (empty when git was
// asked to be quiet about a revision it does not know).
type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.args, " "), e.err, e.stderr)
}

// run runs git args and returns its trimmed output.
func (g gitRunner) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := g.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &gitError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(string(out)), nil
}

// gitImage resolves label in a git repository to a commit and, with
// export, to its read-only snapshot.
func (m *Manager) gitImage(img Image, repo, label string, export bool) (Image, error) {
	g, err := newGitRunner(repo)
	if err != nil {
		return Image{}, errorf(ErrInvalid, "image %s: %v", img.Ref, err)
	}
	rev := label
	if label == "latest" {
		rev = "HEAD"
	}
	commit, err := g.run("rev-parse", "--verify", "--quiet", rev+"^{commit}")
	var ge *gitError
	switch {
	case errors.As(err, &ge) && ge.stderr != "":
		// Not an unknown label: git could not read the repository.
		return Image{}, errorf(ErrInvalid, "image %s: %s", img.Ref, ge.stderr)
	case err != nil || commit == "":
		return Image{}, errorf(ErrInvalid, "image %s: %q is not a branch, tag or commit of %s", img.Ref, label, repo)
	}
	img.Commit = commit
	mode, err := g.run("ls-tree", commit, "entrypoint")
	if err != nil || !strings.HasPrefix(mode, "100755 ") {
		return Image{}, errorf(ErrInvalid, "unknown image %s: commit %.12s has no executable entrypoint", img.Ref, commit)
	}
	img.Dir = filepath.Join(m.state, "images", commit)
	img.Entrypoint = filepath.Join(img.Dir, "entrypoint")
	if export {
		if err := exportCommit(g, commit, img.Dir); err != nil {
			return Image{}, fmt.Errorf("image %s: export commit %.12s: %w", img.Ref, commit, err)
		}
	}
	return img, nil
}

// exportCommit writes the tree of commit to dir once (cached per commit),
// read-only and readable by every step's user. A half-written export never
// becomes visible: it is built beside dir and renamed into place.
func exportCommit(g gitRunner, commit, dir string) (err error) {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".export-")
	if err != nil {
		return err
	}
	defer func() {
		// Once renamed, tmp is gone. A leftover beside an image in place
		// (another export won the rename) only takes space.
		if rerr := os.RemoveAll(tmp); rerr != nil && err != nil {
			err = fmt.Errorf("%w (and removing %s: %v)", err, tmp, rerr)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	archive := g.command(ctx, "archive", "--format=tar", commit)
	var stderr bytes.Buffer
	archive.Stderr = &stderr
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	if err := archive.Start(); err != nil {
		return err
	}
	// At the deadline the pipe closes, so a read blocked on a stalled git
	// returns (and the git is killed).
	unblock := context.AfterFunc(ctx, func() { _ = pipe.Close() })
	defer unblock()
	xerr := untar(pipe, tmp)
	if xerr == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(pipe, 1<<20)) // tar's end padding; a problem shows in Wait
	}
	_ = pipe.Close() // read what we need: a git that writes on ends with SIGPIPE
	werr := archive.Wait()
	switch {
	case xerr != nil:
		return xerr
	case werr != nil:
		return fmt.Errorf("git archive: %v: %s", werr, strings.TrimSpace(stderr.String()))
	}
	readOnly(tmp)
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(dir); serr != nil {
			return err
		}
	}
	return nil
}

// untar extracts the tar stream of git archive below dir, in this process:
// every name is resolved beneath dir (os.Root: no "..", no absolute path,
// no symlink leading out), only folders, files and symlinks are made, and
// the archive's owners and setuid bits are ignored. The stream comes from
// a process of the repository's owner, so it is not trusted.
func untar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // a folder handle: nothing to flush
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read git archive: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeXGlobalHeader: // the commit id git archive records
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = untarFile(root, name, h.Mode, tr)
		case tar.TypeSymlink:
			err = root.Symlink(h.Linkname, name)
		default:
			err = fmt.Errorf("unexpected entry type %q", h.Typeflag)
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", h.Name, err)
		}
	}
}

// untarFile writes one regular file: 0755 when any execute bit is set,
// else 0644.
func untarFile(root *os.Root, name string, mode int64, r io.Reader) error {
	perm := os.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	if d := filepath.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close() // the copy error is the one to report
		return err
	}
	return f.Close()
}

// readOnly makes every folder below dir (dir included) 0555 and every
// file 0444, or 0555 when executable: steps run as their job's owner and
// must read the snapshot, and none may change it. Symlinks are skipped:
// chmod would follow them.
func readOnly(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		mode := os.FileMode(0o444)
		if info, err := d.Info(); err == nil && (d.IsDir() || info.Mode()&0o111 != 0) {
			mode = 0o555
		}
		_ = os.Chmod(p, mode) // best effort: a step that cannot read a file says so in its log
		return nil
	})
	_ = os.Chmod(dir, 0o555) // made 0700 by MkdirTemp
}

// userName returns the login name of uid, or the number when it has none.
func userName(uid Owner) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return strconv.FormatUint(uint64(uid), 10)
	}
	return u.Username
}

// ownerMayRead checks that the job's owner could read the image folder
// itself. A step's /app is bound by the root init, which ignores the
// permissions of the path to it, and a git image is exported by git running
// as the repository's owner: without this check alice's job could run, and
// read, bob's private image. Checked only when someone else owns the folder
// (a process as the owner asks test(1)), so one's own images cost nothing.
func ownerMayRead(owner Owner, dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if os.Geteuid() != 0 || owner == 0 || !ok || sys.Uid == owner {
		return nil
	}
	cmd := exec.Command("test", "-r", dir, "-a", "-x", dir)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: owner, Gid: primaryGroup(owner), Groups: groupsOf(owner)}}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s belongs to %s and %s may not read it", dir, userName(sys.Uid), userName(owner))
	}
	return nil
}
