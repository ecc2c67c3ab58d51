package slurmtest

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// binaries are the programs the cluster and its clients need.
var binaries = []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol"}

// canRun says why Slurm cannot run here, as an *Unavailable, or nil.
func canRun() error {
	if os.Geteuid() != 0 {
		return &Unavailable{"needs root: slurmd starts jobs as their owners and slurmctld runs as SlurmUser=root here"}
	}
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			return &Unavailable{fmt.Sprintf("%s not found in PATH (install the Debian packages slurm-wlm and munge): %v", b, err)}
		}
	}
	if _, err := cgroupPlugin(); err != nil {
		return err
	}
	return nil
}

// cgroupPlugin picks Slurm's cgroup plugin by probing /sys/fs/cgroup: a pure
// v2 mount has cgroup.controllers at its top; v1 and hybrid machines have a
// freezer controller folder (proctrack/cgroup needs it on v1).
func cgroupPlugin() (string, error) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "cgroup/v2", nil
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer"); err == nil {
		return "cgroup/v1", nil
	}
	return "", &Unavailable{"no cgroup v2 mount and no v1 freezer controller at /sys/fs/cgroup (proctrack/cgroup needs one)"}
}

// writeConfig writes slurm.conf, cgroup.conf, gres.conf and a munge key into
// c.Dir and makes the folders the daemons use.
func (c *Cluster) writeConfig() error {
	// munged wants its socket's folder open to all (clients of every user
	// talk to it); the rest is root's.
	if err := os.Chmod(c.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(c.Dir, "run"), 0o755); err != nil {
		return err
	}
	for _, sub := range []string{"state", "spool", "log"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o700); err != nil {
			return err
		}
	}
	plugin, err := cgroupPlugin()
	if err != nil {
		return err
	}
	c.SwapLimited = swapAccounted(plugin)
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	key := make([]byte, 1024)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	files := map[string]string{
		"munge.key":   string(key),
		"slurm.conf":  c.slurmConf(ports[0], ports[1]),
		"cgroup.conf": cgroupConf(plugin, c.SwapLimited),
		"gres.conf":   fmt.Sprintf("NodeName=%s Name=gpu File=/dev/null\n", c.Node),
		// No SPANK plugins: the system's plugstack.conf is not ours to load.
		"plugstack.conf": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// slurmConf is the cluster's slurm.conf: one node with the machine's CPUs
// and 2 GiB of memory, accounting off, a scheduler that does not wait
// between submissions, jobs kept in slurmctld for 5 minutes after they end
// (squeue shows them; there is no sacct without slurmdbd).
func (c *Cluster) slurmConf(ctldPort, nodePort int) string {
	p := func(name string) string { return filepath.Join(c.Dir, name) }
	lines := []string{
		"ClusterName=jobfstest",
		"SlurmctldHost=localhost(127.0.0.1)",
		fmt.Sprintf("SlurmctldPort=%d", ctldPort),
		fmt.Sprintf("SlurmdPort=%d", nodePort),
		"SlurmUser=root",
		"SlurmdUser=root",
		"AuthType=auth/munge",
		"CredType=cred/munge",
		"AuthInfo=socket=" + p("run/munge.socket"),
		"StateSaveLocation=" + p("state"),
		"SlurmdSpoolDir=" + p("spool"),
		"SlurmctldPidFile=" + p("run/slurmctld.pid"),
		"SlurmdPidFile=" + p("run/slurmd.pid"),
		"SlurmctldLogFile=" + p("log/slurmctld.log"),
		"SlurmdLogFile=" + p("log/slurmd.log"),
		"PlugStackConfig=" + p("plugstack.conf"),
		"ProctrackType=proctrack/cgroup",
		"TaskPlugin=task/cgroup",
		"JobAcctGatherType=jobacct_gather/none",
		"SelectType=select/cons_tres",
		"SelectTypeParameters=CR_Core_Memory",
		"SchedulerParameters=batch_sched_delay=0",
		"DefMemPerCPU=100",
		"AccountingStorageType=accounting_storage/none",
		"JobCompType=jobcomp/none",
		"MpiDefault=none",
		"MinJobAge=300",
		"ReturnToService=2",
		"SlurmdParameters=config_overrides",
		"GresTypes=gpu",
		fmt.Sprintf("NodeName=%s NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=%d RealMemory=2048 Gres=gpu:1 State=UNKNOWN", c.Node, cpus()),
		fmt.Sprintf("PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4", c.Partition, c.Node),
	}
	return strings.Join(lines, "\n") + "\n"
}

// cgroupConf constrains cores and memory, so --mem ends OUT_OF_MEMORY; and
// swap to none where the kernel accounts it, so a job over --mem on a
// machine with swap ends too instead of paging for minutes.
func cgroupConf(plugin string, swap bool) string {
	conf := "CgroupPlugin=" + plugin + "\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=yes\nConstrainRAMSpace=yes\n"
	if swap {
		conf += "ConstrainSwapSpace=yes\nAllowedSwapSpace=0\n"
	}
	return conf
}

// swapAccounted says whether the kernel accounts swap per cgroup: v1's
// memory.memsw files (swapaccount=1), v2's memory.swap.max in any child of
// the root (the root itself has none).
func swapAccounted(plugin string) bool {
	if plugin == "cgroup/v1" {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		return err == nil
	}
	found, err := filepath.Glob("/sys/fs/cgroup/*/memory.swap.max")
	return err == nil && len(found) > 0
}

// SwapOn says whether the machine has any swap in use as a device or file
// (/proc/swaps lists more than its header).
func SwapOn() bool {
	b, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return false // no /proc/swaps: no swap support
	}
	return strings.Count(strings.TrimSpace(string(b)), "\n") > 0
}

// cpus is the machine's CPU count as slurmd sees it (sched affinity).
func cpus() int { return runtime.NumCPU() }

// freePorts finds n free TCP ports on loopback. The daemons bind them a
// moment later; another program could take one in between (then Launch
// fails and says which daemon did not start).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close() // the port is what we wanted, not the socket
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
