package integration

import (
	"strings"
	"testing"
)

// TestTreeSpecialFiles: a step's symlinks and FIFOs, and a staged FIFO, are
// listed in the run's folders as what they are, as in a disk folder: ls
// shows their types, readlink reads a link's target (never followed), test
// -p sees the FIFO, rsync -a copies the link; a device never shows.
func TestTreeSpecialFiles(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "special", "#!/bin/sh\ncd \"$2\"\necho data > file\nln -s /etc/shadow link\nln -s file rel\nmkfifo fifo\n")
	d.ok(t, `mkfifo mnt/special/input/staged.fifo`)
	d.trigger(t, "special", "{}")
	if got := d.waitRun(t, "special", 1); got != "COMPLETED" {
		t.Fatalf("run 1 ended %s: %s", got, d.cat(t, "mnt/special/runs/1/log"))
	}
	out := d.ok(t, `ls -l mnt/special/runs/1/output | awk 'NR > 1 {print substr($1, 1, 1), $9, $10, $11}'`)
	for _, want := range []string{"p fifo", "- file", "l link -> /etc/shadow", "l rel -> file"} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+" \n") && !strings.Contains(out, want+"  \n") {
			t.Errorf("ls -l output/ does not show %q:\n%s", want, out)
		}
	}
	if got := d.ok(t, `readlink mnt/special/runs/1/output/link`); got != "/etc/shadow\n" {
		t.Errorf("readlink = %q", got)
	}
	// A link is text: reading through it from the mount resolves it on the
	// reader's side (here /etc/shadow is root's), never in the daemon.
	d.ok(t, `test -p mnt/special/runs/1/output/fifo && test -L mnt/special/runs/1/output/rel`)
	if got := d.ok(t, `cat mnt/special/runs/1/output/rel`); got != "data\n" {
		t.Errorf("cat of a relative link = %q, want the file it names", got)
	}
	d.ok(t, `test -p mnt/special/runs/1/input/staged.fifo`)
	codeNeed(t, "rsync")
	d.ok(t, `rsync -a mnt/special/runs/1/output/ copy/ && test -L copy/link && test "$(readlink copy/rel)" = file`)
}
