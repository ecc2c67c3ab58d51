package jobs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jobfs/jobfs/jobs/chain"
	"github.com/jobfs/jobfs/jobs/domain"
	"github.com/jobfs/jobfs/jobs/image"
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
	// One answer for a folder that is not there and one the job's owner
	// may not read: another user's private repos folder tells no one which
	// names are in it. A symlink is not followed (the daemon would resolve
	// it with root's rights: a link through another user's private folder
	// told whether a name was there); the step's init refuses one anyway.
	unknown := errorf(ErrInvalid, "unknown image %s: %s is not a folder %s may read", img.Ref, repo, userName(j.Owner))
	if st, err := os.Lstat(repo); err != nil || !st.IsDir() {
		return Image{}, unknown
	}
	if err := ownerMayRead(j.Owner, repo); err != nil {
		return Image{}, unknown
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

// gitImage resolves label in a git repository to a commit and, with
// export, to its read-only snapshot.
func (m *Manager) gitImage(img Image, repo, label string, export bool) (Image, error) {
	g, err := image.NewGit(repo)
	if err != nil {
		return Image{}, errorf(ErrInvalid, "image %s: %v", img.Ref, err)
	}
	rev := label
	if label == "latest" {
		rev = "HEAD"
	}
	if strings.HasPrefix(label, "-") { // git would take it for an option
		return Image{}, errorf(ErrInvalid, "image %s: %q is not a branch, tag or commit of %s", img.Ref, label, repo)
	}
	commit, err := g.Run("rev-parse", "--verify", "--quiet", rev+"^{commit}")
	var ge *image.GitError
	switch {
	case errors.As(err, &ge) && ge.Stderr != "":
		// Not an unknown label: git could not read the repository.
		return Image{}, errorf(ErrInvalid, "image %s: %s", img.Ref, ge.Stderr)
	case err != nil || commit == "":
		return Image{}, errorf(ErrInvalid, "image %s: %q is not a branch, tag or commit of %s", img.Ref, label, repo)
	case !image.IsObjectID(commit):
		// git runs as the repository's owner, who can make it print
		// anything (ptrace): what it prints names a folder of the state.
		return Image{}, errorf(ErrInvalid, "image %s: git printed %.80q for %q, not a commit id", img.Ref, commit, label)
	}
	img.Commit = commit
	mode, err := g.Run("ls-tree", commit, "--", "entrypoint")
	if err != nil || !strings.HasPrefix(mode, "100755 ") {
		return Image{}, errorf(ErrInvalid, "unknown image %s: commit %.12s has no executable entrypoint", img.Ref, commit)
	}
	// Snapshots are kept per owner of the repository: its git, run as that
	// user, prints whatever that user makes a commit id stand for (a crafted
	// object, a replace ref), so one user's export of a commit must never
	// serve another user's repository that has the same commit id.
	img.Dir = filepath.Join(m.state, "images", strconv.FormatUint(uint64(g.Owner()), 10), commit)
	img.Entrypoint = filepath.Join(img.Dir, "entrypoint")
	if export {
		if err := image.Export(g, commit, img.Dir); err != nil {
			return Image{}, fmt.Errorf("image %s: export commit %.12s: %w", img.Ref, commit, err)
		}
	}
	return img, nil
}

// removeSharedSnapshots removes the snapshots an older jobfs kept by commit
// id alone (images/<commit>), shared by every user's repositories: one of
// them may hold what another user's repository made that commit id stand
// for. Snapshots are images/<owner>/<commit> now; the old ones are never
// read again.
func removeSharedSnapshots(images string) {
	entries, _ := os.ReadDir(images) // none: nothing to remove
	for _, e := range entries {
		if n := e.Name(); image.IsObjectID(n) && e.IsDir() {
			_ = removeReadOnly(filepath.Join(images, n)) // a left one is never used
		}
	}
}

// removeReadOnly removes a snapshot, whose folders are 0555: made writable
// first, for a daemon that is not root.
func removeReadOnly(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700) // a folder left read-only fails the removal below
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// userName returns the login name of uid, or the number when it has none.
func userName(uid Owner) string { return domain.UserName(uid) }

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
	args := []string{"-r", dir, "-a", "-x", dir}
	if isGitRepo(dir) { // git runs as the folder's owner: its .git must be the job owner's to read too
		git := filepath.Join(dir, ".git")
		args = append(args, "-a", "-r", git, "-a", "-x", git)
	}
	cmd := exec.Command("test", args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: domain.Credential(owner)}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s belongs to %s and %s may not read it", dir, userName(sys.Uid), userName(owner))
	}
	return nil
}
