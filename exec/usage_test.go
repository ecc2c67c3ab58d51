package exec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUsageFiles: the counter files of both cgroup versions are read as
// the kernel writes them; a missing file is unknown (nil), an empty I/O
// file is 0 (the counter is there, nothing was read or written).
func TestUsageFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if v := readUint(write("memory.peak", "209977344\n")); v == nil || *v != 209977344 {
		t.Errorf("memory.peak: %v", v)
	}
	if v := readUint(filepath.Join(dir, "none")); v != nil {
		t.Errorf("a missing file read as %d", *v)
	}
	if v := readUint(write("pids.peak", "max\n")); v != nil {
		t.Errorf("a word read as %d", *v)
	}
	if v := readKey(write("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"), "usage_usec"); v == nil || *v != 1500 {
		t.Errorf("cpu.stat usage_usec: %v", v)
	}
	r, w := readBlkioV1(write("blkio", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\n8:16 Read 1\nTotal 12289\n"))
	if r == nil || w == nil || *r != 4097 || *w != 8192 {
		t.Errorf("v1 io_service_bytes: read %v write %v, want 4097 and 8192", r, w)
	}
	r, w = readBlkioV1(write("blkio-empty", "Total 0\n"))
	if r == nil || w == nil || *r != 0 || *w != 0 {
		t.Errorf("v1 io_service_bytes without I/O: %v %v, want 0 and 0", r, w)
	}
	r, w = readIOStatV2(write("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n"))
	if r == nil || w == nil || *r != 101 || *w != 202 {
		t.Errorf("v2 io.stat: read %v write %v, want 101 and 202", r, w)
	}
	if r, w = readIOStatV2(filepath.Join(dir, "no-io.stat")); r != nil || w != nil {
		t.Error("no io.stat (no io controller) read as known")
	}
}
