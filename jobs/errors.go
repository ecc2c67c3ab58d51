package jobs

import "github.com/jobfs/jobfs/jobs/domain"

// Sentinel errors of the domain (package domain): every error returned by
// this package wraps one of them, so the FUSE layer can map it to an errno
// in one place. They are the domain package's values, so errors.Is matches
// errors made in jobs and in the packages split off it alike.
var (
	ErrNotFound   = domain.ErrNotFound
	ErrExists     = domain.ErrExists
	ErrInvalid    = domain.ErrInvalid
	ErrBusy       = domain.ErrBusy
	ErrPermission = domain.ErrPermission
	ErrTooLarge   = domain.ErrTooLarge
	ErrStopped    = domain.ErrStopped
)

// Error is a domain error: Reason is the whole message a person reads (in
// the job log and on the daemon's stderr), Kind the sentinel it maps to.
type Error = domain.Error

// errorf makes an *Error of the given kind.
func errorf(kind error, format string, args ...any) error {
	return domain.Errorf(kind, format, args...)
}
