// Package acl reads and writes a folder's POSIX access ACL (the
// system.posix_acl_access extended attribute) without libacl: a root
// daemon uses it to let one user through folders that stay closed to
// every other user (jobs/ and a job's folder, for the owner's Slurm
// steps, which run on the nodes as that owner).
//
// The attribute's format is Linux's (include/uapi/linux/posix_acl_xattr.h):
// a little-endian version word (2), then 8-byte entries of tag, permission
// and id, sorted by tag, then id.
package acl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	"golang.org/x/sys/unix"
)

// Tag is an entry's kind.
type Tag uint16

// The entry kinds, in the order the kernel wants them.
const (
	UserObj  Tag = 0x01 // the file's owner
	User     Tag = 0x02 // a named user (ID)
	GroupObj Tag = 0x04 // the file's group
	Group    Tag = 0x08 // a named group (ID)
	Mask     Tag = 0x10 // the most any User, GroupObj or Group entry grants
	Other    Tag = 0x20 // everyone else
)

// Perm is an entry's permission bits.
type Perm uint16

// The permission bits.
const (
	Execute Perm = 1 // on a folder: traverse
	Write   Perm = 2
	Read    Perm = 4
)

// Entry is one line of an ACL.
type Entry struct {
	Tag  Tag
	Perm Perm
	ID   uint32 // a User's uid or a Group's gid; undefinedID for the others
}

// ACL is an access ACL.
type ACL []Entry

// xattr is the attribute that holds a file's access ACL.
const xattr = "system.posix_acl_access"

const (
	version     = 2
	undefinedID = 0xFFFFFFFF
	entrySize   = 8
)

// ErrNotSupported is wrapped by the errors of Get and Grant where the file
// system takes no ACLs (EOPNOTSUPP: mounted noacl, or a kind without them).
var ErrNotSupported = errors.New("the file system takes no POSIX ACLs")

// FromMode is the minimal ACL that says what the mode's permission bits
// say: a file without an ACL attribute has it.
func FromMode(mode os.FileMode) ACL {
	p := mode.Perm()
	return ACL{
		{Tag: UserObj, Perm: Perm(p>>6) & 7, ID: undefinedID},
		{Tag: GroupObj, Perm: Perm(p>>3) & 7, ID: undefinedID},
		{Tag: Other, Perm: Perm(p) & 7, ID: undefinedID},
	}
}

// Encode is the attribute's value: entries sorted as the kernel requires.
func (a ACL) Encode() []byte {
	s := a.sorted()
	b := make([]byte, 4, 4+entrySize*len(s))
	binary.LittleEndian.PutUint32(b, version)
	for _, e := range s {
		id := e.ID
		if e.Tag != User && e.Tag != Group {
			id = undefinedID
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(e.Tag))
		b = binary.LittleEndian.AppendUint16(b, uint16(e.Perm))
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// Decode parses an attribute's value.
func Decode(b []byte) (ACL, error) {
	if len(b) < 4 || (len(b)-4)%entrySize != 0 {
		return nil, fmt.Errorf("acl: %d bytes is not a version word and whole entries", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != version {
		return nil, fmt.Errorf("acl: version %d, want %d", v, version)
	}
	var a ACL
	for off := 4; off < len(b); off += entrySize {
		e := Entry{
			Tag:  Tag(binary.LittleEndian.Uint16(b[off:])),
			Perm: Perm(binary.LittleEndian.Uint16(b[off+2:])),
			ID:   binary.LittleEndian.Uint32(b[off+4:]),
		}
		switch e.Tag {
		case UserObj, User, GroupObj, Group, Mask, Other:
		default:
			return nil, fmt.Errorf("acl: unknown entry tag %#x", e.Tag)
		}
		if e.Perm&^7 != 0 {
			return nil, fmt.Errorf("acl: entry %#x has permission bits %#x", e.Tag, e.Perm)
		}
		a = append(a, e)
	}
	return a, nil
}

// sorted is a copy in the kernel's order: by tag, then id.
func (a ACL) sorted() ACL {
	s := append(ACL(nil), a...)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Tag != s[j].Tag {
			return s[i].Tag < s[j].Tag
		}
		return s[i].ID < s[j].ID
	})
	return s
}

// User is the permission of a named user entry for uid, and whether there
// is one.
func (a ACL) User(uid uint32) (Perm, bool) {
	for _, e := range a {
		if e.Tag == User && e.ID == uid {
			return e.Perm, true
		}
	}
	return 0, false
}

// WithUser is a copy with uid's named entry set to p (added or replaced)
// and the mask recomputed: the union of the group class (named users,
// the owning group, named groups), as setfacl does, so that the new entry
// takes effect and no other entry grants more than before.
func (a ACL) WithUser(uid uint32, p Perm) ACL {
	var out ACL
	for _, e := range a {
		if (e.Tag == User && e.ID == uid) || e.Tag == Mask {
			continue
		}
		out = append(out, e)
	}
	out = append(out, Entry{Tag: User, Perm: p, ID: uid})
	var mask Perm
	for _, e := range out {
		if e.Tag == User || e.Tag == GroupObj || e.Tag == Group {
			mask |= e.Perm
		}
	}
	return append(out, Entry{Tag: Mask, Perm: mask, ID: undefinedID}).sorted()
}

// Get reads the access ACL of the folder or file at path (not following a
// final symlink); a file without one has FromMode's.
func Get(path string) (ACL, error) {
	fd, err := open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(fd) }() // opened for reading attributes only
	return get(fd, path)
}

// Grant gives uid exactly p on the folder or file at path through a named
// entry of its access ACL, keeping every other entry, and sets the mask
// so that the entry counts. It is to be called again after a chmod of
// path, which sets the mask from the new group bits. A final symlink is
// not followed (ELOOP).
func Grant(path string, uid uint32, p Perm) error {
	fd, err := open(path)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }() // opened for setting an attribute: nothing to flush
	a, err := get(fd, path)
	if err != nil {
		return err
	}
	want := a.WithUser(uid, p)
	if slices.Equal(a.sorted(), want) {
		return nil
	}
	if err := unix.Fsetxattr(fd, xattr, want.Encode(), 0); err != nil {
		return wrap("set the ACL of", path, err)
	}
	return nil
}

// open opens path for its attributes only (O_PATH cannot: fgetxattr needs
// a real descriptor), refusing a final symlink.
func open(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

func get(fd int, path string) (ACL, error) {
	buf := make([]byte, 4+entrySize*32)
	for {
		n, err := unix.Fgetxattr(fd, xattr, buf)
		switch {
		case err == unix.ERANGE:
			buf = make([]byte, 2*len(buf))
			continue
		case err == unix.ENODATA:
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				return nil, fmt.Errorf("stat %s: %w", path, err)
			}
			return FromMode(os.FileMode(st.Mode & 0o777)), nil
		case err != nil:
			return nil, wrap("read the ACL of", path, err)
		}
		a, err := Decode(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return a, nil
	}
}

// wrap names the file and, for EOPNOTSUPP, says that the file system
// takes no ACLs (ErrNotSupported).
func wrap(what, path string, err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%s %s: %w (%v)", what, path, ErrNotSupported, err)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}
