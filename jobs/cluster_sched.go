package jobs

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/jobfs/jobfs/scheduler"
)

// Schedules in a cluster: every node keeps every schedule and a tick fires
// on the one node that claims it in the store (ClaimTick: a compare on the
// job's newest tick). For that the nodes must name a tick alike: @every D
// ticks fall on multiples of D since the Unix epoch on every node (a cron
// line's ticks are the same everywhere already), never counted from when
// each node learned of the schedule. A node fires a tick only while the
// stored schedule still has it: a node that has not yet seen the schedule
// removed or changed fires nothing of the old one.

// alignedEvery is @every D with its ticks on multiples of D.
type alignedEvery struct{ d time.Duration }

func (a alignedEvery) Next(t time.Time) time.Time {
	return time.Unix(0, 0).Add(t.Sub(time.Unix(0, 0)).Truncate(a.d) + a.d)
}

// clusterSpec is spec as a node of a cluster runs it.
func (m *Manager) clusterSpec(spec scheduler.Spec) scheduler.Spec {
	if m.cluster == nil {
		return spec
	}
	if every, ok := spec.Schedule.(cron.ConstantDelaySchedule); ok && every.Delay > 0 {
		spec.Schedule = alignedEvery{max(every.Delay, time.Second)}
	}
	return spec
}

// clusterFires reports whether this node fires job's tick at: the stored
// schedule still has that tick and this node claimed it.
func (m *Manager) clusterFires(jobID string, at time.Time) bool {
	spec, ok := m.schedule(jobID) // read from the store now
	if !ok {
		m.sched.Remove(jobID) // removed on another node; the feed says so soon too
		return false
	}
	if !spec.Next(at.Add(-time.Nanosecond)).Equal(at) {
		m.sched.Set(jobID, spec) // changed on another node: not a tick of it
		return false
	}
	return m.claimTick(jobID, at)
}

// clusterCatchup reports whether this node makes the one catch-up run of
// job's schedule: the first tick missed since the last recorded is
// claimed, so that of the nodes that start after a pause of the whole
// cluster one makes it, and none when another node fired since.
func (m *Manager) clusterCatchup(jobID string) bool {
	spec, ok := m.schedule(jobID)
	if !ok {
		return false
	}
	at := spec.Next(m.lastTick(jobID))
	return !at.IsZero() && m.claimTick(jobID, at)
}

func (m *Manager) claimTick(jobID string, at time.Time) bool {
	won, err := m.cluster.c.ClaimTick(jobID, at)
	if err != nil {
		m.slog.Warn(fmt.Sprintf("cluster: claim the schedule tick: %v", err), m.jobAttrs(jobID)...)
	}
	return won
}
