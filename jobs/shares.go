package jobs

import (
	"errors"
	"os/user"
	"strconv"
	"strings"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Role is what a user may do with a job (DESIGN.md 7).
type Role int

// Roles, weakest first.
const (
	NoRole Role = iota // the job leaves no trace
	Viewer             // reads config (not env), runs, logs, results
	Runner             // also triggers (data, input/) and stops runs (ctl)
	Owner_             // everything: the owner and root
)

// RoleOwner is the owner's role (named so as not to clash with Owner).
const RoleOwner = Owner_

// Caller is a user acting on the mount: uid and every group (primary and
// supplementary).
type Caller struct {
	UID  uint32
	GIDs []uint32
}

const bucketShares = domain.BucketShares

// RoleOf decides what caller c may do with job j. Root and the owner own it;
// otherwise the strongest share that names c (public, @user, +group) wins.
func (m *Manager) RoleOf(j Job, c Caller) Role {
	if c.UID == 0 || c.UID == j.Owner {
		return RoleOwner
	}
	shares, err := m.store.ListKV(j.ID, bucketShares)
	if err != nil || len(shares) == 0 {
		return NoRole
	}
	best := NoRole
	for name, role := range shares {
		if shareMatches(name, c) {
			best = max(best, parseRole(string(role)))
		}
	}
	return best
}

func parseRole(s string) Role {
	if s == "runner" {
		return Runner
	}
	return Viewer
}

// shareAlias maps novem's group share forms to the local group they name:
// @user~group (a group of user's) and +org~group (a group of org's) are
// +group, when user is a local user and group a local group.
func shareAlias(name string) (string, error) {
	if name[0] != '@' && name[0] != '+' {
		return "", errorf(ErrInvalid, "shared/%s: share with public, @user or +group (or novem's @user~group, +org~group)", name)
	}
	left, group, _ := strings.Cut(name[1:], "~")
	if _, err := user.LookupGroup(group); group == "" || err != nil {
		return "", errorf(ErrInvalid, "shared/%s: no local group %q for novem's %c...~group form; share with +group", name, group, name[0])
	}
	if name[0] == '@' {
		if _, err := user.Lookup(left); err != nil {
			return "", errorf(ErrInvalid, "shared/%s: no local user %q", name, left)
		}
	}
	return "+" + group, nil
}

func shareMatches(name string, c Caller) bool {
	if strings.Contains(name, "~") {
		alias, err := shareAlias(name)
		if err != nil {
			return false
		}
		name = alias
	}
	switch {
	case name == "public":
		return true
	case strings.HasPrefix(name, "@"):
		u, err := user.Lookup(name[1:])
		return err == nil && u.Uid == strconv.FormatUint(uint64(c.UID), 10)
	case strings.HasPrefix(name, "+"):
		g, err := user.LookupGroup(name[1:])
		if err != nil {
			return false
		}
		for _, gid := range c.GIDs {
			if g.Gid == strconv.FormatUint(uint64(gid), 10) {
				return true
			}
		}
	}
	return false
}

// CheckShareName reports why name cannot name a share.
func CheckShareName(name string) error {
	switch {
	case name == "public":
		return nil
	case name == "" || len(name) > 255 || strings.ContainsAny(name, "/\x00"):
		return errorf(ErrInvalid, "shared/%q: not a file name", name)
	case strings.Contains(name, "~"):
		_, err := shareAlias(name)
		return err
	case strings.HasPrefix(name, "@"):
		if _, err := user.Lookup(name[1:]); err != nil {
			return errorf(ErrInvalid, "shared/%s: no local user %q", name, name[1:])
		}
		return nil
	case strings.HasPrefix(name, "+"):
		if _, err := user.LookupGroup(name[1:]); err != nil {
			return errorf(ErrInvalid, "shared/%s: no local group %q", name, name[1:])
		}
		return nil
	}
	return errorf(ErrInvalid, "shared/%s: share with public, @user or +group", name)
}

// NormalizeRole reads a share file's content: empty or viewer, or runner.
func NormalizeRole(content string) (string, error) {
	switch v := strings.TrimSpace(content); v {
	case "", "viewer":
		return "viewer", nil
	case "runner":
		return "runner", nil
	default:
		return "", errorf(ErrInvalid, "%q: a share is empty or viewer (read), or runner (read, trigger, stop)", v)
	}
}

// SetShare grants a share (touch shared/@bob; echo runner > shared/@bob).
// createShare grants a new share as viewer when a share file is created,
// before its role is written, and reports whether it was new. It logs
// nothing: ShareCreated or SetShare does, UndoCreateShare takes it back
// when the role written next is refused.
func (m *Manager) createShare(jobID, name string) (bool, error) {
	if err := CheckShareName(name); err != nil {
		return false, m.reject(jobID, "shared/"+name, err)
	}
	return m.store.PutKV(jobID, bucketShares, name, []byte("viewer"), false)
}

// shareCreated logs a share created with no role written (touch).
func (m *Manager) shareCreated(jobID, name string) {
	m.event(jobID, "shared/%s: shared as viewer", name)
}

// undoCreateShare removes a share CreateShare made whose role was refused.
// A share left behind would grant a role the user was told was refused:
// a failure is written to the job's log, where its owner reads it.
func (m *Manager) undoCreateShare(jobID, name string) {
	// ErrNotFound: the job is gone, and its shares with it.
	if _, err := m.store.DeleteKV(jobID, bucketShares, name); err != nil && !errors.Is(err, ErrNotFound) {
		m.event(jobID, "shared/%s: the refused share is still there (%v): remove it (rm shared/%s)", name, err, name)
	}
}

func (m *Manager) SetShare(jobID, name, content string) error {
	what := "shared/" + name
	if err := CheckShareName(name); err != nil {
		return m.reject(jobID, what, err)
	}
	role, err := NormalizeRole(content)
	if err != nil {
		return m.reject(jobID, what, err)
	}
	if _, err := m.store.PutKV(jobID, bucketShares, name, []byte(role), true); err != nil {
		return err
	}
	m.event(jobID, "%s: shared as %s", what, role)
	return nil
}

// DeleteShare revokes a share.
func (m *Manager) DeleteShare(jobID, name string) error {
	found, err := m.store.DeleteKV(jobID, bucketShares, name)
	if err != nil {
		return err
	}
	if !found {
		return errorf(ErrNotFound, "shared/%s: not shared", name)
	}
	m.event(jobID, "shared/%s: revoked", name)
	return nil
}

// Shared reports whether a job has a share (an error reads as shared).
func (m *Manager) Shared(jobID string) bool {
	kv, err := m.store.ListKV(jobID, bucketShares)
	return err != nil || len(kv) > 0
}

// Shares lists a job's shares: name -> role.
func (m *Manager) Shares(jobID string) (map[string]string, error) {
	kv, err := m.store.ListKV(jobID, bucketShares)
	out := map[string]string{}
	for k, v := range kv {
		out[k] = string(v)
	}
	return out, err
}

// VisibleJobs lists owner's jobs that caller c may see (all of them for
// root and the owner).
func (m *Manager) VisibleJobs(owner Owner, c Caller) ([]Job, error) {
	all, err := m.store.Jobs(owner)
	if err != nil {
		return nil, err
	}
	var out []Job
	for _, j := range all {
		if m.RoleOf(j, c) > NoRole {
			out = append(out, j)
		}
	}
	return out, nil
}

// OwnersVisibleTo lists the owners, other than c, who have jobs c may see.
func (m *Manager) OwnersVisibleTo(c Caller) ([]Owner, error) {
	all, err := m.store.AllJobs()
	if err != nil {
		return nil, err
	}
	seen := map[Owner]bool{}
	var out []Owner
	for _, j := range all {
		if j.Owner != c.UID && !seen[j.Owner] && m.RoleOf(j, c) > NoRole {
			seen[j.Owner] = true
			out = append(out, j.Owner)
		}
	}
	return out, nil
}

// UserName is the login name of uid (or its number).
func UserName(uid Owner) string { return userName(uid) }
