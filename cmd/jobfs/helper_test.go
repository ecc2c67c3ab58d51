package main

import (
	"bytes"
	"flag"
	"io"
	"regexp"
	"strings"
	"testing"
)

func TestParseHelperMapsOptions(t *testing.T) {
	h, err := parseHelper([]string{"/var/lib/jobfs", "/srv/jobs", "-o",
		"rw,dev,suid,allow_other,max_active=4,trusted_keys=/etc/jobfs/trusted,_netdev,x-systemd.automount,noatime,defaults",
		"-ograce=3s", "-o", "require-limits"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--read-only=false", "--allow-other", "--max-active=4", "--trusted-keys=/etc/jobfs/trusted",
		"--grace=3s", "--require-limits", "--state=/var/lib/jobfs"}
	if strings.Join(h.flags, " ") != strings.Join(want, " ") || h.mountpoint != "/srv/jobs" || h.foreground {
		t.Errorf("flags %q, mountpoint %q, foreground %v; want %q, /srv/jobs, false", h.flags, h.mountpoint, h.foreground, want)
	}
	f, mp, err := parseMount(append(h.flags, "--", h.mountpoint), io.Discard)
	if err != nil || mp != "/srv/jobs" || !f.allowOther || f.maxActive != 4 || f.state != "/var/lib/jobfs" || !f.requireLim {
		t.Errorf("jobfs mount parses the flags as %+v, %q, %v", f, mp, err)
	}
}

// Every flag of jobfs mount is an option of the helper form, in both
// spellings, so a flag added later needs nothing here.
func TestParseHelperTakesEveryMountFlag(t *testing.T) {
	var f mountFlags
	values := map[string]string{"grace": "5s", "etcd-lease": "5s", "state": "/s", "repos": "/r", "trusted-keys": "/k"}
	mountFlagSet(&f, io.Discard).VisitAll(func(fl *flag.Flag) {
		opt := strings.ReplaceAll(fl.Name, "-", "_")
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			v, ok := values[fl.Name]
			if !ok {
				v = "7"
			}
			opt += "=" + v
		}
		for _, o := range []string{opt, strings.ReplaceAll(opt, "_", "-")} {
			h, err := parseHelper([]string{"jobfs", "/mnt", "-o", o})
			if err != nil || len(h.flags) != 1 || !strings.HasPrefix(h.flags[0], "--"+fl.Name) {
				t.Errorf("option %s: flags %q, %v", o, h.flags, err)
			}
		}
	})
}

func TestParseHelperRefuses(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"/s", "/m", "-o", "allow_other,kernel_cache"}, `unknown mount option "kernel_cache"`},
		{[]string{"/s", "/m", "-o", "max_active=lots"}, `option max_active=lots: invalid value`},
		{[]string{"/s", "/m", "-o", "state"}, `option state needs a value: state=DIR`},
		{[]string{"/s", "/m", "-o", "state=/other"}, `name two state folders`},
		{[]string{"/s", "/dev/fd/5", "-o", "rw"}, `drop_privileges, which jobfs does not support`},
		{[]string{"/s", "/m", "-x"}, `unknown flag -x`},
		{[]string{"/s", "/m", "-o"}, `-o needs options`},
		{[]string{"/s", "/m", "/n"}, `need STATE and MOUNTPOINT, got 3 operands`},
	} {
		if _, err := parseHelper(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseHelper(%q) = %v, want %q", c.args, err, c.want)
		}
	}
}

func TestParseHelperForms(t *testing.T) {
	h, err := parseHelper([]string{"-f", "jobfs", "/m", "-o", "state=/s,ro,noexec,log=/l", "-d"})
	if err != nil {
		t.Fatal(err)
	}
	want := "--debug --state=/s --read-only --noexec"
	if strings.Join(h.flags, " ") != want || !h.foreground || h.logFile != "/l" {
		t.Errorf("flags %q, foreground %v, log %q; want %q, true, /l", h.flags, h.foreground, h.logFile, want)
	}
	if h, err := parseHelper([]string{"none", "/m"}); err != nil || len(h.flags) != 0 {
		t.Errorf("none /m: flags %q, %v; want none", h.flags, err)
	}
	for args, want := range map[string]bool{
		"./state mnt": true, "state /mnt": true, "jobfs mnt": true, "none mnt": true,
		"state mnt -o allow_other -f": true, "state mnt -oro": true, "-f ./state -- -mnt": true,
		"frobnicate": false, "state -o mnt": false, "a b c": false,
		// a mistyped command is not a mount of ./job with its state in ./pause
		"pause job": false, "status job": false, "-f state mnt": false,
	} {
		if got := isHelperForm(strings.Fields(args)); got != want {
			t.Errorf("isHelperForm(%s) = %v, want %v", args, got, want)
		}
	}
}

// The ready line as logged is the line --help documents.
func TestReadyLineIsDocumented(t *testing.T) {
	var out, help bytes.Buffer
	newLogger(&out).Printf(readyFormat, "/srv/jobs", "/var/lib/jobfs", "/var/lib/jobfs/repos")
	form := regexp.QuoteMeta(readyLine)
	for word, re := range map[string]string{"DATE": `\d{4}/\d\d/\d\d`, "TIME": `\d\d:\d\d:\d\d`, "MOUNTPOINT": `/srv/jobs`, "DIR": `/[^,()]+`} {
		form = strings.ReplaceAll(form, word, re)
	}
	if !regexp.MustCompile(`^` + form + `\n$`).Match(out.Bytes()) {
		t.Errorf("logged %q, documented %q", out.String(), readyLine)
	}
	if _, _, err := parseMount([]string{"--help"}, &help); err != flag.ErrHelp || !strings.Contains(help.String(), "\n  "+readyLine+"\n") {
		t.Errorf("jobfs mount --help (%v) does not document %q:\n%s", err, readyLine, help.String())
	}
}

// TestMountUsageStreams: jobfs mount --help prints its usage on stdout
// (jobfs mount --help | less) and exits 0; a mistake is one line on
// stderr, saying where the flags are listed, and exits 2.
func TestMountUsageStreams(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"mount", "--help"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "Usage: jobfs mount") || errb.Len() != 0 {
		t.Errorf("jobfs mount --help: exit %d, stdout %d bytes, stderr %q", code, out.Len(), errb.String())
	}
	for _, args := range [][]string{{"mount"}, {"mount", "--bogus", "x"}, {"mount", "a", "b"}} {
		out.Reset()
		errb.Reset()
		code := run(args, &out, &errb)
		if code != 2 || out.Len() != 0 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "jobfs mount --help lists the flags") {
			t.Errorf("jobfs %s: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", strings.Join(args, " "), code, out.String(), errb.String())
		}
	}
}

// TestMountMaxActiveNegative: --max-active below 0 is refused in one line
// (it was taken as the default); 0 is the default.
func TestMountMaxActiveNegative(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"mount", "--max-active", "-1", "mnt"}, &out, &errb); code != 2 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "--max-active -1") {
		t.Errorf("jobfs mount --max-active -1: exit %d, stderr %q; want exit 2 and one line naming the flag", code, errb.String())
	}
	if f, _, err := parseMount([]string{"--max-active", "0", "mnt"}, io.Discard); err != nil || f.maxActive != 0 {
		t.Errorf("--max-active 0: %+v, %v", f.maxActive, err)
	}
}
