package exec

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// cgroupHost is where the cgroup delegation logic looks: the cgroup mount,
// this process's /proc/<pid>/cgroup, and who it runs as. Tests point it at a
// fake tree in a temporary folder.
type cgroupHost struct {
	root     string // the cgroup mount: /sys/fs/cgroup (v2) or the folder of the v1 controllers
	procSelf string // /proc/self/cgroup
	uid      int    // effective uid: 0 manages every cgroup
	pid      int    // the daemon's pid, moved to a leaf (v2)
}

func realCgroupHost(root string) cgroupHost {
	return cgroupHost{root: root, procSelf: "/proc/self/cgroup", uid: os.Geteuid(), pid: os.Getpid()}
}

// v2Wanted are the v2 controllers that carry a step's limits.
var v2Wanted = []string{"cpu", "memory", "pids", "io"}

// daemonLeaf is the cgroup the daemon moves itself to inside its delegated
// subtree: under cgroup v2 only leaves hold processes once controllers are
// enabled below a cgroup (systemd's delegation rules).
const daemonLeaf = "daemon"

// ownCgroups parses /proc/<pid>/cgroup into hierarchy -> path: "" for the
// v2 line (0::/path), each controller's name for a v1 line.
func ownCgroups(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// ownV2 is the daemon's cgroup v2 path, e.g. /system.slice/jobfs.service.
func (h cgroupHost) ownV2() (string, error) {
	b, err := os.ReadFile(h.procSelf)
	if err != nil {
		return "", fmt.Errorf("find the daemon's cgroup: %w", err)
	}
	own, ok := ownCgroups(b)[""]
	if !ok || !strings.HasPrefix(own, "/") {
		return "", fmt.Errorf("find the daemon's cgroup: %s has no cgroup v2 line (0::/...)", h.procSelf)
	}
	return path.Clean(own), nil
}

// mayManage reports why uid may not manage the cgroup folder dir: a
// delegated cgroup (systemd's Delegate=yes, or an administrator's chown)
// has the folder and the files named owned by the user. Root manages all.
func (h cgroupHost) mayManage(dir string, files ...string) error {
	if h.uid == 0 {
		return nil
	}
	for _, f := range append([]string{""}, files...) {
		p := filepath.Join(dir, f)
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err
		}
		if int(st.Uid) != h.uid {
			return fmt.Errorf("%s belongs to uid %d, not to jobfs's uid %d: the cgroup is not delegated to this user", p, st.Uid, h.uid)
		}
	}
	return nil
}

// delegateV2 prepares the cgroup v2 subtree the daemon manages and returns
// its path below the mount and the wanted controllers it lacks there.
//
// A daemon in the root cgroup (root without systemd) makes its step
// cgroups below /jobfs as before. Anywhere else (a systemd unit with
// Delegate=yes, a user's delegated service) it stays inside its own cgroup,
// never beside systemd's: the folder, cgroup.procs and
// cgroup.subtree_control must be the user's; the daemon moves itself to the
// leaf <own>/daemon, then enables the controllers for the children, where
// the step cgroups <own>/jobfs/... are made.
func (h cgroupHost) delegateV2() (base string, missing []string, err error) {
	own, err := h.ownV2()
	if err != nil {
		return "", nil, err
	}
	if own == "/" {
		if h.uid != 0 {
			return "", nil, errors.New("jobfs runs in the root cgroup, which only root manages: start it as a systemd user service with Delegate=yes (the shipped unit)")
		}
		missing, err := h.missingV2("/")
		return "/", missing, err
	}
	if path.Base(own) == daemonLeaf { // started again inside a leaf made before
		own = path.Dir(own)
	}
	dir := filepath.Join(h.root, own)
	if err := h.mayManage(dir, "cgroup.procs", "cgroup.subtree_control"); err != nil {
		return "", nil, fmt.Errorf("cgroup %s: %w; start jobfs as a systemd service with Delegate=yes (the shipped units)", own, err)
	}
	if missing, err = h.missingV2(own); err != nil {
		return "", nil, err
	}
	if err := h.moveToLeaf(dir); err != nil {
		return "", nil, fmt.Errorf("cgroup %s: %w", own, err)
	}
	if err := enableControllers(dir, without(v2Wanted, missing)); err != nil {
		return "", nil, fmt.Errorf("cgroup %s: %w", own, err)
	}
	return own, missing, nil
}

