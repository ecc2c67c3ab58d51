//go:build linux

package integration

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 9: jobs as code. Editors, sed -i, rsync and cp work on the tree:
// their temporary files and renames are validated writes, settings read
// back as they are written, and their mtimes say when they last changed.

// TestCodeEditors: vim, ex and sed -i edit settings in place through a
// temporary file; a bad value saved from each is refused and the old one
// kept. Also: mtimes of settings, and cloning a job's settings with cp -r.
func TestCodeEditors(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	codeImage(t, d, "render", "#!/bin/sh\necho render\n")
	codeImage(t, d, "draw", "#!/bin/sh\necho draw\n")

	t.Run("vim chains", func(t *testing.T) {
		t.Parallel()
		codeNeed(t, "vim")
		d.ok(t, `mkdir mnt/vimjob && echo render > mnt/vimjob/config/chains`)
		listing := d.ok(t, `ls -A mnt/vimjob/config`)
		d.ok(t, `vim -es -c '%s/render/draw/' -c 'wq' mnt/vimjob/config/chains`)
		d.wantFile(t, "mnt/vimjob/config/chains", "draw\n")
		if got := codeLastLog(t, d, "vimjob"); !strings.Contains(got, "config/chains set") {
			t.Errorf("after vim, tail -n 1 log = %q, want config/chains set ...", got)
		}

		r := d.sh(t, `vim -es -c '%s/draw/nosuchimage/' -c 'wq' mnt/vimjob/config/chains`)
		if r.code == 0 {
			t.Errorf("vim saved a bad pipeline and exited 0:\n%s", r)
		}
		d.wantFile(t, "mnt/vimjob/config/chains", "draw\n")
		codeWantRejected(t, d, "vimjob", "config/chains", "nosuchimage")

		// Whatever vim decides about its backup (copy or rename), a save
		// goes through; a refused one keeps the old value.
		for _, bc := range []string{"yes", "no"} {
			d.ok(t, `vim -es -c "set backupcopy=$BC" -c '%s/draw/render/' -c 'wq' mnt/vimjob/config/chains`, "BC="+bc)
			d.wantFile(t, "mnt/vimjob/config/chains", "render\n")
			if r := d.sh(t, `vim -es -c "set backupcopy=$BC" -c '%s/render/nosuchimage/' -c 'wq' mnt/vimjob/config/chains`, "BC="+bc); r.code == 0 {
				t.Errorf("backupcopy=%s: vim saved a bad pipeline and exited 0:\n%s", bc, r)
			}
			d.wantFile(t, "mnt/vimjob/config/chains", "render\n")
			d.ok(t, `vim -es -c "set backupcopy=$BC" -c '%s/render/draw/' -c 'wq' mnt/vimjob/config/chains`, "BC="+bc)
		}
		if got := d.ok(t, `ls -A mnt/vimjob/config`); got != listing {
			t.Errorf("after vim, ls -A config = %q, want %q (no swap or backup file left)", got, listing)
		}

		// description lives in the job folder: vim's files go there.
		jobListing := d.ok(t, `ls -A mnt/vimjob`)
		d.ok(t, `printf 'first draft\nsecond line\n' > mnt/vimjob/description`)
		d.ok(t, `vim -es -c '1s/first/final/' -c 'wq' mnt/vimjob/description`)
		d.wantFile(t, "mnt/vimjob/description", "final draft\nsecond line\n")
		if got := d.ok(t, `ls -A mnt/vimjob`); got != jobListing {
			t.Errorf("after vim on description, ls -A of the job = %q, want %q", got, jobListing)
		}
	})

	t.Run("sed chains", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/sedjob && echo render > mnt/sedjob/config/chains`)
		listing := d.ok(t, `ls -A mnt/sedjob/config`)
		d.ok(t, `sed -i 's/render/draw/' mnt/sedjob/config/chains`)
		d.wantFile(t, "mnt/sedjob/config/chains", "draw\n")

		d.fails(t, `sed -i 's/draw/nosuchimage/' mnt/sedjob/config/chains`, "Invalid argument")
		d.wantFile(t, "mnt/sedjob/config/chains", "draw\n")
		codeWantRejected(t, d, "sedjob", "config/chains", "nosuchimage")

		// A multi-line pipeline, edited on its second line.
		d.ok(t, `printf 'a <- render\nb <- draw\na -> b\n' > mnt/sedjob/config/chains`)
		d.ok(t, `sed -i '2s/draw/render/' mnt/sedjob/config/chains`)
		d.wantFile(t, "mnt/sedjob/config/chains", "a <- render\nb <- render\na -> b\n")
		d.fails(t, `sed -i '3s/a -> b/a -> c/' mnt/sedjob/config/chains`, "Invalid argument")
		d.wantFile(t, "mnt/sedjob/config/chains", "a <- render\nb <- render\na -> b\n")
		codeWantRejected(t, d, "sedjob", "config/chains", "line 3")

		// config/limits/ is a folder of its own.
		d.ok(t, `sed -i 's/512/256/' mnt/sedjob/config/limits/memory`)
		d.wantFile(t, "mnt/sedjob/config/limits/memory", "256\n")
		d.fails(t, `sed -i 's/256/lots/' mnt/sedjob/config/limits/memory`, "Invalid argument")
		d.wantFile(t, "mnt/sedjob/config/limits/memory", "256\n")
		codeWantRejected(t, d, "sedjob", "config/limits/memory", "lots")

		if got := d.ok(t, `ls -A mnt/sedjob/config`); got != listing {
			t.Errorf("after sed -i, ls -A config = %q, want %q (no sedXXXXXX left)", got, listing)
		}
		if got := d.ok(t, `ls -A mnt/sedjob/config/limits`); codeHasTemp(got) {
			t.Errorf("after sed -i, ls -A config/limits = %q: a temporary file is left", got)
		}
	})

	t.Run("ex schedule", func(t *testing.T) {
		t.Parallel()
		codeNeed(t, "ex", "vim")
		d.ok(t, `mkdir mnt/exjob && echo '@every 1h' > mnt/exjob/config/schedule`)
		d.ok(t, `ex -s -c '%s/1h/2h/' -c 'wq' mnt/exjob/config/schedule`)
		d.wantFile(t, "mnt/exjob/config/schedule", "@every 2h\n")
		d.ok(t, `vim -es -c 's/.*/0 9 * * Mon-Fri  # weekdays at nine/' -c 'wq' mnt/exjob/config/schedule`)
		d.wantFile(t, "mnt/exjob/config/schedule", "0 9 * * Mon-Fri  # weekdays at nine\n")

		for _, tool := range []string{"ex -s", "vim -es"} {
			if r := d.sh(t, tool+` -c 's/^0 9/61 9/' -c 'wq' mnt/exjob/config/schedule`); r.code == 0 {
				t.Errorf("%s saved a bad schedule and exited 0:\n%s", tool, r)
			}
			d.wantFile(t, "mnt/exjob/config/schedule", "0 9 * * Mon-Fri  # weekdays at nine\n")
			codeWantRejected(t, d, "exjob", "config/schedule", "61")
		}
		d.fails(t, `sed -i 's/Mon-Fri/Mon-Funday/' mnt/exjob/config/schedule`, "Invalid argument")
		d.wantFile(t, "mnt/exjob/config/schedule", "0 9 * * Mon-Fri  # weekdays at nine\n")
		codeWantRejected(t, d, "exjob", "config/schedule", "")
	})

	t.Run("mtime", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/mt`)
		stat := func(path string) int64 {
			t.Helper()
			n, err := strconv.ParseInt(strings.TrimSpace(d.ok(t, `stat -c %Y "$P"`, "P="+path)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		t0, k0, dsc0 := stat("mnt/mt/config/timeout"), stat("mnt/mt/config/keep"), stat("mnt/mt/description")
		time.Sleep(1100 * time.Millisecond)
		d.ok(t, `echo 30s > mnt/mt/config/timeout && printf 'about\n' > mnt/mt/description`)
		t1, k1, dsc1 := stat("mnt/mt/config/timeout"), stat("mnt/mt/config/keep"), stat("mnt/mt/description")
		if t1 <= t0 || dsc1 <= dsc0 {
			t.Errorf("after writing them 1.1 s later: mtime of config/timeout %d -> %d, of description %d -> %d; want them later", t0, t1, dsc0, dsc1)
		}
		if now := time.Now().Unix(); t1 > now+1 || t1 < now-10 {
			t.Errorf("mtime of config/timeout just written is %d, now is %d", t1, now)
		}
		if k1 != k0 {
			t.Errorf("config/keep was not written, yet its mtime changed %d -> %d", k0, k1)
		}

		time.Sleep(1100 * time.Millisecond)
		d.cat(t, "mnt/mt/config/timeout")
		d.fails(t, `echo never > mnt/mt/config/timeout`, "Invalid argument")
		if t2 := stat("mnt/mt/config/timeout"); t2 != t1 {
			t.Errorf("a read and a refused write changed the mtime of config/timeout %d -> %d", t1, t2)
		}
		d.ok(t, `rm mnt/mt/config/timeout`)
		if t3 := stat("mnt/mt/config/timeout"); t3 <= t1 {
			t.Errorf("rm (reset to the default) left the mtime of config/timeout at %d, want later than %d", t3, t1)
		}
	})

	t.Run("clone with cp", func(t *testing.T) {
		t.Parallel()
		d.ok(t, `mkdir mnt/orig &&
			echo render > mnt/orig/config/chains &&
			echo 30s > mnt/orig/config/timeout &&
			echo 50 > mnt/orig/config/limits/cpu &&
			echo '@daily' > mnt/orig/config/schedule &&
			printf 'The original\nof the clone\n' > mnt/orig/description &&
			printf 'secret-value' > mnt/orig/config/env/api_token`)
		// Issue 14: env reads as its sealed form, which opens only in its
		// own job: the copy refuses it.
		r := d.sh(t, `mkdir mnt/copy && cp -r mnt/orig/config mnt/orig/description mnt/copy/`)
		if r.code == 0 || !strings.Contains(r.err, "api_token") || !strings.Contains(r.err, "Invalid argument") {
			t.Errorf("cp -r of a job with env: want a non-zero exit and Invalid argument for env/api_token:\n%s", r)
		}
		if n := strings.Count(strings.TrimSpace(r.err), "\n") + 1; n != 1 {
			t.Errorf("cp -r reported %d problems, want only the env file's:\n%s", n, r)
		}
		diff := d.sh(t, `diff -r mnt/orig/config mnt/copy/config`)
		if diff.out != "Only in mnt/orig/config/env: api_token\n" {
			t.Errorf("diff -r of the settings: want only the env value missing:\n%s", diff)
		}
		d.wantFile(t, "mnt/copy/description", "The original\nof the clone\n")
		d.wantFile(t, "mnt/copy/config/limits/cpu", "50\n")
		if got := d.ok(t, `ls -A mnt/copy/config/env`); got != "" {
			t.Errorf("ls -A copy/config/env = %q, want nothing (env is not copied)", got)
		}
		d.trigger(t, "copy", "{}")
		if got := d.waitRun(t, "copy", 1); got != "COMPLETED" {
			t.Errorf("run of the clone ended %s, want COMPLETED", got)
		}
		if got := d.cat(t, "mnt/copy/runs/1/log"); !strings.Contains(got, "render\n") {
			t.Errorf("runs/1/log of the clone = %q, want the image's line", got)
		}
	})
}

// TestCodeRsync: a definitions folder loaded with rsync -a, dumped back
// with rsync, compared with diff -r; updates and a refused value.
func TestCodeRsync(t *testing.T) {
	t.Parallel()
	codeNeed(t, "rsync")
	d := startDaemon(t, daemonOpts{})
	codeImage(t, d, "render", "#!/bin/sh\necho render\n")

	// The definitions are older than anything in the mount, as files kept
	// in git would be, so rsync's quick check (size and mtime) copies them.
	d.ok(t, `
		mkdir -p defs/report/config/limits defs/etl/config
		echo render > defs/report/config/chains
		echo '0 9 * * *' > defs/report/config/schedule
		echo 30s > defs/report/config/timeout
		echo 256 > defs/report/config/limits/memory
		printf 'Weekly report\nsecond line\n' > defs/report/description
		echo script > defs/etl/config/type
		printf '#!/bin/sh\necho etl ran\n' > defs/etl/config/script
		find defs -exec touch -d 2020-01-01 {} +`)
	d.ok(t, `rsync -a defs/ mnt/`)
	if got := d.ok(t, `ls mnt`); got != "etl\nreport\n" {
		t.Errorf("after rsync, ls mnt = %q, want etl report", got)
	}
	for path, want := range map[string]string{
		"report/config/chains":        "render\n",
		"report/config/schedule":      "0 9 * * *\n",
		"report/config/timeout":       "30s\n",
		"report/config/limits/memory": "256\n",
		"report/description":          "Weekly report\nsecond line\n",
		"etl/config/type":             "script\n",
		"etl/config/script":           "#!/bin/sh\necho etl ran\n",
	} {
		d.wantFile(t, "mnt/"+path, want)
	}
	if got := d.ok(t, `ls -A mnt/report/config mnt/report/config/limits mnt/report`); codeHasTemp(got) {
		t.Errorf("rsync's temporary files are left:\n%s", got)
	}
	d.trigger(t, "etl", "{}")
	if got := d.waitRun(t, "etl", 1); got != "COMPLETED" {
		t.Errorf("run of the loaded etl job ended %s, want COMPLETED", got)
	}
	d.wantFile(t, "mnt/etl/runs/1/log", "etl ran\n")

	// Round trip: only the settings the definitions leave at their
	// defaults differ, never a value (trailing newlines consistent).
	codeOnlyIn(t, d.sh(t, `diff -r defs/report/config mnt/report/config`), "mnt/report/config")

	// Dump. Issue 14: the env value is dumped as its sealed form.
	d.ok(t, `printf 'secret-value' > mnt/report/config/env/api_token`)
	d.ok(t, `mkdir backup`)
	d.ok(t, `rsync -a --exclude runs --exclude log mnt/report/ backup/report/`)
	diff := d.sh(t, `diff -r mnt/report backup/report`)
	want := "Only in mnt/report: log\nOnly in mnt/report: runs\n"
	if diff.out != want {
		t.Errorf("diff -r of the job and its dump: want only log and runs missing:\n%s", diff)
	}
	codeOnlyIn(t, d.sh(t, `diff -r defs/report/config backup/report/config`), "backup/report/config")

	// An update of the definitions reaches the mount.
	d.ok(t, `echo 45s > defs/report/config/timeout && touch -d 2020-01-02 defs/report/config/timeout && rsync -a defs/ mnt/`)
	d.wantFile(t, "mnt/report/config/timeout", "45s\n")

	// A bad value in the definitions: its rename is refused, rsync reports
	// it, the old value stays, and nothing of rsync's is left behind.
	listing := d.ok(t, `ls -A mnt/report/config`)
	d.ok(t, `echo nosuchimage > defs/report/config/chains && touch -d 2020-01-03 defs/report/config/chains`)
	r := d.fails(t, `rsync -a defs/ mnt/`, "Invalid argument")
	if !strings.Contains(r.err, "chains") {
		t.Errorf("rsync's error does not name the refused file:\n%s", r)
	}
	d.wantFile(t, "mnt/report/config/chains", "render\n")
	// rsync goes on with the other files: the reason is not the last line.
	if log := d.cat(t, "mnt/report/log"); !strings.Contains(log, "config/chains rejected: line 1: unknown image @") || !strings.Contains(log, "nosuchimage") {
		t.Errorf("job log has no line config/chains rejected: ... nosuchimage ...:\n%s", log)
	}
	if got := d.ok(t, `ls -A mnt/report/config`); got != listing {
		t.Errorf("after the refused rsync, ls -A config = %q, want %q", got, listing)
	}
}

// TestCodeTempFiles: the temporary files of tools may be created, read and
// removed in config/ and the job folder, are listed while they exist and
// vanish with the daemon; renaming one over a setting is a validated write.
func TestCodeTempFiles(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir mnt/tj`)
	config := d.ok(t, `ls -A mnt/tj/config`)
	jobDir := d.ok(t, `ls -A mnt/tj`)
	temps := map[string]string{".chains.swp": "swap\n", "chains~": "backup\n", "sedABC123": "sed\n"}

	for name, content := range temps {
		d.ok(t, `printf '%s' "$C" > "mnt/tj/config/$N"`, "N="+name, "C="+content)
	}
	d.ok(t, `echo draft > mnt/tj/.description.swp`)
	got := strings.Fields(d.ok(t, `ls -A mnt/tj/config`))
	for name, content := range temps {
		if !slices.Contains(got, name) {
			t.Errorf("ls -A config = %v, does not list %s", got, name)
		}
		d.wantFile(t, "mnt/tj/config/"+name, content)
	}
	if got := d.ok(t, `ls -A mnt/tj`); !strings.Contains(got, ".description.swp\n") {
		t.Errorf("ls -A of the job = %q, does not list .description.swp", got)
	}
	d.wantFile(t, "mnt/tj/.description.swp", "draft\n")

	d.ok(t, `rm mnt/tj/config/.chains.swp mnt/tj/config/chains~`)
	got = strings.Fields(d.ok(t, `ls -A mnt/tj/config`))
	if slices.Contains(got, ".chains.swp") || slices.Contains(got, "chains~") || !slices.Contains(got, "sedABC123") {
		t.Errorf("after rm of two of them, ls -A config = %v, want sedABC123 only left", got)
	}
	d.fails(t, `cat mnt/tj/config/chains~`, "No such file or directory")

	// Issue 14: in config/ a name no tool uses is a temporary file too,
	// and the log says so; rm removes it.
	d.ok(t, `touch mnt/tj/config/nonsense`)
	if got := codeLastLog(t, d, "tj"); !strings.Contains(got, "config/nonsense is not a setting: kept as a temporary file") {
		t.Errorf("tail -n 1 log = %q, want the note for config/nonsense", got)
	}
	d.ok(t, `rm mnt/tj/config/nonsense`)

	// A temporary file renamed over a setting: a bad value is refused
	// (EINVAL; mv words that "cannot move ... to a subdirectory of itself",
	// so perl shows the errno) and the old value stays; a good one is set.
	rename := `perl -e 'rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"' `
	d.ok(t, `echo 30s > mnt/tj/config/timeout && echo 5x > mnt/tj/config/.timeout.tmp`)
	d.fails(t, rename+`mnt/tj/config/.timeout.tmp mnt/tj/config/timeout`, "rename: Invalid argument")
	d.wantFile(t, "mnt/tj/config/timeout", "30s\n")
	codeWantRejected(t, d, "tj", "config/timeout", "5x")
	if r := d.sh(t, `mv mnt/tj/config/.timeout.tmp mnt/tj/config/timeout`); r.code == 0 {
		t.Errorf("mv of a bad value over config/timeout exited 0:\n%s", r)
	}
	d.wantFile(t, "mnt/tj/config/timeout", "30s\n")
	d.ok(t, `echo 45s > mnt/tj/config/.timeout.tmp && mv mnt/tj/config/.timeout.tmp mnt/tj/config/timeout`)
	d.wantFile(t, "mnt/tj/config/timeout", "45s\n")
	d.fails(t, `cat mnt/tj/config/.timeout.tmp`, "No such file or directory")

	// The temporary files are never stored: a restart drops them.
	d.stop(t)
	d.restart(t)
	if got := d.ok(t, `ls -A mnt/tj/config`); got != config {
		t.Errorf("after a restart, ls -A config = %q, want %q", got, config)
	}
	if got := d.ok(t, `ls -A mnt/tj`); got != jobDir {
		t.Errorf("after a restart, ls -A of the job = %q, want %q", got, jobDir)
	}
	d.wantFile(t, "mnt/tj/config/timeout", "45s\n")
}

// codeNeed skips t unless every tool is installed.
func codeNeed(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y vim rsync)", tool)
		}
	}
}

// codeImage makes repo image <repos>/<daemon user>/name with entrypoint.
func codeImage(t *testing.T, d *daemon, name, entrypoint string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(d.repos, u.Username, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "entrypoint"), []byte(entrypoint), 0o755); err != nil {
		t.Fatal(err)
	}
}

func codeLastLog(t *testing.T, d *daemon, job string) string {
	t.Helper()
	return d.ok(t, `tail -n 1 "mnt/$J/log"`, "J="+job)
}

// codeWantRejected checks that the job log's last line says that what was
// rejected, with reason in it.
func codeWantRejected(t *testing.T, d *daemon, job, what, reason string) {
	t.Helper()
	got := codeLastLog(t, d, job)
	if !strings.Contains(got, what+" rejected: ") || !strings.Contains(got, reason) {
		t.Errorf("tail -n 1 %s/log = %q, want %s rejected: ...%s...", job, got, what, reason)
	}
}

// codeOnlyIn checks that diff -r found only files present in dir alone:
// no content differences and nothing missing from dir.
func codeOnlyIn(t *testing.T, r result, dir string) {
	t.Helper()
	if r.code > 1 || r.err != "" {
		t.Errorf("diff -r failed:\n%s", r)
	}
	for _, l := range strings.Split(strings.TrimSuffix(r.out, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "Only in "+dir) {
			t.Errorf("diff -r: want only files in %s that the definitions do not set; found:\n%s", dir, r.out)
			return
		}
	}
}

// codeHasTemp reports whether an ls listing holds a name a tool would use
// for a temporary file.
func codeHasTemp(listing string) bool {
	for _, name := range strings.Fields(listing) {
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") || strings.HasPrefix(name, "sed") {
			return true
		}
	}
	return false
}

// TestCodeRsyncFresh: definitions written the same second as the jobs
// rsync -a makes, each the size of the default it replaces (script\n over
// chains\n, 5m\n over 1h\n), are all copied: a default's mtime is the
// epoch, not the job's creation, which rsync's quick check took for the
// source's. Settings keep the times given to them (rsync's temp file
// renamed over one, cp -p, touch -d), so a second rsync sends no file.
func TestCodeRsyncFresh(t *testing.T) {
	t.Parallel()
	codeNeed(t, "rsync")
	d := startDaemon(t, daemonOpts{})
	d.ok(t, `mkdir -p defs/j2/config && echo script > defs/j2/config/type && echo 5m > defs/j2/config/timeout &&
		printf '#!/bin/sh\necho j2\n' > defs/j2/config/script && rsync -a defs/ mnt/`)
	d.wantFile(t, "mnt/j2/config/type", "script\n")
	d.wantFile(t, "mnt/j2/config/timeout", "5m\n")
	if got := d.ok(t, `stat -c %Y mnt/j2/config/retries`); got != "0\n" {
		t.Errorf("a default's mtime = %q, want 0 (the epoch)", got)
	}
	for i := 0; i < 2; i++ {
		d.ok(t, `touch -d '2020-01-01 10:00' defs/j2/config/*`)
		if i == 1 {
			d.ok(t, `echo 6m > defs/j2/config/timeout && touch -d '2020-01-02 10:00' defs/j2/config/timeout`)
		}
		d.ok(t, `rsync -a defs/ mnt/`)
		if sent := d.ok(t, `rsync -ai defs/ mnt/ | grep '^>f' || true`); sent != "" {
			t.Errorf("pass %d: a second rsync -a sent files again:\n%s", i, sent)
		}
		if got := d.ok(t, `stat -c %y mnt/j2/config/type`); !strings.HasPrefix(got, "2020-01-01 10:00:00") {
			t.Errorf("pass %d: config/type mtime %q, want the source's", i, got)
		}
	}
	d.wantFile(t, "mnt/j2/config/timeout", "6m\n")
	d.ok(t, `echo 7m > t7 && touch -d 2019-02-02 t7 && cp -p t7 mnt/j2/config/timeout`)
	d.wantFile(t, "mnt/j2/config/timeout", "7m\n")
	if got := d.ok(t, `stat -c %y mnt/j2/config/timeout`); !strings.HasPrefix(got, "2019-02-02 00:00:00") {
		t.Errorf("after cp -p: mtime %q, want the source's", got)
	}
	d.ok(t, `touch -d 2018-03-03 mnt/j2/config/timeout`)
	if got := d.ok(t, `stat -c %y mnt/j2/config/timeout`); !strings.HasPrefix(got, "2018-03-03 00:00:00") {
		t.Errorf("after touch -d: mtime %q", got)
	}
	d.wantFile(t, "mnt/j2/config/timeout", "7m\n")
}
