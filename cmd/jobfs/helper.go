package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

const helperUsage = `Usage: jobfs STATE MOUNTPOINT [-o OPTION[,OPTION...]] [-f]

The mount helper form: mount -t fuse.jobfs STATE MOUNTPOINT -o OPTIONS and
fstab lines (STATE MOUNTPOINT fuse.jobfs OPTIONS 0 0) run it through
mount.fuse3, which needs jobfs on PATH. STATE is the state folder ("jobfs"
or "none": the default one, or state=DIR). It returns once the mount
answers, with the daemon in the background, logging to LOG (default
STATE/jobfs.log); -f keeps it in the foreground, logging to stderr.
umount MOUNTPOINT stops the daemon. Typed by hand, it needs -o, a STATE
path with a slash (./state) or an absolute MOUNTPOINT: two bare words
(jobfs pause job) are an unknown command, not a mount.

Options:
  every flag of jobfs mount, with _ or - (allow_other, repos=DIR,
  trusted_keys=FILE, max_active=N, require_limits, grace=10s, ...);
  store= separates etcd endpoints with + (store=etcd://h1:2379+h2:2379),
  as a comma ends the option
  log=FILE          where the background daemon writes its log
  ro, rw            mount read-only, read-write (default)
  noexec, exec      honoured
  nodev, dev, nosuid, suid   accepted; jobfs always mounts nodev,nosuid
  defaults auto noauto user nouser users owner group nofail _netdev
  x-* comment=*, atime noatime relatime norelatime strictatime nostrictatime
  diratime nodiratime lazytime nolazytime sync async dirsync silent loud
                    accepted, no effect (they are mount(8)'s or systemd's)
Any other option is refused by name.
`

// ignoredOptions are the generic options mount(8), fstab and systemd pass
// that mean nothing to jobfs; accepted so that ordinary fstab lines work.
var ignoredOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "nofail": true, "_netdev": true,
	"atime": true, "noatime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "diratime": true, "nodiratime": true,
	"lazytime": true, "nolazytime": true, "sync": true, "async": true, "dirsync": true,
	"silent": true, "loud": true,
	// jobfs serves no device nodes or set-user-ID files: always nodev,nosuid.
	"dev": true, "nodev": true, "suid": true, "nosuid": true,
}

// renamedOptions are generic options that set a jobfs mount flag.
var renamedOptions = map[string]string{
	"ro": "--read-only", "rw": "--read-only=false", "exec": "--noexec=false",
}

// helperArgs is one call of the helper form, turned into jobfs mount flags.
type helperArgs struct {
	flags      []string // jobfs mount flags, without the mountpoint
	mountpoint string
	foreground bool
	logFile    string // "" means <state>/jobfs.log
}

// isHelperForm tells `jobfs STATE MOUNTPOINT ...` from a mistyped command:
// it has two operands besides its flags, and looks like a mount: -o
// options (mount.fuse3 passes them), a STATE that is "jobfs", "none" or a
// path with a slash, or an absolute MOUNTPOINT. So `jobfs pause job` is an
// unknown command, not a new mount at ./job with its state in ./pause.
func isHelperForm(args []string) bool {
	var ops []string
	options := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" || strings.HasPrefix(a, "-o") && len(a) > 2:
			options = true
			if a == "-o" {
				i++
			}
		case a == "--":
			ops = append(ops, args[i+1:]...)
			i = len(args)
		case !strings.HasPrefix(a, "-") || a == "-":
			ops = append(ops, a)
		}
	}
	if len(ops) != 2 {
		return false
	}
	state, mnt := ops[0], ops[1]
	return options || state == "jobfs" || state == "none" || strings.Contains(state, "/") || filepath.IsAbs(mnt)
}

// errHelp is -h or --help in the helper form.
var errHelp = errors.New("help asked")

