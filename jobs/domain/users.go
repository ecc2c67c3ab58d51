package domain

import (
	"os/user"
	"strconv"
	"syscall"
)

// Users are Unix uids: a job's owner, a step's user, an image folder's
// owner. These look them up in the user database; an unknown uid keeps
// its number (a name) or itself (a group), never fails.

// UserName returns the login name of uid, or the number when it has none.
func UserName(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return strconv.FormatUint(uint64(uid), 10)
	}
	return u.Username
}

// Groups returns the supplementary groups of uid.
func Groups(uid uint32) []uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil
	}
	ids, _ := u.GroupIds() // none known: no supplementary groups
	var out []uint32
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			out = append(out, uint32(g))
		}
	}
	return out
}

// PrimaryGroup returns the primary gid of uid, or uid when unknown.
func PrimaryGroup(uid uint32) uint32 {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return uid
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return uid
	}
	return uint32(g)
}

// Credential is what a process started as uid runs with: its primary and
// supplementary groups.
func Credential(uid uint32) *syscall.Credential {
	return &syscall.Credential{Uid: uid, Gid: PrimaryGroup(uid), Groups: Groups(uid)}
}
