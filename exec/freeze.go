package exec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// Freezer stops and restarts every process of the step cgroups below a
// folder (a run's) with the cgroup freezer: a frozen process gets no CPU
// and sees no time pass but its wall clock. Each step's own cgroup is
// frozen, not the folder: a step's Kill thaws its own group, so a stop, a
// timeout or a shutdown of a frozen step still ends it.
type Freezer interface {
	FreezeSteps(rel string, frozen bool) error
}

// FreezerOf returns c's freezer, or why there is none.
func FreezerOf(c Cgroups) (Freezer, error) {
	if c == nil {
		return nil, errors.New("no cgroups")
	}
	f, ok := c.(Freezer)
	if !ok {
		return nil, errors.New("this cgroup hierarchy has no freezer")
	}
	if v1, ok := c.(cgroupsV1); ok && !v1.has(cgroup1.Freezer) {
		return nil, errors.New("the cgroup v1 freezer controller is not delegated to jobfs")
	}
	return f, nil
}

// FreezeSteps writes FROZEN or THAWED to freezer.state of each step below
// rel (v1).
func (c cgroupsV1) FreezeSteps(rel string, frozen bool) error {
	state := "THAWED"
	if frozen {
		state = "FROZEN"
	}
	return eachStep(c.dir(cgroup1.Freezer, rel), "freezer.state", state)
}

// FreezeSteps writes 1 or 0 to cgroup.freeze of each step below rel (v2).
func (c cgroupsV2) FreezeSteps(rel string, frozen bool) error {
	v := "0"
	if frozen {
		v = "1"
	}
	return eachStep(filepath.Join(c.top(), rel), "cgroup.freeze", v)
}

// eachStep writes v to file in every sub-folder of dir (one per step).
// A step that ended meanwhile (its folder gone) is skipped.
func eachStep(dir, file, v string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no step has started, or all have ended
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		err := os.WriteFile(filepath.Join(dir, e.Name(), file), []byte(v), 0)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("step %s: %s: %w", e.Name(), file, err)
		}
	}
	return nil
}
