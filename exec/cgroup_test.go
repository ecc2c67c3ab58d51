package exec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// The limit translation is what the kernel is told; both hierarchies are
// checked here without a cgroup (the real ones are tested in integration/).

func TestV1Resources(t *testing.T) {
	r, err := v1Resources(Limits{CPUPercent: 50, MemoryMiB: 256, IOBps: 10 << 20, Pids: 64, Device: "254:0"})
	if err != nil {
		t.Fatal(err)
	}
	if *r.CPU.Quota != 50_000 || *r.CPU.Period != 100_000 {
		t.Errorf("cpu quota/period = %d/%d, want 50000/100000", *r.CPU.Quota, *r.CPU.Period)
	}
	if *r.Memory.Limit != 256<<20 {
		t.Errorf("memory limit = %d", *r.Memory.Limit)
	}
	if *r.Pids.Limit != 64 {
		t.Errorf("pids = %d", *r.Pids.Limit)
	}
	rd, wr := r.BlockIO.ThrottleReadBpsDevice, r.BlockIO.ThrottleWriteBpsDevice
	if len(rd) != 1 || len(wr) != 1 || rd[0].Major != 254 || rd[0].Minor != 0 || rd[0].Rate != 10<<20 || wr[0].Rate != 10<<20 {
		t.Errorf("blkio = %+v %+v", rd, wr)
	}
}

func TestV1ResourcesZeroMeansNone(t *testing.T) {
	r, err := v1Resources(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU != nil || r.Memory != nil || r.Pids != nil || r.BlockIO != nil {
		t.Errorf("zero limits set something: %+v", r)
	}
}

func TestV2Resources(t *testing.T) {
	r, err := v2Resources(Limits{CPUPercent: 150, MemoryMiB: 100, IOBps: 4096, Pids: 10, Device: "8:16"})
	if err != nil {
		t.Fatal(err)
	}
	// The library writes these files; a plain folder stands in for cgroupfs.
	root := t.TempDir()
	for _, d := range []string{"", "jobfs", "jobfs/j", "jobfs/j/1", "jobfs/j/1/s"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
		os.WriteFile(filepath.Join(root, d, "cgroup.controllers"), []byte("cpu memory pids io"), 0o644)
		os.WriteFile(filepath.Join(root, d, "cgroup.subtree_control"), nil, 0o644)
	}
	if _, err := cgroup2.NewManager(root, "/jobfs/j/1/s", r); err != nil {
		t.Fatalf("NewManager on a plain folder: %v", err)
	}
	want := map[string]string{
		"cpu.max":     "150000 100000",
		"memory.max":  "104857600",
		"memory.high": "94371840",
		"pids.max":    "10",
	}
	for file, w := range want {
		b, _ := os.ReadFile(filepath.Join(root, "jobfs/j/1/s", file))
		if strings.TrimSpace(string(b)) != w {
			t.Errorf("%s = %q, want %q", file, b, w)
		}
	}
	var ioTypes []cgroup2.IOType
	for _, e := range r.IO.Max {
		if e.Major != 8 || e.Minor != 16 || e.Rate != 4096 {
			t.Errorf("io.max entry %+v", e)
		}
		ioTypes = append(ioTypes, e.Type)
	}
	if !reflect.DeepEqual(ioTypes, []cgroup2.IOType{cgroup2.ReadBPS, cgroup2.WriteBPS}) {
		t.Errorf("io.max entries %v, want rbps and wbps", ioTypes)
	}
}

func TestBadDevice(t *testing.T) {
	if _, err := v1Resources(Limits{IOBps: 1, Device: ""}); err == nil {
		t.Error("v1: io limit without a device accepted")
	}
	if _, err := v2Resources(Limits{IOBps: 1, Device: "sda"}); err == nil {
		t.Error("v2: io limit with a bad device accepted")
	}
}

func TestDeviceOfResolvesTheDisk(t *testing.T) {
	dev, err := DeviceOf(t.TempDir())
	if err != nil {
		t.Skipf("the temp folder is not on a block device here: %v", err)
	}
	if _, _, err := splitDevice(dev); err != nil {
		t.Fatalf("DeviceOf = %q: %v", dev, err)
	}
}