// helperCmd mounts as mount helpers do: in the background, returning once
// the mount answers, or in the foreground with -f.
func helperCmd(args []string, stdout, stderr io.Writer) int {
	h, err := parseHelper(args)
	if errors.Is(err, errHelp) {
		sayf(stdout, "%s", helperUsage)
		return 0
	}
	if err != nil {
		sayln(stderr, "jobfs:", err)
		return 2
	}
	// mount(8) runs its helpers without PATH; the daemon needs one for
	// fusermount3 and git. This is the default of Debian's /bin/sh.
	if os.Getenv("PATH") == "" {
		// Dropped: setting a variable cannot fail on Linux.
		_ = os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	mountArgs := append(append([]string{}, h.flags...), "--", h.mountpoint)
	if h.foreground {
		return mountCmd(mountArgs, stdout, stderr)
	}
	f, _, err := parseMount(mountArgs, io.Discard)
	if err != nil {
		sayln(stderr, "jobfs:", err)
		return 2
	}
	if err := background(mountArgs, f, h.logFile, stderr); err != nil {
		sayln(stderr, "jobfs:", err)
		return 1
	}
	return 0
}

// parseHelper reads `SOURCE MOUNTPOINT [-o OPTS]... [-f] [-d]` in any order,
// as mount.fuse3 and libfuse programs take them.
func parseHelper(args []string) (helperArgs, error) {
	var h helperArgs
	var operands, opts []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help":
			return h, errHelp
		case a == "-o":
			if i+1 == len(args) {
				return h, errors.New("-o needs options: -o allow_other,max_active=4")
			}
			i++
			opts = append(opts, args[i])
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case a == "-f":
			h.foreground = true
		case a == "-d": // libfuse's debug: every request logged, in the foreground
			h.foreground = true
			h.flags = append(h.flags, "--debug")
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			return h, fmt.Errorf("unknown flag %s of the mount helper form (it takes -o OPTIONS, -f, -d; jobfs STATE MOUNTPOINT -h lists the options)", a)
		default:
			operands = append(operands, a)
		}
	}
	if len(operands) != 2 {
		return h, fmt.Errorf("need STATE and MOUNTPOINT, got %d operands: jobfs STATE MOUNTPOINT [-o OPTION[,OPTION...]] [-f]", len(operands))
	}
	source := operands[0]
	h.mountpoint = operands[1]
	if strings.HasPrefix(h.mountpoint, "/dev/fd/") {
		return h, fmt.Errorf("mountpoint %s is a FUSE descriptor handed over by mount.fuse3's drop_privileges, which jobfs does not support: it needs its privileges to run steps as their owners; leave drop_privileges out", h.mountpoint)
	}
	state, err := h.addOptions(opts)
	if err != nil {
		return h, err
	}
	return h, h.addSource(source, state)
}

// addSource makes SOURCE the state folder; "jobfs", "none" and "" leave the
// default (or state=).
func (h *helperArgs) addSource(source, stateOpt string) error {
	if source == "" || source == "jobfs" || source == "none" {
		return nil
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return err
	}
	if stateOpt != "" && filepath.Clean(stateOpt) != abs {
		return fmt.Errorf("the source %s and the option state=%s name two state folders: give one (the source, or jobfs with state=)", source, stateOpt)
	}
	if stateOpt == "" {
		h.flags = append(h.flags, "--state="+abs)
	}
	return nil
}

// addOptions maps -o options onto jobfs mount flags and returns the state=
// option's folder, if any.
func (h *helperArgs) addOptions(lists []string) (string, error) {
	var f mountFlags
	known := mountFlagSet(&f, io.Discard)
	state, prev := "", ""
	for _, list := range lists {
		for _, opt := range strings.Split(list, ",") {
			name, val, hasVal := strings.Cut(opt, "=")
			after := prev
			prev = name
			switch {
			case opt == "" || ignoredOptions[opt] || strings.HasPrefix(opt, "x-") || name == "comment":
				continue
			case renamedOptions[opt] != "":
				h.flags = append(h.flags, renamedOptions[opt])
				continue
			case name == "log":
				if val == "" {
					return "", errors.New("option log= needs a file: log=/var/log/jobfs.log")
				}
				abs, err := filepath.Abs(val)
				if err != nil {
					return "", err
				}
				h.logFile = abs
				continue
			}
			fl := known.Lookup(strings.ReplaceAll(name, "_", "-"))
			if fl == nil && after == "store" && !hasVal {
				return "", fmt.Errorf("option %q after store=: a comma ends an option, so store= separates its etcd endpoints with +: store=etcd://h1:2379+h2:2379", opt)
			}
			if fl == nil {
				return "", fmt.Errorf("unknown mount option %q: jobfs takes %s, log=, ro, rw, exec and the generic options mount passes (man jobfs)", opt, optionNames(known))
			}
			arg, err := flagFor(fl, opt, val, hasVal)
			if err != nil {
				return "", err
			}
			if fl.Name == "state" {
				abs, err := filepath.Abs(val)
				if err != nil {
					return "", err
				}
				state, arg = abs, "--state="+abs
			}
			h.flags = append(h.flags, arg)
		}
	}
	return state, nil
}

