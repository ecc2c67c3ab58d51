package domain

import (
	"fmt"
	"syscall"
)

// Instance identifies the state folder a store was opened from. Step
// cgroups are named after it (jobfs/<instance>/<job>/<run>/<step>), so a
// daemon started on a copy of a state folder (cp -a, a backup restored
// beside the original) names its cgroups apart and never kills what the
// original's daemon runs.
type Instance struct {
	// ID is "<device>-<inode>" of the state folder (what `stat -c %d-%i`
	// prints): no copy can share it while the original exists.
	ID string
	// Copied means the store was last opened from another folder: the
	// processes its run records name belong to another daemon, or to none.
	Copied bool
	// Legacy means no jobfs that names cgroups per state folder opened the
	// store before: a crash may have left cgroups named jobfs/<job>.
	Legacy bool
}

// FolderID returns the instance id of folder dir.
func FolderID(dir string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("identify state folder: %w", err)
	}
	return fmt.Sprintf("%d-%d", st.Dev, st.Ino), nil
}
