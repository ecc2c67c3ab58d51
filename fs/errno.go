package fs

import (
	"context"
	"errors"
	"log"
	"os"
	"syscall"

	"github.com/jobfs/jobfs/jobs"
)

// toErrno maps a domain error to the errno a shell user should see. It is
// the only place that does.
func toErrno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, jobs.ErrExists), errors.Is(err, os.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, jobs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, jobs.ErrBusy):
		return syscall.EBUSY
	case errors.Is(err, jobs.ErrPermission), errors.Is(err, os.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, jobs.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, jobs.ErrStopped):
		return syscall.ESHUTDOWN
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno > 0 && errno < 512 {
		return errno
	}
	log.Printf("jobfs: unexpected error, returned as EIO: %v", err)
	return syscall.EIO
}
