package beneath

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLeadsOut: links that stay inside, dangle or loop are inside; links
// that climb out, directly or through a link to ".", are out, also while
// renames elsewhere make a confined ".." answer EAGAIN (a runner staged
// links with 700 harmless x/.. steps and renamed in a loop: 15 of 50 were
// taken as inside and their step read /etc/shadow).
func TestLeadsOut(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	for _, d := range []string{"in/x", "in/bin", "in/data", "spin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"d": ".", "data/tool": "../bin/tool", "gone": "nothing/here", "loop": "loop",
		"up": "../spin", "abs": "/etc/hostname", "via": "d/d/../spin",
		"long": strings.Repeat("x/../", 700) + "d/d/../../etc/hostname",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(in, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(in, "bin/tool"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := Open(in, "", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		t.Fatal(err)
	}
	defer CloseFd(root)
	want := map[string]bool{"d": false, "data/tool": false, "gone": false, "loop": false, "up": true, "abs": true, "via": true, "long": true}

	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // renames elsewhere: what makes a confined ".." answer EAGAIN
		defer close(done)
		a, b := filepath.Join(dir, "spin", "a"), filepath.Join(dir, "spin", "b")
		if err := os.WriteFile(a, nil, 0o644); err != nil {
			return
		}
		for !stop.Load() {
			_ = os.Rename(a, b) // the race is all that matters here
			a, b = b, a
		}
	}()
	t.Cleanup(func() { stop.Store(true); <-done }) // before the TempDir's removal, also on failure
	for i := 0; i < 200; i++ {
		for rel, out := range want {
			if got := LeadsOut(root, rel); got != out {
				t.Fatalf("try %d: LeadsOut(%s -> %s) = %v, want %v", i, rel, links[rel], got, out)
			}
		}
	}
}