// missingV2 lists the wanted controllers the cgroup at own does not offer.
func (h cgroupHost) missingV2(own string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(h.root, own, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", own, err)
	}
	have := strings.Fields(string(b))
	var missing []string
	for _, c := range v2Wanted {
		if !contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == len(v2Wanted) {
		return nil, fmt.Errorf("%w: cgroup %s offers none of the controllers cpu, memory, pids, io", ErrNoCgroups, own)
	}
	return missing, nil
}

// moveToLeaf moves the daemon from its cgroup dir into dir/daemon. Other
// processes in dir would keep it from enabling controllers below (EBUSY):
// then nothing is changed and they are named in the error.
func (h cgroupHost) moveToLeaf(dir string) error {
	pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return err
	}
	var others []string
	here := false
	for _, pid := range pids {
		if pid == h.pid {
			here = true
		} else {
			others = append(others, strconv.Itoa(pid))
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("it holds other processes (%s) besides jobfs: run jobfs alone in a unit with Delegate=yes (the shipped units, or systemd-run --scope -p Delegate=yes jobfs mount ...), so that its steps can have cgroups below it", strings.Join(others, " "))
	}
	leaf := filepath.Join(dir, daemonLeaf)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("make the daemon's leaf cgroup: %w", err)
	}
	if !here {
		return nil
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(h.pid)), 0); err != nil {
		return fmt.Errorf("move jobfs to the leaf cgroup %s: %w", leaf, err)
	}
	return nil
}

// enableControllers writes +c for each controller into
// dir/cgroup.subtree_control, unless it is enabled already.
func enableControllers(dir string, ctrls []string) error {
	file := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	on := strings.Fields(string(b))
	var add []string
	for _, c := range ctrls {
		if !contains(on, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(file, []byte(strings.Join(add, " ")), 0); err != nil {
		return fmt.Errorf("enable %s in %s: %w", strings.Join(add, " "), file, err)
	}
	return nil
}

func without(list, drop []string) []string {
	var out []string
	for _, x := range list {
		if !contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}

// delegateV1 finds, for a normal user, the v1 controllers whose cgroup of
// the daemon an administrator handed to it (chown -R USER
// /sys/fs/cgroup/memory/SUBTREE, then the daemon started in it): the
// folder and its cgroup.procs are the user's. It returns the daemon's path
// in each of them. Root uses every controller from its root.
func (h cgroupHost) delegateV1(ctrls []string) (map[string]string, error) {
	base := map[string]string{}
	if h.uid == 0 {
		for _, c := range ctrls {
			base[c] = "/"
		}
		return base, nil
	}
	b, err := os.ReadFile(h.procSelf)
	if err != nil {
		return nil, fmt.Errorf("find the daemon's cgroups: %w", err)
	}
	own := ownCgroups(b)
	var why []string
	for _, c := range ctrls {
		p, ok := own[c]
		if !ok {
			continue
		}
		dir := filepath.Join(h.root, c, p)
		if err := h.mayManage(dir, "cgroup.procs"); err != nil {
			why = append(why, err.Error())
			continue
		}
		base[c] = path.Clean(p)
	}
	if len(base) == 0 {
		return nil, fmt.Errorf("%w: jobfs is not root and none of its cgroup v1 folders is its own (%s); an administrator can hand it one (mkdir /sys/fs/cgroup/memory/jobfs-USER; chown -R USER it; start jobfs in it) or start it as a systemd service with Delegate=yes on cgroup v2", ErrNoCgroups, firstOf(why))
	}
	return base, nil
}

func firstOf(list []string) string {
	if len(list) == 0 {
		return "no controller found in /proc/self/cgroup"
	}
	return list[0]
}

// partial is a Cgroups that lacks some controllers (a delegated subtree):
// the limits those carry are not enforced.
type partial interface {
	missing() (controllers []string, why string)
}

// limitControllers maps each limit to the controllers (v1 and v2 names)
// that enforce it.
var limitControllers = []struct {
	name  string
	set   func(Limits) bool
	ctrls []string
}{
	{"cpu", func(l Limits) bool { return l.CPUPercent > 0 }, []string{"cpu"}},
	{"memory", func(l Limits) bool { return l.MemoryMiB > 0 }, []string{"memory"}},
	{"io", func(l Limits) bool { return l.IOBps > 0 }, []string{"io", "blkio"}},
	{"pids", func(l Limits) bool { return l.Pids > 0 }, []string{"pids"}},
}

// Unenforced names the limits of l that cg cannot enforce, and why; ""
// when it enforces every one that is set.
func Unenforced(cg Cgroups, l Limits) string {
	p, ok := cg.(partial)
	if !ok {
		return ""
	}
	miss, why := p.missing()
	var names []string
	for _, lc := range limitControllers {
		if !lc.set(l) {
			continue
		}
		for _, c := range lc.ctrls {
			if contains(miss, c) {
				names = append(names, lc.name)
				break
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	return strings.Join(names, ", ") + ": " + why
}
