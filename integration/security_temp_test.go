package integration

import "testing"

// TestTempFilesOwnerOnly: an owner's temporary files (an editor's swap
// file, rsync's or install's scratch name) are the owner's alone to change,
// and one in config/env/ (a secret's plain value before its rename) the
// owner's alone to read: a viewer who could write config/.script.swp would
// choose what the owner's editor renames over config/script.
func TestTempFilesOwnerOnly(t *testing.T) {
	t.Parallel()
	shareSkip(t)
	users, _ := shareUsers(t, 2, false)
	alice, bob := users[0], users[1]
	d := shareDaemon(t)
	A, B := shareAs(alice), shareAs(bob)
	e := shareEnv("P", "mnt/@"+alice.name, "U", bob.name)
	A.job(t, d, "etl", shareScript(sleepArgs()))
	A.check(t, d, e,
		shareDo(`touch "mnt/etl/shared/@$U"`),
		shareDo(`printf s3cret > mnt/etl/config/env/.tok.tmp`),
		shareDo(`printf 'echo mine' > mnt/etl/config/.script.swp`))
	B.check(t, d, e,
		shareOut(`cat "$P/etl/config/.script.swp"`, "echo mine"),
		shareErr(`cat "$P/etl/config/env/.tok.tmp"`, "Permission denied"),
		shareErr(`echo 'echo bob' >> "$P/etl/config/.script.swp"`, "Permission denied"),
		shareErr(`: > "$P/etl/config/.script.swp"`, "Permission denied"),
		shareErr(`truncate -s 0 "$P/etl/config/.script.swp"`, "Permission denied"),
		shareErr(`chmod 777 "$P/etl/config/.script.swp"`, "Permission denied"))
	A.check(t, d, e,
		shareOut(`cat mnt/etl/config/.script.swp`, "echo mine"),
		shareOut(`cat mnt/etl/config/env/.tok.tmp`, "s3cret"),
		shareDo(`rm mnt/etl/config/.script.swp mnt/etl/config/env/.tok.tmp`))
}