// flagFor turns one option into a flag, checking its value with the flag's
// own parser so that the error names the option.
func flagFor(fl *flag.Flag, opt, val string, hasVal bool) (string, error) {
	if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		if !hasVal {
			return "--" + fl.Name, nil
		}
	} else if !hasVal || val == "" {
		return "", fmt.Errorf("option %s needs a value: %s=%s", opt, name(fl), valueHint(fl))
	}
	if err := fl.Value.Set(val); err != nil {
		return "", fmt.Errorf("option %s: invalid value: %v (want %s=%s)", opt, err, name(fl), valueHint(fl))
	}
	return "--" + fl.Name + "=" + val, nil
}

// name is a flag's name as an option.
func name(fl *flag.Flag) string { return strings.ReplaceAll(fl.Name, "-", "_") }

// valueHint is the placeholder of a flag's usage (`dir`), upper-cased.
func valueHint(fl *flag.Flag) string {
	name, _ := flag.UnquoteUsage(fl)
	if name == "" {
		name = "value"
	}
	return strings.ToUpper(name)
}

// optionNames lists the flags as options, in their underscore spelling.
func optionNames(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(fl *flag.Flag) {
		n := name(fl)
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			n += "="
		}
		names = append(names, n)
	})
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// background starts `jobfs mount ARGS` in its own session with its output
// appended to the log file, and waits until it says the mount answers or
// why it could not mount. What the daemon printed before it failed is
// shown here too, so nothing it said is lost.
func background(mountArgs []string, f mountFlags, logFile string, stderr io.Writer) error {
	if logFile == "" {
		state, err := filepath.Abs(f.state)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(state, 0o711); err != nil {
			return fmt.Errorf("create state folder: %w", err)
		}
		logFile = filepath.Join(state, "jobfs.log")
	}
	logf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the daemon's log: %w", err)
	}
	start, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		_ = logf.Close() // nothing written; the seek error is the one to report
		return fmt.Errorf("open the daemon's log: %w", err)
	}
	msg, wait, err := startDaemon(mountArgs, logf)
	if err != nil {
		return err
	}
	if msg == "ready\n" {
		return nil
	}
	state := wait()
	if reason, ok := strings.CutPrefix(msg, "error: "); ok {
		return fmt.Errorf("%s (log: %s)", strings.TrimSpace(reason), logFile)
	}
	sayf(stderr, "jobfs: the daemon %s before the mount answered; its log %s says:\n%s", state, logFile, logSince(logFile, start))
	return errors.New("not mounted")
}

// startDaemon runs the daemon detached and returns what it said on the
// ready pipe, which it closes once ready or when it exits. wait reaps it.
func startDaemon(mountArgs []string, logf *os.File) (string, func() string, error) {
	defer func() { _ = logf.Close() }() // the daemon writes through its own copy
	self, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("find the jobfs binary: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = r.Close() }() // the read end: nothing to flush
	cmd := exec.Command(self, append([]string{"mount"}, mountArgs...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	// Its own session: the terminal's Ctrl-C and hang-up do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = w.Close() // the daemon holds the only write end now
	if err != nil {
		return "", nil, fmt.Errorf("start the daemon: %w", err)
	}
	msg, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", nil, fmt.Errorf("read the daemon's readiness: %w", err)
	}
	wait := func() string {
		if err := cmd.Wait(); err != nil {
			return "exited (" + err.Error() + ")"
		}
		return "exited (status 0)"
	}
	return string(msg), wait, nil
}

// logSince is what the daemon wrote to its log after offset, at most the
// last 16 KiB of it.
func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read it: %v)\n", err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	b = b[offset:]
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	if len(b) == 0 || !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	return string(b)
}
