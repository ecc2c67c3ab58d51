package integration

import (
	"strings"
	"testing"
)

// TestSecurityPwriteFarOffsets: a write at any offset (up to 2^63-1) to a
// setting, a secret or a share is refused with the size errno and a reason
// line; nothing is allocated for the hole and the daemon keeps answering.
func TestSecurityPwriteFarOffsets(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "far", "#!/bin/sh\necho hi\n")
	out := d.ok(t, `python3 - <<'PY'
import errno, os
for path in ["mnt/far/config/timeout", "mnt/far/config/env/token", "mnt/far/shared/public", "mnt/far/description"]:
    for off in [2**63 - 2, 2**40, 1 << 21]:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"x", off)
            print(path, off, "accepted")
        except OSError as e:
            print(path, off, errno.errorcode[e.errno])
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
PY`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(line, "accepted") {
			t.Errorf("a write far past the size cap was accepted: %s", line)
		}
	}
	d.wantFile(t, "mnt/far/config/timeout", "1h\n")
	if got := d.ok(t, `ls mnt/far/shared`); got != "" {
		t.Errorf("shared/ after refused writes: %q, want empty", got)
	}
	d.ok(t, `echo 5m > mnt/far/config/timeout && cat mnt/far/config/timeout && tail -n 3 mnt/far/log`)
}
