package exec

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ProcessStart returns the start time of pid in clock ticks since boot
// (field 22 of /proc/<pid>/stat), or 0 when pid is gone.
func ProcessStart(pid int) uint64 {
	_, start, ok := procStat(pid)
	if !ok {
		return 0
	}
	return start
}

// procStat reads the process group and start time of pid.
func procStat(pid int) (pgid int, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); pgrp is field 5, starttime field 22.
	if len(f) < 20 {
		return 0, 0, false
	}
	pgid, _ = strconv.Atoi(f[2])
	start, _ = strconv.ParseUint(f[19], 10, 64)
	return pgid, start, true
}

// KillGroup SIGKILLs every process of group pgid, a group whose leader
// started at start (clock ticks). A group id is only reused once no process
// has it as pid or group, so: if a process with pid pgid lives and started at
// another time, the group is someone else's and is left alone; if the leader
// is gone, whoever is still in the group was in the step's. It returns how
// many processes it signalled.
func KillGroup(pgid int, start uint64) int {
	if pgid <= 1 {
		return 0
	}
	if _, leaderStart, ok := procStat(pgid); ok && leaderStart != start {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		g, _, ok := procStat(pid)
		if ok && g == pgid {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}
