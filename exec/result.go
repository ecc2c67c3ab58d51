package exec

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jobfs/jobfs/exec/beneath"
)

// ErrResultTooLarge is returned by Package when the output exceeds the cap.
var ErrResultTooLarge = errors.New("result too large")

// Package decides a run's result from the files in outDir: none gives "",
// one file gives its path, several are zipped into zipPath (relative paths
// kept). Output larger than max bytes is deleted and ErrResultTooLarge
// returned with novem's message.
func Package(outDir, zipPath string, max int64) (string, error) {
	files, total, err := listFiles(outDir)
	if err != nil {
		return "", fmt.Errorf("list output: %w", err)
	}
	if len(files) > 1 { // zipped: each file adds its headers and name twice
		for _, f := range files {
			total += zipEntryBytes + 2*int64(len(f))
		}
	}
	if total > max {
		//lint:ignore ST1005 novem's message, word for word
		err := fmt.Errorf("%w: Job result is too large: %.1f MB exceeds the %d MB limit.",
			ErrResultTooLarge, float64(total)/1e6, max/1_000_000)
		if rerr := clearDir(outDir); rerr != nil {
			err = fmt.Errorf("%w (removing it: %v)", err, rerr)
		}
		return "", err
	}
	switch len(files) {
	case 0:
		return "", nil
	case 1:
		return filepath.Join(outDir, files[0]), nil
	}
	if err := writeZip(outDir, files, zipPath); err != nil {
		_ = os.Remove(zipPath) // a partial zip; the zip error is the one to report
		return "", fmt.Errorf("zip result: %w", err)
	}
	return zipPath, nil
}

// zipEntryBytes is what a zip adds per file beside its name (twice) and
// data: its local header and central directory entry, with the zip64 and
// time extras Go's writer adds. Counted in the result's cap, so that the
// cap bounds the zip (200,000 empty files made a 25 MB zip under a cap
// that counted their bytes only) and the daemon's memory while writing it.
const zipEntryBytes = 30 + 46 + 2*28

// listFiles returns the regular files below dir (relative, in walk order)
// and their total size. Symlinks and other special files are not results,
// and no link is followed on the way (a step may leave any).
func listFiles(dir string) ([]string, int64, error) {
	var files []string
	var total int64
	err := beneath.Walk(dir, ".", func(rel string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return nil
		}
		st, err := beneath.Lstat(dir, rel)
		if err != nil {
			return err
		}
		files = append(files, rel)
		total += st.Size
		return nil
	})
	return files, total, err
}

// clearDir removes everything in dir and returns the first failure.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	for _, e := range ents {
		if rerr := os.RemoveAll(filepath.Join(dir, e.Name())); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

func writeZip(dir string, files []string, dest string) error {
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, name := range files {
		if err := addFile(zw, dir, name); err != nil {
			_ = f.Close() // the caller removes it; err is the one to report
			return err
		}
	}
	if err := zw.Close(); err != nil {
		_ = f.Close() // the caller removes it; err is the one to report
		return err
	}
	return f.Close()
}

func addFile(zw *zip.Writer, dir, name string) error {
	src, err := beneath.OpenFile(dir, name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }() // read only: nothing to flush
	info, err := src.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is no longer a regular file", name)
	}
	hdr, err := zip.FileInfoHeader(info)
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(name)
	hdr.Method = zip.Deflate
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, src)
	return err
}
