package integration

import (
	"strings"
	"testing"
)

// TestTarJobRoundTrip: a job folder archived with tar and extracted over a
// new job restores its description, name, settings and secrets, ends (no
// loop on files tar removes and creates again), and starts no run.
func TestTarJobRoundTrip(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.scriptJob(t, "src", "#!/bin/sh\necho \"token $token\"\n")
	d.ok(t, `echo 'a description' > mnt/src/description && echo 'Source Job' > mnt/src/name &&
echo 5m > mnt/src/config/timeout && printf 's3cret-value' > mnt/src/config/env/token`)
	d.ok(t, `tar -C mnt/src -cf "$PWD/job.tar" --exclude ./runs --exclude ./log --exclude ./shortname --exclude ./next_run --exclude ./input --exclude ./shared --exclude ./config/env . && mkdir mnt/dst`)
	r := d.sh(t, `timeout 60 tar -C mnt/dst -xf "$PWD/job.tar"; echo "tar=$?"`)
	if !strings.Contains(r.out, "tar=0") {
		t.Fatalf("tar -x into a new job:\n%s", r)
	}
	d.wantFile(t, "mnt/dst/description", "a description\n")
	d.wantFile(t, "mnt/dst/name", "Source Job\n")
	d.wantFile(t, "mnt/dst/config/timeout", "5m\n")
	if got := d.ok(t, `ls mnt/dst/runs`); got != "" {
		t.Errorf("extracting a job started runs: %q", got)
	}
}
