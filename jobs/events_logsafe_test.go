package jobs

import "testing"

// TestLogSafe: a log line shows on a terminal as it is: a file name's
// carriage return or escape sequence cannot hide or rewrite the lines
// before it.
func TestLogSafe(t *testing.T) {
	for in, want := range map[string]string{
		"input/plain.txt set-ID dropped":    "input/plain.txt set-ID dropped",
		"input/a\r\x1b[2Kb":                 `input/a\x0d\x1b[2Kb`,
		"two\nlines":                        "two lines",
		"tab\tand del\x7f":                  `tab\x09and del\x7f`,
		"not utf-8 \xff, C1 \u0085, é 日本":   "not utf-8 \uFFFD, C1 \\x85, é 日本",
		"bidi\u202etxt.exe\u2028FAKE\u200b": `bidi\u{202E}txt.exe\u{2028}FAKE\u{200B}`,
	} {
		if got := logSafe(in); got != want {
			t.Errorf("logSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
