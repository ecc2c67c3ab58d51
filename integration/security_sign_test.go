//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// signSetup gives user w a key whose public half is the only line of a
// trusted-keys file, and the jobfs binary where w can run it: both in a
// folder every user can reach (the suite's own folder is private). It
// returns the binary, w's private key and the trusted-keys file.
func signSetup(t *testing.T, w shareWho, home string) (bin, key, trusted string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "jobfs-sign-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "jobfs")
	if err := linkOrCopy(jobfsBin, bin); err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(home, ".jobfs", "key")
	pub := shareKeygen(t, &daemon{dir: dir}, w, bin, key)
	trusted = filepath.Join(dir, "trusted")
	if err := os.WriteFile(trusted, []byte(pub+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, key, trusted
}

// TestSignatureFlipRace: with --trusted-keys, the owner flips config/script
// between a signed script and an unsigned one in a tight loop while
// triggering 100 runs. A run executes exactly the config its signature
// check saw: every run that ran a step ran the signed script, and every
// other run failed with the signature reason and ran nothing.
func TestSignatureFlipRace(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 1, false)
	alice := users[0]
	A := shareAs(alice)
	bin, key, trusted := signSetup(t, A, alice.home)
	d := shareDaemon(t, "--trusted-keys", trusted)

	runs := 100
	signed := "#!/bin/sh\necho 'signed step ran'\necho signed > \"$2/out.txt\"\n"
	unsigned := "#!/bin/sh\necho 'UNSIGNED step ran'\necho UNSIGNED > \"$2/out.txt\"\n"
	e := shareEnv("BIN", bin, "K", key, "S", signed, "U", unsigned, "N", fmt.Sprint(runs))
	A.check(t, d, e,
		shareDo(`printf '%s' "$S" > ~/signed.sh && printf '%s' "$U" > ~/unsigned.sh`),
		shareDo(`mkdir mnt/flip && echo script > mnt/flip/config/type && echo 1000 > mnt/flip/config/keep`),
		shareDo(`cat ~/signed.sh > mnt/flip/config/script`),
		shareOut(`"$BIN" sign -k "$K" mnt/flip`, "signed mnt/flip\n"))

	// One shell: the flipper in the background (each flip one whole write
	// by cat), the triggers in the foreground; then the signed script back.
	A.ok(t, d, `
		( while :; do
			cat ~/unsigned.sh > mnt/flip/config/script 2>/dev/null
			cat ~/signed.sh > mnt/flip/config/script 2>/dev/null
		done ) &
		flipper=$!
		# A trigger that meets the script emptied by cat's O_TRUNC cannot
		# start: it is refused in write() and records nothing; try again.
		i=0 empty=0
		while [ $i -lt $N ]; do
			if echo '{}' 2>/dev/null > mnt/flip/data; then
				i=$((i + 1))
			else
				empty=$((empty + 1))
				[ $empty -lt 100000 ] || { echo "triggers kept failing" >&2; kill $flipper; exit 1; }
			fi
		done
		kill $flipper
		wait $flipper
		cat ~/signed.sh > mnt/flip/config/script`, e...)

	// A trigger whose write saw the script and whose close met it emptied
	// is refused at the close, which bash's echo does not report: count
	// the runs that were recorded.
	recorded, err := strconv.Atoi(strings.TrimSpace(A.ok(t, d, `ls mnt/flip/runs | grep -vc latest`)))
	if err != nil || recorded < runs/4 {
		t.Fatalf("%d runs recorded (%v) of %d triggers that echo reported", recorded, err, runs)
	}
	runs = recorded
	e = append(e, "N="+fmt.Sprint(runs))
	// Wait for every run (wait blocks until its run ends), a batch per shell.
	for first := 1; first <= runs; first += 25 {
		A.ok(t, d, fmt.Sprintf(`for i in $(seq %d %d); do cat mnt/flip/runs/$i/wait; done >/dev/null`, first, min(first+24, runs)))
	}
	// One record per run: status, error, the step's output and its log.
	out := A.ok(t, d, `for i in $(seq $N); do
		r=mnt/flip/runs/$i
		printf '%s\037%s\037%s\037%s\036' "$(cat $r/status)" "$(cat $r/error)" "$(cat $r/output/out.txt 2>/dev/null)" "$(cat $r/log)"
	done`, e...)
	recs := strings.Split(strings.TrimSuffix(out, "\x1e"), "\x1e")
	if len(recs) != runs {
		t.Fatalf("%d run records, want %d:\n%q", len(recs), runs, out)
	}
	const reason = "signature check failed: config changed since it was signed"
	completed, refused := 0, 0
	for i, rec := range recs {
		f := strings.Split(rec, "\x1f")
		if len(f) != 4 {
			t.Fatalf("run %d: record %q", i+1, rec)
		}
		status, errText, output, log := f[0], f[1], f[2], f[3]
		switch {
		case strings.Contains(output+log, "UNSIGNED"):
			t.Errorf("run %d (%s) executed the unsigned script: output %q, log %q", i+1, status, output, log)
		case status == "COMPLETED" && output == "signed" && strings.Contains(log, "signed step ran"):
			completed++
		case status == "FAILED" && errText == reason && output == "" && strings.Contains(log, reason) && !strings.Contains(log, "step ran"):
			refused++
		default:
			t.Errorf("run %d: %s, error %q, output %q, log %q; want COMPLETED by the signed script, or FAILED with %q and no step run",
				i+1, status, errText, output, log, reason)
		}
	}
	t.Logf("%d runs: %d ran the signed script, %d refused as unsigned", runs, completed, refused)
	if completed == 0 || refused == 0 {
		t.Errorf("the flips did not interleave with the runs (%d completed, %d refused): the race was not exercised", completed, refused)
	}
}
