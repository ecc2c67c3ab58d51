package integration

import (
	"strings"
	"testing"
)

// TestDataForkExecWhileOpen: a program that holds data open while it runs
// another (fork, then exec: the child's close-on-exec closes its copy of
// the descriptor, a FLUSH sent from inside execve) gets every run. The
// daemon's look at /proc for other writers of data once reached the child
// in the middle of that exec and waited for it, while the child waited for
// the daemon's answer: the program hung for good (Python's subprocess here;
// Go's os/exec and shells do the same).
func TestDataForkExecWhileOpen(t *testing.T) {
	t.Parallel()
	codeNeed(t, "python3")
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/fork && echo script > mnt/fork/config/type && printf '#!/bin/sh\ntrue\n' > mnt/fork/config/script`)
	py := `import os, subprocess, sys
for i in range(30):
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b'{}\n')
    subprocess.run(["/bin/true"], check=True)
    os.close(fd)
`
	d.ok(t, `python3 -c "$PY" mnt/fork/data`, "PY="+py)
	d.waitStatus(t, "fork", 30, "COMPLETED")
	runs := d.ok(t, `ls mnt/fork/runs | grep -cv latest`)
	if strings.TrimSpace(runs) != "30" {
		t.Fatalf("runs: %s, want 30 (one per payload)", runs)
	}
}
