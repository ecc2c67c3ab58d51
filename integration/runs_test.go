//go:build linux

package integration

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRuns: how runs end and what they leave, one job per case on one
// daemon.
func TestRuns(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		args := sleepArgs()
		d.scriptJob(t, "slow", fmt.Sprintf("#!/bin/sh\ntrap '' TERM\necho started\nsleep %s\n", args))
		d.ok(t, `echo 1s > mnt/slow/config/timeout`)
		d.trigger(t, "slow", "{}")
		if got := d.waitRun(t, "slow", 1); got != "TIMEOUT" {
			t.Fatalf("run ended %s, want TIMEOUT", got)
		}
		d.wantFile(t, "mnt/slow/runs/1/exit_code", "124\n")
		if p := d.pgrep(t, args); p != "" {
			t.Errorf("the run is TIMEOUT but its process (which ignores SIGTERM) is still there:\n%s", p)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "three", "#!/bin/sh\necho failing\nexit 3\n")
		d.trigger(t, "three", "{}")
		if got := d.waitRun(t, "three", 1); got != "FAILED" {
			t.Fatalf("run ended %s, want FAILED", got)
		}
		d.wantFile(t, "mnt/three/runs/1/exit_code", "3\n")
		if got := d.cat(t, "mnt/three/runs/1/error"); !regexp.MustCompile(`^step \S+ exited with code 3\n$`).MatchString(got) {
			t.Errorf("runs/1/error = %q, want step ... exited with code 3", got)
		}
		if got := d.cat(t, "mnt/three/runs/1/log"); !strings.Contains(got, "failing\n") {
			t.Errorf("runs/1/log = %q, want the step's line", got)
		}
	})
	t.Run("chains image", func(t *testing.T) {
		t.Parallel()
		image(t, d, "myimage", "#!/bin/sh\necho \"image step $JOBFS_STEP\"\ncp \"$1/input.json\" \"$2/copy.json\"\n")
		d.ok(t, `mkdir mnt/chain && echo myimage > mnt/chain/config/chains`)
		d.wantFile(t, "mnt/chain/config/type", "chains\n")
		d.trigger(t, "chain", `{"via": "image"}`)
		if got := d.waitRun(t, "chain", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED; log:\n%s", got, d.cat(t, "mnt/chain/runs/1/log"))
		}
		d.wantFile(t, "mnt/chain/runs/1/result", "{\"via\": \"image\"}\n")
		if got := d.cat(t, "mnt/chain/runs/1/log"); !strings.Contains(got, "image step ") {
			t.Errorf("runs/1/log = %q, want the image's line", got)
		}

		d.fails(t, `echo nosuchimage > mnt/chain/config/chains`, "write error: Invalid argument")
		d.wantFile(t, "mnt/chain/config/chains", "myimage\n")
		if got := d.ok(t, `tail -n 1 mnt/chain/log`); !strings.Contains(got, "config/chains rejected: ") {
			t.Errorf("tail -n 1 log = %q, want config/chains rejected: ...", got)
		}
	})
	t.Run("zip result", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "zip", "#!/bin/sh\necho a > \"$2/a.txt\"\nprintf 'bb\\n' > \"$2/b.txt\"\nmkdir \"$2/sub\"\necho c > \"$2/sub/c.txt\"\n")
		d.trigger(t, "zip", "{}")
		if got := d.waitRun(t, "zip", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED", got)
		}
		if got := d.ok(t, `ls mnt/zip/runs/1/output`); got != "a.txt\nb.txt\nsub\n" {
			t.Errorf("ls runs/1/output = %q, want a.txt b.txt sub", got)
		}
		d.ok(t, `cp mnt/zip/runs/1/result result.zip`)
		want := map[string]string{"a.txt": "a\n", "b.txt": "bb\n", "sub/c.txt": "c\n"}
		if got := unzipAll(t, filepath.Join(d.dir, "result.zip")); !maps.Equal(got, want) {
			t.Errorf("result zip holds %q, want %q", got, want)
		}
	})
	t.Run("no output", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "noout", "#!/bin/sh\necho nothing to keep\n")
		d.trigger(t, "noout", "{}")
		if got := d.waitRun(t, "noout", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED", got)
		}
		d.fails(t, `cat mnt/noout/runs/1/result`, "No such file or directory")
		if got := d.ok(t, `ls mnt/noout/runs/1`); strings.Contains(got, "result") {
			t.Errorf("ls runs/1 = %q, lists a result", got)
		}
	})
	t.Run("staged input", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "staged", "#!/bin/sh\nls \"$1\"\ncat \"$1/one.txt\"\n")
		d.ok(t, `printf 'first file\n' > one.txt && head -c 5000 /dev/urandom > two.bin && cp one.txt two.bin mnt/staged/input/`)
		if got := d.ok(t, `ls mnt/staged/input`); got != "one.txt\ntwo.bin\n" {
			t.Errorf("ls input = %q, want one.txt two.bin", got)
		}
		d.trigger(t, "staged", `{"k": "v"}`)
		if got := d.waitRun(t, "staged", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED", got)
		}
		if got := d.ok(t, `ls mnt/staged/runs/1/input`); got != "input.json\none.txt\ntwo.bin\n" {
			t.Errorf("ls runs/1/input = %q, want input.json one.txt two.bin", got)
		}
		d.ok(t, `cmp one.txt mnt/staged/runs/1/input/one.txt && cmp two.bin mnt/staged/runs/1/input/two.bin`)
		d.wantFile(t, "mnt/staged/runs/1/input/input.json", "{\"k\": \"v\"}\n")
		if got := d.ok(t, `ls -A mnt/staged/input`); got != "" {
			t.Errorf("after the trigger, ls -A input = %q, want it empty", got)
		}
		if got := d.cat(t, "mnt/staged/runs/1/log"); !strings.Contains(got, "two.bin") || !strings.Contains(got, "first file") {
			t.Errorf("runs/1/log = %q, want the step to see the staged files", got)
		}
	})
	t.Run("big payload", func(t *testing.T) {
		t.Parallel()
		writeBigJSON(t, filepath.Join(d.dir, "big.json"), 1<<20)
		d.scriptJob(t, "big", "#!/bin/sh\nwc -c < \"$1/input.json\"\n")
		d.ok(t, `cat big.json > mnt/big/data`)
		if got := d.waitRun(t, "big", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED", got)
		}
		if got := d.ok(t, `ls mnt/big/runs`); got != "1\nlatest\n" {
			t.Errorf("one cat of a big payload: ls runs = %q, want exactly run 1", got)
		}
		d.ok(t, `cmp big.json mnt/big/runs/1/input/input.json`)
	})
	t.Run("whitespace payload", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "bare", "#!/bin/sh\necho bare\n")
		d.ok(t, `echo > mnt/bare/data`)
		if got := d.waitRun(t, "bare", 1); got != "COMPLETED" {
			t.Fatalf("run ended %s, want COMPLETED", got)
		}
		d.ok(t, `printf ' \n\t\n' > mnt/bare/data`)
		if got := d.waitRun(t, "bare", 2); got != "COMPLETED" {
			t.Fatalf("run 2 ended %s, want COMPLETED", got)
		}
		in := d.cat(t, "mnt/bare/runs/1/input/input.json")
		if !json.Valid([]byte(in)) {
			t.Errorf("a bare trigger's input.json = %q, not JSON", in)
		}
	})
	t.Run("read-write handle", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "rw", "#!/bin/sh\necho rw\n")
		d.trigger(t, "rw", "{}")
		d.trigger(t, "rw", "{}")
		if got := readWriteTrigger(t, d, "mnt/rw/data", `{"rw": true}`); got != "3\n" {
			t.Errorf("a read-write handle read back %q, want the id of the run it started, 3", got)
		}
		d.wantFile(t, "mnt/rw/runs/3/input/input.json", "{\"rw\": true}\n")
		for id := 1; id <= 3; id++ {
			d.waitRun(t, "rw", id)
		}
	})
	t.Run("ten at once", func(t *testing.T) {
		t.Parallel()
		d.scriptJob(t, "ten", "#!/bin/sh\ncat \"$1/input.json\"\n")
		d.ok(t, `
			pids=
			for i in 1 2 3 4 5 6 7 8 9 10; do
				( echo "{\"i\": $i}" > mnt/ten/data ) & pids="$pids $!"
			done
			rc=0
			for p in $pids; do wait $p || rc=1; done
			exit $rc`)
		wantRuns(t, d, "ten", 10)
		var seen []int
		for id := 1; id <= 10; id++ {
			if got := d.waitRun(t, "ten", id); got != "COMPLETED" {
				t.Errorf("run %d ended %s, want COMPLETED", id, got)
			}
			var in struct{ I int }
			if err := json.Unmarshal([]byte(d.cat(t, fmt.Sprintf("mnt/ten/runs/%d/input/input.json", id))), &in); err != nil {
				t.Errorf("run %d: input.json: %v", id, err)
			}
			seen = append(seen, in.I)
		}
		slices.Sort(seen)
		if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(seen, want) {
			t.Errorf("the runs' payloads are %v, want each of %v once", seen, want)
		}
	})
}

