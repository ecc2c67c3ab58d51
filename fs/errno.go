package fs

import (
	"context"
	"errors"
	"log"
	"os"
	"syscall"

	"github.com/jobfs/jobfs/jobs"
)

// toErrno maps an error to the errno a shell user should see; every node
// answers through it (package jobs answers a symlink or mount crossed below
// a run or stage folder as ENOENT itself).
// In order: a domain error of package jobs by its kind (only ErrNotFound is
// ENOENT), a cancelled request (the caller was interrupted) as EINTR, an
// errno from the kernel as it is (EPERM stays EPERM, ENOTEMPTY stays
// ENOTEMPTY), then the os sentinels; anything else is logged and is EIO.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := domainErrno(err); ok {
		return e
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno > 0 && errno < 512 {
		return errno
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, os.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, os.ErrPermission):
		return syscall.EACCES
	}
	log.Printf("jobfs: unexpected error, returned as EIO: %v", err)
	return syscall.EIO
}

// domainErrno maps the kinds of package jobs, and an interrupted request.
func domainErrno(err error) (syscall.Errno, bool) {
	for _, m := range domainErrnos {
		if errors.Is(err, m.kind) {
			return m.errno, true
		}
	}
	return 0, false
}

var domainErrnos = []struct {
	kind  error
	errno syscall.Errno
}{
	{jobs.ErrNotFound, syscall.ENOENT},
	{jobs.ErrExists, syscall.EEXIST},
	{jobs.ErrInvalid, syscall.EINVAL},
	{jobs.ErrBusy, syscall.EBUSY},
	{jobs.ErrPermission, syscall.EACCES},
	{jobs.ErrTooLarge, syscall.EFBIG},
	{jobs.ErrStopped, syscall.ESHUTDOWN},
	{context.Canceled, syscall.EINTR},
}

// renameRefused is the errno of a rename the tree does not allow (err, a
// refusal already in the job's log): EPERM where it would be EINVAL, which
// mv words as "cannot move ... to a subdirectory of itself".
func renameRefused(err error) syscall.Errno {
	if errno := toErrno(err); errno != syscall.EINVAL {
		return errno
	}
	return syscall.EPERM
}
