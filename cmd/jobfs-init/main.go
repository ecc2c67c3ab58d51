// Command jobfs-init is the first process of every isolated step that
// jobfs starts: the daemon runs it with the step's spec on fd 3. It is a
// separate, small binary because each step pays for its start-up (about
// half of jobfs's own, measured by exec's BenchmarkStepStart); without it
// beside the jobfs binary, jobfs re-executes itself instead. Not for use
// by hand.
package main

import (
	"os"

	"github.com/jobfs/jobfs/exec/stepinit"
)

func main() { os.Exit(stepinit.Main()) }