// TestMaxActive: with --max-active 1, later runs wait PENDING while one
// runs, then all complete, ids 1..3.
func TestMaxActive(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{maxActive: 1})
	// A payload with "hold" keeps its run going until a file "release"
	// appears in its input folder; the test puts it there on disk.
	d.scriptJob(t, "one", `#!/bin/sh
echo "run $JOBFS_RUN started"
if grep -q hold "$1/input.json"; then
	i=0
	until [ -e "$1/release" ]; do
		i=$((i+1)); [ $i -gt 1200 ] && { echo never released; exit 9; }
		sleep 0.05
	done
fi
echo "run $JOBFS_RUN done"
`)
	d.trigger(t, "one", `{"hold": true}`)
	d.trigger(t, "one", "{}")
	d.trigger(t, "one", "{}")
	d.waitStatus(t, "one", 1, "RUNNING")
	d.wantFile(t, "mnt/one/runs/2/status", "PENDING\n")
	d.wantFile(t, "mnt/one/runs/3/status", "PENDING\n")

	// jobs/doc.go: state/jobs/<shortname>/runs/<n>/input/ is the run's input.
	short := strings.TrimSpace(d.cat(t, "mnt/one/shortname"))
	if err := os.WriteFile(filepath.Join(d.state, "jobs", short, "runs", "1", "input", "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 3; id++ {
		if got := d.waitRun(t, "one", id); got != "COMPLETED" {
			t.Errorf("run %d ended %s, want COMPLETED; log:\n%s", id, got, d.cat(t, fmt.Sprintf("mnt/one/runs/%d/log", id)))
		}
	}
	wantRuns(t, d, "one", 3)
}

