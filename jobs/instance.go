package jobs

import (
	"path"

	"github.com/jobfs/jobfs/jobs/domain"
)

// Instance identifies the state folder a store was opened from (see
// domain.Instance).
type Instance = domain.Instance

// cgroupRoot holds the cgroups of every jobfs daemon on the machine.
const cgroupRoot = "jobfs"

// cgroupParent holds every step cgroup of this state folder's daemon:
// jobfs/<instance>/<job>/<run>/<step>.
func (m *Manager) cgroupParent() string {
	return path.Join(cgroupRoot, m.store.Instance().ID)
}
