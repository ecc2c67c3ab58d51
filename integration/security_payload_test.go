//go:build linux

package integration

import (
	"strings"
	"testing"
)

// TestPayloadText: a payload is UTF-8 JSON text. Bytes that are not UTF-8
// and a NUL byte are refused inside write() (Invalid argument) with their
// own reason in the job's log, naming the byte, and start no run; a UTF-8
// payload still runs, byte for byte.
func TestPayloadText(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	A := shareAs(users[0])
	d := shareDaemon(t)
	A.job(t, d, "pay", "#!/bin/sh\necho ran\ncat \"$1/input.json\" > \"$2/out.json\"\n")

	for _, tc := range []struct{ write, reason string }{
		{`printf '{"a":"\xff"}' > mnt/pay/data`, "data rejected: invalid JSON at byte 7: not UTF-8 (0xff)"},
		{`printf '{}\0' > mnt/pay/data`, "data rejected: invalid JSON at byte 3: NUL byte"},
		{`printf '{"a":"\0"}\n' > mnt/pay/data`, "data rejected: invalid JSON at byte 7: NUL byte"},
	} {
		A.fails(t, d, tc.write, "write error: Invalid argument")
		if got := A.ok(t, d, `tail -n 1 mnt/pay/log`); !strings.Contains(got, tc.reason) {
			t.Errorf("after %s: last log line %q, want %q", tc.write, got, tc.reason)
		}
	}
	A.want(t, d, `ls mnt/pay/runs`, "")

	A.ok(t, d, `printf '{"a":"caf\xc3\xa9 \xe2\x82\xac"}\n' > mnt/pay/data`)
	if got := d.waitRun(t, "@"+users[0].name+"/pay", 1); got != "COMPLETED" {
		t.Fatalf("the UTF-8 payload's run ended %s, want COMPLETED", got)
	}
	A.want(t, d, `cat mnt/pay/runs/1/result`, "{\"a\":\"café €\"}\n")
	A.want(t, d, `ls mnt/pay/runs`, "1\nlatest\n")
}
