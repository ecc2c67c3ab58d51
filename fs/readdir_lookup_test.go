package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/jobfs/jobfs/jobs"
)

// Every folder kind of the tree, in process, without a mount: each name
// Readdir lists is found by Lookup, with the same type and inode number.
// A listed name that does not look up is an `ls` that shows what `cat`
// says is not there. The tree is attached to go-fuse's node bridge
// (NewNodeFS) but never mounted; the nodes are called directly.
func TestReaddirMatchesLookup(t *testing.T) {
	m, err := jobs.New(jobs.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	me := uint32(os.Geteuid())
	j, err := m.CreateJob(me, "walked")
	if err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{"config/type": "script\n", "config/script": "#!/bin/sh\necho hi\n"} {
		if err := m.WriteSetting(j.ID, path, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SetShare(j.ID, "public", "viewer"); err != nil {
		t.Fatal(err)
	}
	id, err := m.Trigger(j.ID, []byte("{}"), jobs.Manual)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := m.Wait(ctx, j.ID, id); err != nil {
		t.Fatal(err)
	}
	// Staged input for the next run: a file and a folder with a file.
	stage := m.StageDir(j.ID)
	if err := os.MkdirAll(filepath.Join(stage, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a.txt", "sub/b.txt"} {
		if err := os.WriteFile(filepath.Join(stage, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A job of another owner, shared with everyone: MOUNT/@<owner>.
	other, err := m.CreateJob(65534, "others")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetShare(other.ID, "public", "viewer"); err != nil {
		t.Fatal(err)
	}
	// The run's output folder, with a file and a folder (diskDir).
	out := filepath.Join(m.RunDir(j.ID, id), "output")
	if err := os.MkdirAll(filepath.Join(out, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "d", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	root := NewRoot(m, me, true)
	gofs.NewNodeFS(root, &gofs.Options{}) // attaches the bridge NewInode needs
	caller := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: me, Gid: uint32(os.Getegid())}, Pid: uint32(os.Getpid())})

	seen := map[string]int{}
	walkTree(t, caller, root.EmbeddedInode(), "/", seen, 0)
	var kinds []string
	for k := range seen {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, want := range []string{"*fs.rootDir", "*fs.ownerDir", "*fs.jobDir", "*fs.configDir", "*fs.envDir",
		"*fs.runsDir", "*fs.runDir", "*fs.stepsDir", "*fs.stepDir", "*fs.diskDir", "*fs.stageDir", "*fs.stagedFile", "*fs.sharedDir", "*fs.dotDir"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("folder kind %s was not reached: the walk covers %v", want, kinds)
		}
	}
}

// walkTree checks every name Readdir lists in the folder in against its
// Lookup, then walks the subfolders.
func walkTree(t *testing.T, ctx context.Context, in *gofs.Inode, path string, seen map[string]int, depth int) {
	t.Helper()
	if depth > 8 {
		t.Fatalf("%s: deeper than the tree is", path)
	}
	ops := in.Operations()
	kind := fmt.Sprintf("%T", ops)
	rd, ok := ops.(gofs.NodeReaddirer)
	if !ok {
		return
	}
	lk, ok := ops.(gofs.NodeLookuper)
	if !ok {
		t.Errorf("%s (%s) lists but has no Lookup", path, kind)
		return
	}
	seen[kind]++
	ds, errno := rd.Readdir(ctx)
	if errno != 0 {
		t.Errorf("readdir %s (%s): %v", path, kind, errno)
		return
	}
	defer ds.Close()
	for ds.HasNext() {
		e, errno := ds.Next()
		if errno != 0 {
			t.Errorf("readdir %s (%s): next: %v", path, kind, errno)
			return
		}
		if e.Name == "." || e.Name == ".." {
			continue
		}
		var out fuse.EntryOut
		child, errno := lk.Lookup(ctx, e.Name, &out)
		if errno != 0 {
			t.Errorf("%s%s: listed by %s, but Lookup says %v", path, e.Name, kind, errno)
			continue
		}
		in.AddChild(e.Name, child, true) // as go-fuse's bridge does after a lookup
		st := child.StableAttr()         // what go-fuse answers the kernel with
		if got, want := st.Mode&syscall.S_IFMT, e.Mode&syscall.S_IFMT; got != want {
			t.Errorf("%s%s: listed as type %#o, looked up as %#o", path, e.Name, want, got)
		}
		if got := out.Attr.Mode & syscall.S_IFMT; got != st.Mode&syscall.S_IFMT {
			t.Errorf("%s%s: looked up as type %#o, its attributes say %#o", path, e.Name, st.Mode&syscall.S_IFMT, got)
		}
		if e.Ino != 0 && st.Ino != e.Ino {
			t.Errorf("%s%s: listed with inode %d, looked up as %d", path, e.Name, e.Ino, st.Ino)
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			walkTree(t, ctx, child, path+e.Name+"/", seen, depth+1)
		}
	}
}
