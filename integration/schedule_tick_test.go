package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScheduledStepOnItsTick: a scheduled run is prepared ahead of its
// tick, and its step's program begins at the tick, never before. Each
// run's step prints when it began (date +%s.%N), which is at or after the
// run's tick (status.json); and runs were queued before their ticks (the
// mtime of runs/N/trigger is the queueing), so their setup was done ahead.
func TestScheduledStepOnItsTick(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "tick", "#!/bin/sh\ndate +%s.%N\n")
	d.ok(t, `echo '@every 1s' > mnt/tick/config/schedule`)
	d.waitRun(t, "tick", 3)
	d.ok(t, `echo false > mnt/tick/config/enabled`)
	ahead := 0
	for id := 1; id <= 3; id++ {
		if st := d.waitRun(t, "tick", id); st != "COMPLETED" {
			t.Fatalf("run %d: %s\n%s", id, st, d.cat(t, fmt.Sprintf("mnt/tick/runs/%d/log", id)))
		}
		doc := ruStatus(t, d, "tick", id)
		tick, err := time.Parse(time.RFC3339, strings.TrimSpace(ruText(doc["tick"])))
		if err != nil {
			t.Fatalf("run %d: status.json tick %v: %v", id, doc["tick"], err)
		}
		log := d.cat(t, fmt.Sprintf("mnt/tick/runs/%d/log", id))
		began, ok := stStamp(log)
		if !ok {
			t.Fatalf("run %d: no date line in its log:\n%s", id, log)
		}
		if began.Before(tick) {
			t.Errorf("run %d: its step began at %s, %v before its tick %s", id,
				began.Format(time.RFC3339Nano), tick.Sub(began), tick.Format(time.RFC3339))
		}
		if queued := taMtime(t, filepath.Join(d.mnt, "tick", "runs", strconv.Itoa(id), "trigger")); queued.Before(tick) {
			ahead++
		}
	}
	if ahead == 0 {
		t.Error("no run was queued before its tick: the scheduler did not prepare them ahead")
	}
}

// stStamp is the first line of log that reads as date +%s.%N.
func stStamp(log string) (time.Time, bool) {
	for _, line := range strings.Split(log, "\n") {
		sec, frac, ok := strings.Cut(strings.TrimSpace(line), ".")
		if !ok || len(frac) != 9 {
			continue
		}
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 == nil && err2 == nil {
			return time.Unix(s, ns), true
		}
	}
	return time.Time{}, false
}

// TestSlowStartHoldsNoOtherSchedule: a job whose run cannot start (its
// chain's git blocks: the image's ref is a FIFO, as a user who owns the
// image can make it for git's ten minutes) holds no other job's schedule:
// the scheduler fired one tick at a time, and every job's runs stopped.
func TestSlowStartHoldsNoOtherSchedule(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is needed for git images")
	}
	d := startDaemon(t, daemonOpts{})
	repo := filepath.Join(d.repos, currentUser(t), "slow")
	d.ok(t, `set -e
g() { git -C "$R" -c user.name=jobfs-test -c user.email=test@jobfs.invalid -c init.defaultBranch=main "$@"; }
mkdir -p "$R" && g init -q
printf '#!/bin/sh\necho slow\n' > "$R/entrypoint" && chmod 755 "$R/entrypoint"
g add entrypoint && g commit -q -m one
g rev-parse HEAD > "$R/.git/blk"
mkdir mnt/stuck && echo slow:blk > mnt/stuck/config/chains
rm "$R/.git/blk" && mkfifo "$R/.git/blk"`, "R="+repo)
	unblock := func() { // a writer lets each blocked git read the FIFO and end
		_ = exec.Command("sh", "-c", `for i in 1 2 3; do timeout 1 sh -c 'echo 0000 > "$0"' "$1"; done; rm -f "$1"`, "sh", filepath.Join(repo, ".git", "blk")).Run()
	}
	t.Cleanup(unblock) // before the daemon's stop, which waits for the blocked trigger
	d.scriptJob(t, "every", "#!/bin/sh\necho tick\n")
	d.ok(t, `echo '@every 1s' > mnt/stuck/config/schedule && echo '@every 1s' > mnt/every/config/schedule`)
	waitFor(t, "three runs of the other job while the stuck one's git blocks", func() bool {
		return runCount(t, d, "every") >= 3
	})
	unblock()
}
