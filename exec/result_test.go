package exec

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFiles creates files (relative path -> content) below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readZip(t *testing.T, path string) map[string]string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = string(b)
	}
	return out
}

func TestPackage(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		dirs  []string // empty folders
		want  string   // "", a path relative to out, or "zip"
	}{
		{"nothing", nil, nil, ""},
		{"only empty folders", nil, []string{"a", "b/c"}, ""},
		{"one file", map[string]string{"report.pdf": "%PDF"}, nil, "report.pdf"},
		{"one file in a folder", map[string]string{"sub/report.csv": "a,b\n"}, []string{"empty"}, "sub/report.csv"},
		{"empty file", map[string]string{"empty.txt": ""}, nil, "empty.txt"},
		{"several", map[string]string{"a.txt": "A", "b.txt": "B", "sub/deeper/c.txt": "C", "sub/d.txt": ""}, nil, "zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			out := filepath.Join(base, "output")
			zipPath := filepath.Join(base, "result.zip")
			writeFiles(t, out, tt.files)
			for _, d := range append(tt.dirs, "") {
				if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Package(out, zipPath, 1_000_000)
			if err != nil {
				t.Fatal(err)
			}
			switch tt.want {
			case "":
				if got != "" {
					t.Errorf("Package = %q, want no result", got)
				}
			case "zip":
				if got != zipPath {
					t.Fatalf("Package = %q, want %q", got, zipPath)
				}
				if z := readZip(t, zipPath); !mapsEqual(z, tt.files) {
					t.Errorf("zip holds %v, want %v", z, tt.files)
				}
			default:
				if want := filepath.Join(out, tt.want); got != want {
					t.Errorf("Package = %q, want %q", got, want)
				}
			}
			if tt.want != "zip" {
				if _, err := os.Stat(zipPath); !os.IsNotExist(err) {
					t.Errorf("a zip was written without several files: %v", err)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPackageSkipsSymlinks: only regular files are results; a symlink out
// of the folder is not followed.
func TestPackageSkipsSymlinks(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "output")
	writeFiles(t, out, map[string]string{"real.txt": "real"})
	secret := filepath.Join(base, "secret")
	writeFiles(t, base, map[string]string{"secret": "do not ship"})
	if err := os.Symlink(secret, filepath.Join(out, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := Package(out, filepath.Join(base, "result.zip"), 1_000_000)
	if err != nil || got != filepath.Join(out, "real.txt") {
		t.Errorf("Package = %q, %v; want only real.txt", got, err)
	}
}

func TestPackageTooLarge(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "output")
	writeFiles(t, out, map[string]string{
		"big.bin":       strings.Repeat("x", 1_000_000),
		"sub/more.bin":  strings.Repeat("y", 500_000),
		"sub/small.txt": "z",
	})
	zipPath := filepath.Join(base, "result.zip")
	got, err := Package(out, zipPath, 1_000_000)
	if !errors.Is(err, ErrResultTooLarge) {
		t.Fatalf("Package = %q, %v; want ErrResultTooLarge", got, err)
	}
	if want := "Job result is too large: 1.5 MB exceeds the 1 MB limit."; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error = %q, want it to end with %q", err, want)
	}
	if got != "" {
		t.Errorf("Package returned %q with the error", got)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatalf("the output folder itself is gone: %v", err)
	}
	if len(ents) != 0 {
		t.Errorf("output keeps %d entries after a too large result", len(ents))
	}
	if _, err := os.Stat(zipPath); !os.IsNotExist(err) {
		t.Errorf("a zip was written for a too large result: %v", err)
	}
	// Exactly at the cap is fine.
	writeFiles(t, out, map[string]string{"exact.bin": strings.Repeat("x", 1_000_000)})
	if got, err := Package(out, zipPath, 1_000_000); err != nil || got != filepath.Join(out, "exact.bin") {
		t.Errorf("Package at the cap = %q, %v", got, err)
	}
}

func TestPackageMissingFolder(t *testing.T) {
	_, err := Package(filepath.Join(t.TempDir(), "nope"), filepath.Join(t.TempDir(), "r.zip"), 100)
	if err == nil {
		t.Error("Package of a missing folder succeeded")
	}
}

// TestPackageZipNames: names in the zip are relative and use slashes.
func TestPackageZipNames(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "output")
	writeFiles(t, out, map[string]string{"a/b/c.txt": "c", "d.txt": "d"})
	got, err := Package(out, filepath.Join(base, "result.zip"), 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(got)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a/b/c.txt", "d.txt"}) {
		t.Errorf("zip names = %v", names)
	}
}

// TestPackageManyEmptyFiles: a zip's own bytes per file count in the cap,
// so many empty files cannot make a zip far over it (200,000 made 25 MB
// under a cap that counted their bytes only).
func TestPackageManyEmptyFiles(t *testing.T) {
	base := t.TempDir()
	out := filepath.Join(base, "output")
	files := map[string]string{}
	for i := range 2000 {
		files[fmt.Sprintf("f%04d", i)] = ""
	}
	writeFiles(t, out, files)
	zipPath := filepath.Join(base, "result.zip")
	if _, err := Package(out, zipPath, 200_000); !errors.Is(err, ErrResultTooLarge) {
		t.Fatalf("2,000 empty files under a 200 kB cap: %v, want ErrResultTooLarge (their zip is over 300 kB)", err)
	}
	writeFiles(t, out, files)
	got, err := Package(out, zipPath, 1_000_000)
	if err != nil || got != zipPath {
		t.Fatalf("Package = %q, %v", got, err)
	}
	if st, err := os.Stat(zipPath); err != nil || st.Size() > 1_000_000 {
		t.Errorf("the zip: %v %v, want at most the cap", st.Size(), err)
	}
}
