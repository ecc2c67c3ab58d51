package crypt

import "errors"

// ErrOpen is wrapped by every error of Sealer.Open: the value was altered,
// truncated, or sealed for another master key, job, runtime type or name. The
// caller cannot tell which, by design, and asks for the value to be set again.
var ErrOpen = errors.New("sealed value does not open (altered, or sealed for another key, job, runtime or name)")
