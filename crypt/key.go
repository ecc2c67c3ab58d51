package crypt

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MasterKeySize is the size of the master key file, in bytes.
const MasterKeySize = 32

// LoadOrCreateMasterKey reads the 32-byte master key at path, creating it at
// first start: 32 random bytes, mode 0600, its parent directory created 0700
// if missing, written to a temporary file that is then linked into place, so
// a crash never leaves a partial key and two daemons starting at once agree
// on one key.
//
// A key file that group or others can read or write, that is owned by another
// user, that is a symlink or not a regular file, or that is not 32 bytes long
// is refused with an error that says how to fix it, e.g.
// "<path> is readable by others (mode 0644): chmod 600 <path>".
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	key, err := loadMasterKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createMasterKey(path); err != nil {
		return nil, fmt.Errorf("create master key: %w", err)
	}
	return loadMasterKey(path)
}

// loadMasterKey opens path without following a symlink and checks the open
// file, so what is checked is what is read.
func loadMasterKey(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		target, _ := os.Readlink(path)
		return nil, fmt.Errorf("%s is a symlink (to %q): the master key must be a regular file; move the file it points to into its place", path, target)
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: nothing to flush
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkKeyFile(path, st); err != nil {
		return nil, err
	}
	key := make([]byte, MasterKeySize+1)
	n, err := io.ReadFull(f, key)
	if n != MasterKeySize || !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, wrongSize(path, int64(n))
	}
	return key[:MasterKeySize], nil
}

// checkKeyFile refuses a key file that someone other than the daemon could
// read or replace, or that cannot be a master key.
func checkKeyFile(path string, st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (mode %v): move it aside and jobfs creates a new master key", path, st.Mode())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is %s (mode %04o): chmod 600 %s", path, describeAccess(perm), perm, path)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by the daemon (uid %d): chown %d %s", path, sys.Uid, os.Geteuid(), os.Geteuid(), path)
	}
	if st.Size() != MasterKeySize {
		return wrongSize(path, st.Size())
	}
	return nil
}

func wrongSize(path string, n int64) error {
	return fmt.Errorf("%s is %d bytes, a master key is %d: restore it from a backup; a new key (move this file aside) cannot open the values already set, they must be set again", path, n, MasterKeySize)
}

// describeAccess names what the widest class of others may do, e.g.
// "readable by others" for 0644 or "readable and writable by group" for 0660.
func describeAccess(perm fs.FileMode) string {
	who, bits := "others", perm&0o007
	if bits == 0 {
		who, bits = "group", (perm>>3)&0o007
	}
	var can []string
	for _, b := range []struct {
		bit  fs.FileMode
		verb string
	}{{4, "readable"}, {2, "writable"}, {1, "executable"}} {
		if bits&b.bit != 0 {
			can = append(can, b.verb)
		}
	}
	return strings.Join(can, " and ") + " by " + who
}

// createMasterKey writes a new key to a temporary file in path's directory
// and links it into place. If another process created path meanwhile, its
// key stays and ours is dropped. Where the filesystem has no hard links, the
// temporary file is renamed instead.
func createMasterKey(path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, key)
	if err != nil {
		return err
	}
	// The temporary name is a second copy of the key: its removal must not fail unseen.
	defer func() {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("remove the key's temporary copy: %w", rerr)
		}
	}()
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// writeTemp writes data to a new file of mode 0600 in dir and syncs it.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".master.key.*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if rerr := os.Remove(f.Name()); rerr != nil {
			return "", fmt.Errorf("%w (and removing %s: %v)", err, f.Name(), rerr)
		}
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // read only: Sync reports the write-back
	return d.Sync()
}