// TestStepFds: a step starts with stdin, stdout and stderr only. Above
// all it must not hold the daemon's /dev/fuse fd: with it a step (running
// as the job's owner) could read and answer the mount's FUSE requests, and
// a step outliving a killed daemon keeps the dead mount hanging instead of
// failing with ENOTCONN.
func TestStepFds(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	// exec: the listing is of ls itself, whose only own fd is the
	// folder it reads.
	d.scriptJob(t, "fds", "#!/bin/sh\nexec ls -l /proc/self/fd/\n")
	d.trigger(t, "fds", "{}")
	if got := d.waitRun(t, "fds", 1); got != "COMPLETED" {
		t.Fatalf("run ended %s, want COMPLETED", got)
	}
	var fuse, extra []string
	for _, l := range strings.Split(d.cat(t, "mnt/fds/runs/1/log"), "\n") {
		fd, target, ok := strings.Cut(l, " -> ")
		if !ok {
			continue
		}
		fd = fd[strings.LastIndex(fd, " ")+1:]
		switch {
		case fd == "0" || fd == "1" || fd == "2":
		case target == "/dev/fuse":
			fuse = append(fuse, fd+" -> "+target)
		case !regexp.MustCompile(`^/proc/\d+/fd$`).MatchString(target):
			extra = append(extra, fd+" -> "+target)
		}
	}
	if len(fuse) > 0 {
		t.Errorf("the step holds the mount's /dev/fuse: %v", fuse)
	}
	if len(extra) > 0 {
		t.Errorf("the step holds fds beyond 0, 1, 2: %v", extra)
	}
}

// wantRuns checks that runs/ lists exactly the ids 1..n, and latest.
func wantRuns(t *testing.T, d *daemon, job string, n int) {
	t.Helper()
	got := strings.Fields(d.ok(t, `ls "mnt/$J/runs"`, "J="+job))
	var want []string
	for id := 1; id <= n; id++ {
		want = append(want, strconv.Itoa(id))
	}
	want = append(want, "latest")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ls runs = %v, want %v", got, want)
	}
}

// image makes repo image <repos>/<daemon user>/name with entrypoint.
func image(t *testing.T, d *daemon, name, entrypoint string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(d.repos, u.Username, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "entrypoint"), []byte(entrypoint), 0o755); err != nil {
		t.Fatal(err)
	}
}

// readWriteTrigger writes payload through a handle opened read-write and
// reads the handle back. A shell cannot do it: after `exec 3<>data;
// printf ... >&3` the offset of fd 3 is past the payload, and no shell
// tool seeks back to 0 on an inherited fd (dd skip= seeks forward,
// /dev/fd/3 opens a new handle). Python can: closing a duplicate of the fd
// sends the FUSE flush that starts the run, and pread at offset 0 reads
// the run's id from the same handle.
func readWriteTrigger(t *testing.T, d *daemon, path, payload string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed to read back through a read-write handle")
	}
	return d.ok(t, `python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, sys.argv[2].encode() + b"\n")
os.close(os.dup(fd))  # a close of any fd of the handle: FLUSH, the run starts
sys.stdout.write(os.pread(fd, 64, 0).decode())
os.close(fd)
' "$F" "$P"`, "F="+path, "P="+payload)
}

// writeBigJSON writes a JSON document of about size bytes to path.
func writeBigJSON(t *testing.T, path string, size int) {
	t.Helper()
	var items []string
	for n := 0; n < size; n += 40 {
		items = append(items, fmt.Sprintf("item %d %s", n, strings.Repeat("x", n%23)))
	}
	b, err := json.MarshalIndent(map[string]any{"items": items}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// unzipAll returns the files of a zip archive by name.
func unzipAll(t *testing.T, path string) map[string]string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("result is not a zip: %v", err)
	}
	defer zr.Close()
	out := map[string]string{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
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
