package jobs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Image is a resolved repo image: the folder holding its entrypoint.
type Image struct {
	Ref        string // canonical @owner/name:label
	Dir        string // the folder the step runs from
	Entrypoint string // Dir/entrypoint
	Commit     string // for git repos: the commit of the snapshot
}

var imageRefRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:@([a-z_][a-z0-9_.-]*)/)?([A-Za-z0-9][A-Za-z0-9._-]{0,63})(?::([A-Za-z0-9._/-]{1,128}))?$`)
})

// ResolvedChain is a chain whose images were found.
type ResolvedChain struct {
	Chain
	Images map[string]Image // by label
}

// resolveChains parses a chains value for job j and resolves its images
// (without exporting git snapshots: that waits for a run).
func (m *Manager) resolveChains(j Job, v string) (ResolvedChain, error) {
	c, err := ParseChain(v)
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
	sub := imageRefRE().FindStringSubmatch(ref)
	if sub == nil {
		return Image{}, errorf(ErrInvalid, "%q is not an image reference (name or @owner/name:label)", ref)
	}
	owner, name, label := sub[1], sub[2], sub[3]
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

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// gitImage resolves label in a git repository to a commit and, with
// export, to its read-only snapshot.
func (m *Manager) gitImage(img Image, repo, label string, export bool) (Image, error) {
	rev := label
	if label == "latest" {
		rev = "HEAD"
	}
	commit, err := git(repo, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil || commit == "" {
		return Image{}, errorf(ErrInvalid, "image %s: %q is not a branch, tag or commit of %s", img.Ref, label, repo)
	}
	img.Commit = commit
	mode, err := git(repo, "ls-tree", commit, "entrypoint")
	if err != nil || !strings.HasPrefix(mode, "100755 ") {
		return Image{}, errorf(ErrInvalid, "unknown image %s: commit %.12s has no executable entrypoint", img.Ref, commit)
	}
	img.Dir = filepath.Join(m.state, "images", commit)
	img.Entrypoint = filepath.Join(img.Dir, "entrypoint")
	if export {
		if err := exportCommit(repo, commit, img.Dir); err != nil {
			return Image{}, fmt.Errorf("image %s: export commit %.12s: %w", img.Ref, commit, err)
		}
	}
	return img, nil
}

// exportCommit writes the tree of commit to dir once (cached per commit),
// read-only. A half-written export never becomes visible: it is built
// beside dir and renamed into place.
func exportCommit(repo, commit, dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	archive := exec.Command("git", "-C", repo, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", tmp)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	if err := archive.Start(); err != nil {
		return err
	}
	if out, err := untar.CombinedOutput(); err != nil {
		archive.Wait()
		return fmt.Errorf("tar: %v: %s", err, out)
	}
	if err := archive.Wait(); err != nil {
		return fmt.Errorf("git archive: %w", err)
	}
	readOnly(tmp)
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(dir); serr != nil {
			return err
		}
	}
	return nil
}

// readOnly drops the write bits below dir.
func readOnly(dir string) {
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			os.Chmod(p, info.Mode().Perm()&^0o222)
		}
		return nil
	})
}

// userName returns the login name of uid, or the number when it has none.
func userName(uid Owner) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return strconv.FormatUint(uint64(uid), 10)
	}
	return u.Username
}
