// Package domain holds what every part of jobs shares and nothing else:
// the error model (sentinels a FUSE layer maps to errnos in one place, and
// the *Error a person reads). It imports only the standard library, so the
// leaf packages split off jobs (chain, ...) can use it without a cycle.
package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors of the domain. Every error returned by jobs wraps one of
// them (with %w and a reason a person can act on), so the FUSE layer can
// map it to an errno in one place.
var (
	ErrNotFound   = errors.New("no such job, run or setting")
	ErrExists     = errors.New("already exists")
	ErrInvalid    = errors.New("invalid value")
	ErrBusy       = errors.New("busy")
	ErrPermission = errors.New("permission denied")
	ErrTooLarge   = errors.New("too large")
	ErrStopped    = errors.New("jobfs is stopping")
)

// Error is a domain error: Reason is the whole message a person reads (in
// the job log and on the daemon's stderr), Kind the sentinel it maps to.
type Error struct {
	Kind   error
	Reason string
	// MayComplete is set when lines written later could make the value
	// valid (an empty chains file, an edge to a label bound further down):
	// a tool that writes a line at a time (bash's echo and printf) is not
	// refused halfway; the whole value is checked when the file is closed.
	MayComplete bool
}

func (e *Error) Error() string { return e.Reason }
func (e *Error) Unwrap() error { return e.Kind }

// MayComplete marks a domain error as curable by further lines. Only an
// *Error itself is marked, not one wrapped in another error.
func MayComplete(err error) error {
	if e, ok := err.(*Error); ok {
		e.MayComplete = true
	}
	return err
}

// Errorf makes an *Error of the given kind.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}
