package main

import (
	"fmt"
	"io"
)

// sayf and sayln print to the terminal (stdout or stderr): a failed write
// there has nowhere else to be reported, so its error is dropped.
func sayf(w io.Writer, format string, a ...any) { _, _ = fmt.Fprintf(w, format, a...) }

func sayln(w io.Writer, a ...any) { _, _ = fmt.Fprintln(w, a...) }
