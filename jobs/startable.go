package jobs

import (
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// CheckStartable reports why a run of job jobID would fail before its first
// step starts, or nil. A trigger is refused with this reason (EINVAL in
// write(), a line in the job's log) and nothing is recorded, as for a
// payload that is not JSON: an empty script, chains that are empty or name
// a missing image, an entrypoint the job's owner cannot read and execute,
// secrets set for another runtime type. Git images are resolved to their
// commit, not exported; a signature is still checked when the run starts.
func (m *Manager) CheckStartable(jobID string) error {
	c, err := m.snapshot(jobID)
	if err != nil {
		return err
	}
	m.noteOwner(jobID, c.job.Owner) // fair.go: its run is dispatched by owner
	if err := startProblem(m, c); err != nil {
		m.event(jobID, "trigger refused: %v", err)
		return errorf(ErrInvalid, "%v", err)
	}
	return nil
}

// startProblem checks one config snapshot; see CheckStartable.
func startProblem(m *Manager, c runConfig) error {
	typ := c.values["config/type"]
	if err := staleEnv(c.envs, typ); err != nil {
		return err
	}
	switch typ {
	case "script":
		if strings.TrimSpace(c.values["config/script"]) == "" {
			//lint:ignore ST1005 it ends with the #! a script starts with, not punctuation
			return fmt.Errorf("config/script is empty: write a script starting with #!")
		}
		return nil
	case "chains":
		v := c.values["config/chains"]
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("config/chains is empty: write an image name to it, or set config/type to script")
		}
		rc, err := m.resolveChains(c.job, v)
		if err != nil {
			return err
		}
		for _, label := range sortedKeys(rc.Images) {
			img := rc.Images[label]
			if img.Commit != "" {
				continue // checked in the commit by gitImage; exported at the run
			}
			if err := ownerMayRun(c.job.Owner, img); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("config/type %q is not a runtime", typ)
	}
}

// staleEnv is openEnv's refusal of secrets sealed for another runtime type,
// without opening any secret.
func staleEnv(envs map[string]sealedEnv, runtime string) error {
	var stale []string
	for name, e := range envs {
		if e.Runtime != runtime {
			stale = append(stale, name)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	sort.Strings(stale)
	return fmt.Errorf("config/env was set for runtime %s; set again: %s", envs[stale[0]].Runtime, strings.Join(stale, ", "))
}

// ownerMayRun checks by its mode bits that the job's owner may read and
// execute an image's entrypoint (an interpreter reads a script): root
// needs one execute bit only.
func ownerMayRun(owner Owner, img Image) error {
	var st syscall.Stat_t
	if err := syscall.Stat(img.Entrypoint, &st); err != nil {
		return fmt.Errorf("image %s: entrypoint %s: %v", img.Ref, img.Entrypoint, err)
	}
	perm := st.Mode & 0o777
	if owner == 0 {
		if perm&0o111 == 0 {
			return fmt.Errorf("image %s: entrypoint %s is not executable (mode %04o)", img.Ref, img.Entrypoint, perm)
		}
		return nil
	}
	var bits uint32
	switch {
	case st.Uid == owner:
		bits = perm >> 6
	case inGroup(owner, st.Gid):
		bits = perm >> 3
	default:
		bits = perm
	}
	if bits&0o5 != 0o5 {
		return fmt.Errorf("image %s: entrypoint %s is not readable and executable by %s (mode %04o, owner %s)",
			img.Ref, img.Entrypoint, userName(owner), perm, userName(Owner(st.Uid)))
	}
	return nil
}

// inGroup reports whether uid has gid as its primary or a supplementary group.
func inGroup(uid Owner, gid uint32) bool {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	want := strconv.FormatUint(uint64(gid), 10)
	for _, g := range gids {
		if g == want {
			return true
		}
	}
	return false
}
