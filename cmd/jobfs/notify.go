package main

import (
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
)

// readyFDEnv names the descriptor on which a daemon started in the
// background by the mount helper form tells its parent "ready" or why it
// failed: the helper returns only once the mount answers.
const readyFDEnv = "_JOBFS_READY_FD"

// readiness tells whoever waits for the mount that it answers or that the
// daemon stops: systemd through $NOTIFY_SOCKET (Type=notify), and the mount
// helper that started this daemon, through its pipe.
type readiness struct {
	logger   *log.Logger
	pipe     *os.File // nil unless started by the mount helper
	stopOnce sync.Once
}

// newReadiness takes the helper's pipe out of the environment, so that no
// step inherits it.
func newReadiness(logger *log.Logger) *readiness {
	r := &readiness{logger: logger}
	v, ok := os.LookupEnv(readyFDEnv)
	if !ok {
		return r
	}
	// Dropped: unsetting a variable that exists cannot fail on Linux.
	_ = os.Unsetenv(readyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		logger.Printf("ignoring %s=%q: not a descriptor number", readyFDEnv, v)
		return r
	}
	syscall.CloseOnExec(fd)
	r.pipe = os.NewFile(uintptr(fd), "ready pipe")
	return r
}

// ready says the mount answers: READY=1 to systemd, "ready" to the helper.
func (r *readiness) ready() {
	r.notify(daemon.SdNotifyReady)
	r.tellHelper("ready\n")
}

// failed hands the reason the daemon could not start to the helper, which
// prints it where the person who ran mount sees it.
func (r *readiness) failed(err error) {
	r.tellHelper("error: " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n")
}

// stopping sends STOPPING=1 once, when the daemon begins to stop.
func (r *readiness) stopping() {
	r.stopOnce.Do(func() { r.notify(daemon.SdNotifyStopping) })
}

func (r *readiness) notify(state string) {
	// The variable stays set: STOPPING=1 goes to the same socket later.
	if _, err := daemon.SdNotify(false, state); err != nil {
		r.logger.Printf("sd_notify %s to %s: %v", state, os.Getenv("NOTIFY_SOCKET"), err)
	}
}

// tellHelper writes one message and closes the pipe: the helper reads to
// end of file.
func (r *readiness) tellHelper(msg string) {
	if r.pipe == nil {
		return
	}
	if _, err := fmt.Fprint(r.pipe, msg); err != nil {
		r.logger.Printf("tell the mount helper %q: %v", strings.TrimSpace(msg), err)
	}
	// Dropped: the message is written; closing a pipe end reports nothing useful.
	_ = r.pipe.Close()
	r.pipe = nil
}
