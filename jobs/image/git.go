// Package image makes a step's image from a git repository: git run as the
// repository's owner (never with more rights than that user), and a commit
// exported once to a read-only snapshot through an untrusted tar stream
// extracted beneath its folder. Which repository and which label is the
// caller's business (jobs resolves config/chains references).
package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Git runs git in one repository as the repository's owner when the
// daemon is root: git then reads no more than that user could, its
// ownership check (safe.directory) holds, and a .git file or symlink
// pointing elsewhere is followed with the owner's rights, not root's.
type Git struct {
	repo  string
	owner uint32              // the repository folder's owner
	cred  *syscall.Credential // nil: as the daemon itself
	env   []string
}

// Owner is the uid of the repository folder's owner. What its git prints
// is that user's to decide (its objects, its replace refs), so a snapshot
// exported from it is trusted only for images of that user's repositories.
func (g Git) Owner() uint32 { return g.owner }

// NewGit prepares git for repo, a real folder (not a symlink: its
// owner is who git runs as).
func NewGit(repo string) (Git, error) {
	st, err := os.Lstat(repo)
	if err != nil {
		return Git{}, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok {
		return Git{}, fmt.Errorf("%s is not a folder (a git image cannot be a symlink: git runs as the owner of the folder)", repo)
	}
	g := Git{repo: repo, owner: sys.Uid}
	home := "/"
	if u, err := user.LookupId(strconv.FormatUint(uint64(sys.Uid), 10)); err == nil && u.HomeDir != "" {
		home = u.HomeDir
	}
	if os.Geteuid() == 0 && sys.Uid != 0 {
		g.cred = domain.Credential(sys.Uid)
	} else if os.Geteuid() != 0 {
		home = os.Getenv("HOME") // the daemon's own user
	}
	// Nothing of the daemon's environment (GIT_DIR and friends); C
	// messages, so that git's errors read the same everywhere; a commit is
	// what its id names, not what a refs/replace entry puts in its place.
	g.env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LC_ALL=C", "GIT_NO_REPLACE_OBJECTS=1"}
	return g, nil
}

// gitTimeout bounds one git command. git runs as the repository's owner,
// who can stop or slow it (ptrace): a run or a write of config/chains
// waits for it no longer than this.
const gitTimeout = 10 * time.Minute

// command is git args in the repository, as its owner, killed when ctx
// ends.
func (g Git) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.repo // entered after the switch to the owner: with the owner's rights
	cmd.Env = g.env
	cmd.WaitDelay = time.Second // a child of git holding its output open does not hold us
	if g.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: g.cred}
	}
	return cmd
}

// IsObjectID says whether s is a git object id: 40 (SHA-1) or 64 (SHA-256)
// lower-case hex digits, nothing else. What git prints is its user's to
// choose (ptrace), so nothing else of it may name a folder.
func IsObjectID(s string) bool {
	return (len(s) == 40 || len(s) == 64) && strings.Trim(s, "0123456789abcdef") == ""
}

// GitError is a failed git command: Stderr says why (empty when git was
// asked to be quiet about a revision it does not know).
type GitError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *GitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
}

func (e *GitError) Unwrap() error { return e.Err }

// Run runs git args and returns its trimmed output.
func (g Git) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := g.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &GitError{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(string(out)), nil
}
