// Package exec runs one step of a run as a real process and packages what it
// leaves behind.
//
// A step runs in its own process group with a clean environment; its stdout
// and stderr share one pipe that the daemon copies into the run's append-only
// log file, so lines keep their order and every byte passes through jobfs (the
// place to mask secrets). A step is stopped by SIGTERM to the whole group, a
// grace period, then SIGKILL; when its main process exits, whatever it left
// running in the group is killed, so the log pipe closes and no orphan
// outlives its run. The log file is closed before Run returns: the final bytes
// are on disk before the caller records a terminal status.
//
// Kernel assumptions: Linux; Pdeathsig kills the step's main process when the
// daemon dies; processes a crashed daemon left are found again by process
// group and start time (KillGroup).
package exec
