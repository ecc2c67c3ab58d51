package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarOf builds a tar stream of the given headers; regular files get body.
func tarOf(t *testing.T, hs ...tar.Header) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "data of " + h.Name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestUntarGitArchive: what git archive makes is extracted as files,
// folders and symlinks, with modes 0644/0755 whatever the archive says.
func TestUntarGitArchive(t *testing.T) {
	dir := t.TempDir()
	err := untar(tarOf(t,
		tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "0123abcd"}},
		tar.Header{Typeflag: tar.TypeDir, Name: "lib/", Mode: 0o775},
		tar.Header{Typeflag: tar.TypeReg, Name: "entrypoint", Mode: 0o4775},
		tar.Header{Typeflag: tar.TypeReg, Name: "lib/data.txt", Mode: 0o664},
		tar.Header{Typeflag: tar.TypeReg, Name: "deep/er/file", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "shadow", Linkname: "/etc/shadow"},
	), dir)
	mustOK(t, err)
	for name, want := range map[string]os.FileMode{"entrypoint": 0o755, "lib/data.txt": 0o644, "deep/er/file": 0o644} {
		st, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || st.Mode() != want {
			t.Errorf("%s: %v %v, want a file %v", name, st.Mode(), err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "shadow")); err != nil || target != "/etc/shadow" {
		t.Errorf("shadow -> %q (%v), want the symlink kept as a symlink", target, err)
	}
}

// TestUntarRefusesEscapes: a stream from a process of the repository's
// owner is not trusted: no entry lands outside the folder, through a
// symlink or otherwise, and only files, folders and symlinks are made.
func TestUntarRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		hs   []tar.Header
	}{
		{"dot-dot", []tar.Header{{Typeflag: tar.TypeReg, Name: "../outside", Mode: 0o644}}},
		{"absolute", []tar.Header{{Typeflag: tar.TypeReg, Name: "/OUTSIDE/outside", Mode: 0o644}}},
		{"through a symlink", []tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "OUTSIDE"},
			{Typeflag: tar.TypeReg, Name: "up/outside", Mode: 0o644}}},
		{"folder through a symlink", []tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "OUTSIDE"},
			{Typeflag: tar.TypeDir, Name: "up/sub/", Mode: 0o755}}},
		{"hard link", []tar.Header{{Typeflag: tar.TypeLink, Name: "hard", Linkname: "OUTSIDE/target"}}},
		{"device", []tar.Header{{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}}},
		{"a file twice", []tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "f", Linkname: "OUTSIDE/target"},
			{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			outside := filepath.Join(top, "outside")
			mustOK(t, os.Mkdir(outside, 0o755))
			mustOK(t, os.WriteFile(filepath.Join(outside, "target"), []byte("keep"), 0o600))
			dir := filepath.Join(top, "export")
			mustOK(t, os.Mkdir(dir, 0o700))
			hs := make([]tar.Header, len(tc.hs))
			for i, h := range tc.hs {
				h.Name = strings.ReplaceAll(h.Name, "OUTSIDE", outside)
				h.Linkname = strings.ReplaceAll(h.Linkname, "OUTSIDE", outside)
				hs[i] = h
			}
			if err := untar(tarOf(t, hs...), dir); err == nil {
				t.Errorf("untar accepted it")
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 || readFile(t, filepath.Join(outside, "target")) != "keep" {
				t.Errorf("outside the export: %v, want only the untouched target", ents)
			}
			if _, err := os.Stat(filepath.Join(top, "outside", "outside")); err == nil {
				t.Errorf("a file was written outside the export")
			}
		})
	}
}

// TestReadOnlySkipsSymlinks: making a snapshot read-only changes no file a
// symlink in it points to.
func TestReadOnlySkipsSymlinks(t *testing.T) {
	top := t.TempDir()
	target := filepath.Join(top, "target")
	mustOK(t, os.WriteFile(target, nil, 0o600))
	dir := filepath.Join(top, "snap")
	mustOK(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o700))
	mustOK(t, os.WriteFile(filepath.Join(dir, "sub", "f"), nil, 0o644))
	mustOK(t, os.Symlink(target, filepath.Join(dir, "link")))
	readOnly(dir)
	for p, want := range map[string]os.FileMode{target: 0o600, dir: 0o555, filepath.Join(dir, "sub"): 0o555, filepath.Join(dir, "sub", "f"): 0o444} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, st.Mode().Perm(), err, want)
		}
	}
	mustOK(t, os.Chmod(filepath.Join(dir, "sub"), 0o755)) // for t.TempDir's cleanup when not root
	mustOK(t, os.Chmod(dir, 0o755))
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
