package exec

import (
	"os"

	"github.com/jobfs/jobfs/exec/stepinit"
)

// initArg is argv[1] of a step init that is the daemon's own binary.
const initArg = stepinit.Arg

// initSpec is what the daemon tells the step init, as JSON on fd 3.
type initSpec = stepinit.Spec

// MaybeInit runs the step init and exits when this process was started as
// one; otherwise it returns at once. A program that runs steps through its
// own binary must call it first thing in main (and in TestMain of packages
// whose tests run steps).
func MaybeInit() {
	if len(os.Args) >= 2 && os.Args[1] == shimArg {
		os.Exit(shimMain())
	}
	if len(os.Args) < 2 || os.Args[1] != initArg {
		return
	}
	os.Exit(stepinit.Main())
}
