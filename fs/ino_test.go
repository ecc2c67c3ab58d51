package fs

import (
	"hash/fnv"
	"testing"
)

// TestInoIsFNV: ino, written out by hand to allocate nothing, gives the
// numbers hash/fnv's FNV-1a gave: inode numbers stay what earlier daemons
// showed (tar's incremental listings, find -inum).
func TestInoIsFNV(t *testing.T) {
	want := func(parts ...string) uint64 {
		h := fnv.New64a()
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		n := h.Sum64()
		if n <= 1 || n == ^uint64(0) {
			n = 2
		}
		return n
	}
	for _, parts := range [][]string{{}, {""}, {"abc"}, {"k3m9x2pq", "runs", "12", "log"}, {dotJobfs}, {"\xff\x00é"}} {
		if got, w := ino(parts...), want(parts...); got != w {
			t.Errorf("ino(%q) = %d, FNV-1a gives %d", parts, got, w)
		}
	}
}
