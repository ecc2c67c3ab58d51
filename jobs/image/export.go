package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Export writes the tree of commit to dir once (cached per commit),
// read-only and readable by every step's user. A half-written export never
// becomes visible: it is built beside dir and renamed into place.
func Export(g Git, commit, dir string) (err error) {
	if !IsObjectID(commit) {
		return fmt.Errorf("%.80q is not a commit id", commit) // what git printed: its user can make it print anything
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	// The owner's folder of snapshots: traversable (a Slurm step, as its
	// owner, reaches its /app through it), not listable.
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
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
