// Command jobfs-shim is the shim of every step that jobfs runs outside
// itself: started by the daemon, it holds the step's output, masks its
// secrets, writes its log, enforces its timeout and records how it ended,
// so the step outlives the daemon. It is a separate binary because each
// step pays for its start-up: a third of jobfs's own (measured by the
// integration benchmark CmpTrigger); without it beside the jobfs binary,
// jobfs re-executes itself instead. Not for use by hand.
package main

import (
	"os"

	"github.com/jobfs/jobfs/exec"
)

func main() { os.Exit(exec.ShimMain()) }
