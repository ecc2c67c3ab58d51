package exec

import (
	"os"
	"syscall"
)

// WriteExecutable writes a program that a step will exec, as os.WriteFile
// does, while no process can be forked from this one: a process forked
// while the file is open for writing holds a copy of that descriptor until
// its own exec, and an exec of the file meanwhile fails with "text file
// busy" (ETXTBSY; golang/go#22315). Seen as a FAILED run under load, when a
// shim was started beside the write. Go's fork takes syscall.ForkLock for
// writing; holding it for reading here keeps forks out of the window.
func WriteExecutable(path string, data []byte, perm os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(path, data, perm)
}
