package crypt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMasterKeyCreatedThenReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "master.key")
	key, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != MasterKeySize || bytes.Equal(key, make([]byte, MasterKeySize)) {
		t.Fatalf("key = %x, want 32 random bytes", key)
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700|os.ModeDir)
	again, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, again) {
		t.Fatalf("second call made a new key: %x, then %x", key, again)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only master.key (temporary file left?)", len(entries))
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestMasterKeyRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  []string // in the error, besides the path
	}{
		{"readable by others", keyFile(32, 0o644), []string{"readable by others (mode 0644): chmod 600 "}},
		{"readable by group", keyFile(32, 0o640), []string{"readable by group (mode 0640): chmod 600 "}},
		{"writable by group", keyFile(32, 0o620), []string{"writable by group (mode 0620)", "chmod 600"}},
		{"writable by others", keyFile(32, 0o602), []string{"writable by others (mode 0602)", "chmod 600"}},
		{"too short", keyFile(31, 0o600), []string{"is 31 bytes, a master key is 32"}},
		{"too long", keyFile(33, 0o600), []string{"is 33 bytes"}},
		{"empty", keyFile(0, 0o600), []string{"is 0 bytes"}},
		{"symlink", func(t *testing.T, path string) {
			target := path + ".real"
			keyFile(32, 0o600)(t, target)
			mustDo(t, os.Symlink(target, path))
		}, []string{"is a symlink", "master.key.real"}},
		{"dangling symlink", func(t *testing.T, path string) {
			mustDo(t, os.Symlink("/nonexistent/key", path))
		}, []string{"is a symlink"}},
		{"directory", func(t *testing.T, path string) {
			mustDo(t, os.Mkdir(path, 0o700))
		}, []string{"is not a regular file"}},
		{"other owner", func(t *testing.T, path string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			keyFile(32, 0o600)(t, path)
			mustDo(t, os.Chown(path, 12345, 12345))
		}, []string{"is owned by uid 12345", "chown 0 "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			tt.setup(t, path)
			before, _ := os.ReadFile(path)
			key, err := LoadOrCreateMasterKey(path)
			if err == nil {
				t.Fatalf("accepted, key %x", key)
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Errorf("the refused key file was changed")
			}
		})
	}
}

// keyFile returns a setup that writes n bytes with the given mode.
func keyFile(n int, mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		mustDo(t, os.WriteFile(path, bytes.Repeat([]byte{7}, n), 0o600))
		mustDo(t, os.Chmod(path, mode))
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMasterKeyCreatedOnceByConcurrentStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	keys := make([][]byte, 8)
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateMasterKey(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("start %d: key %x, %v; start 0: %x", i, keys[i], errs[i], keys[0])
		}
	}
}
