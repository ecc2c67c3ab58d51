package jobs

import (
	"fmt"
	"syscall"
	"testing"
)

// A symlink in input/ is made only when its target, read from the folder
// that holds it, stays inside input/.
func TestInsideStage(t *testing.T) {
	for _, c := range []struct {
		dir, target string
		want        bool
	}{
		{"", "a", true},
		{"", "a/b/../c", true},
		{"sub", "../a", true},
		{"sub/deep", "../../a", true},
		{"sub", ".", true},
		{"", "..", false},
		{"", "../data", false},
		{"sub", "../../x", false},
		{"", "a/../../x", false},
		{"", "/etc/passwd", false},
		{"", "", false},
	} {
		if got := insideStage(c.dir, c.target); got != c.want {
			t.Errorf("insideStage(%q, %q) = %v, want %v", c.dir, c.target, got, c.want)
		}
	}
}

// Package beneath's symlink and mount crossings are names not there.
func TestBeneathErr(t *testing.T) {
	for _, err := range []error{syscall.ELOOP, syscall.EXDEV, fmt.Errorf("open: %w", syscall.ELOOP)} {
		if got := beneathErr(err); got != syscall.ENOENT {
			t.Errorf("beneathErr(%v) = %v, want ENOENT", err, got)
		}
	}
	if got := beneathErr(syscall.EACCES); got != syscall.EACCES {
		t.Errorf("beneathErr(EACCES) = %v, want EACCES as it is", got)
	}
}
