package acl

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestEncodeDecode checks the attribute's bytes against the kernel's
// layout, written out by hand: version 2, then tag, perm, id, sorted.
func TestEncodeDecode(t *testing.T) {
	a := ACL{
		{Tag: Other, Perm: 0, ID: undefinedID},
		{Tag: User, Perm: Execute, ID: 1001},
		{Tag: UserObj, Perm: Read | Write | Execute, ID: undefinedID},
		{Tag: Mask, Perm: Execute, ID: undefinedID},
		{Tag: GroupObj, Perm: 0, ID: undefinedID},
	}
	want := []byte{
		2, 0, 0, 0,
		0x01, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,
		0x02, 0, 1, 0, 0xe9, 0x03, 0, 0,
		0x04, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
		0x10, 0, 1, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
	}
	got := a.Encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode = % x\nwant     % x", got, want)
	}
	back, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, a.sorted()) {
		t.Errorf("Decode(Encode(a)) = %v, want %v", back, a.sorted())
	}
	for _, bad := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, append([]byte{2, 0, 0, 0}, 0x40, 0, 0, 0, 0, 0, 0, 0), {2, 0, 0, 0, 1, 0}} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(% x) accepted", bad)
		}
	}
}

// TestWithUser: the named entry replaces an earlier one for the same uid,
// and the mask is the union of the group class, never more.
func TestWithUser(t *testing.T) {
	a := FromMode(0o750).WithUser(1001, Execute).WithUser(1002, Read|Execute).WithUser(1001, Read)
	if p, ok := a.User(1001); !ok || p != Read {
		t.Errorf("User(1001) = %v %v, want Read", p, ok)
	}
	var mask Perm
	n := 0
	for _, e := range a {
		if e.Tag == Mask {
			mask = e.Perm
		}
		if e.Tag == User {
			n++
		}
	}
	if mask != Read|Execute || n != 2 {
		t.Errorf("mask %v with %d named users in %v, want r-x and 2", mask, n, a)
	}
}

// TestGrantOnDisk sets a traverse-only entry on a real 0700 folder: the
// named user passes through it to a file inside but cannot list it, and
// another user cannot pass; a chmod resets the mask and Grant again
// restores it.
func TestGrantOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const uid = 54321 // no such user is needed: the kernel checks the number
	err := Grant(dir, uid, Execute)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("the temporary folder's file system takes no ACLs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	a, err := Get(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := a.User(uid); !ok || p != Execute {
		t.Errorf("after Grant, Get = %v", a)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o710 {
		t.Errorf("mode after Grant = %v (%v), want 0710 (the mask in the group bits)", st.Mode(), err)
	}
	if getfacl, err := exec.LookPath("getfacl"); err == nil {
		out, err := exec.Command(getfacl, "-cn", dir).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "user:54321:--x\n") || !strings.Contains(string(out), "mask::--x\n") {
			t.Errorf("getfacl -cn: %v\n%s", err, out)
		}
	}
	if os.Geteuid() == 0 {
		// t.TempDir's two folders are 0700: the other uid must pass them.
		for _, p := range []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
			if err := os.Chmod(p, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		as := func(uid uint32, args ...string) error {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
			return cmd.Run()
		}
		if err := as(uid, "cat", filepath.Join(dir, "f")); err != nil {
			t.Errorf("uid %d cannot read a file through the folder: %v", uid, err)
		}
		if err := as(uid, "ls", dir); err == nil {
			t.Errorf("uid %d lists the folder: traverse-only was asked", uid)
		}
		if err := as(uid+1, "cat", filepath.Join(dir, "f")); err == nil {
			t.Errorf("uid %d reads through the folder", uid+1)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := as(uid, "cat", filepath.Join(dir, "f")); err == nil {
			t.Errorf("after chmod 0700 (mask ---), uid %d still passes", uid)
		}
		if err := Grant(dir, uid, Execute); err != nil {
			t.Fatal(err)
		}
		if err := as(uid, "cat", filepath.Join(dir, "f")); err != nil {
			t.Errorf("after Grant again, uid %d cannot pass: %v", uid, err)
		}
	}
	if err := os.Symlink(dir, dir+".link"); err != nil {
		t.Fatal(err)
	}
	if err := Grant(dir+".link", uid, Execute); err == nil {
		t.Errorf("Grant followed a symlink")
	}
}
