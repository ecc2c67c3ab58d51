package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/jobfs/jobfs/jobs"
)

// toErrno is the one errno mapping: domain kinds first, then the kernel's
// own errno as it is, then the os sentinels; only ErrNotFound (and a name
// that is not there) reads as ENOENT, anything unknown as EIO.
func TestToErrno(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"not found", fmt.Errorf("job x: %w", jobs.ErrNotFound), syscall.ENOENT},
		{"exists", fmt.Errorf("rename: %w", jobs.ErrExists), syscall.EEXIST},
		{"invalid", fmt.Errorf("config/timeout: %w", jobs.ErrInvalid), syscall.EINVAL},
		{"busy", fmt.Errorf("delete: %w", jobs.ErrBusy), syscall.EBUSY},
		{"permission", fmt.Errorf("share: %w", jobs.ErrPermission), syscall.EACCES},
		{"too large", fmt.Errorf("payload: %w", jobs.ErrTooLarge), syscall.EFBIG},
		{"stopping", fmt.Errorf("trigger: %w", jobs.ErrStopped), syscall.ESHUTDOWN},
		{"interrupted", fmt.Errorf("wait: %w", context.Canceled), syscall.EINTR},
		{"domain before errno", fmt.Errorf("%w: %w", jobs.ErrBusy, syscall.ENOSPC), syscall.EBUSY},
		{"EPERM stays", &os.PathError{Op: "chmod", Path: "x", Err: syscall.EPERM}, syscall.EPERM},
		{"ENOTEMPTY stays", &os.PathError{Op: "rmdir", Path: "x", Err: syscall.ENOTEMPTY}, syscall.ENOTEMPTY},
		{"ENOSPC", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, syscall.ENOSPC},
		{"syscall error", os.NewSyscallError("statfs", syscall.EROFS), syscall.EROFS},
		{"os not exist", os.ErrNotExist, syscall.ENOENT},
		{"os exist", os.ErrExist, syscall.EEXIST},
		{"os permission", os.ErrPermission, syscall.EACCES},
		{"a store failure is no ENOENT", errors.New("database not open"), syscall.EIO},
	} {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("%s: toErrno(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
