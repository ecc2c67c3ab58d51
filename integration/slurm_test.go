package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobfs/jobfs/exec/slurm"
	"github.com/jobfs/jobfs/exec/slurm/slurmtest"
)

// slurmCluster starts a single-node Slurm for the test (or skips, saying
// why) and points the daemons the test starts at it (SLURM_CONF).
func slurmCluster(t *testing.T) (*slurmtest.Cluster, *slurm.Client) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	c := slurmtest.Start(t)
	old, had := os.LookupEnv("SLURM_CONF")
	if err := os.Setenv("SLURM_CONF", c.Conf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if had {
			_ = os.Setenv("SLURM_CONF", old) // restoring what was there
		} else {
			_ = os.Unsetenv("SLURM_CONF") // as it was
		}
	})
	return c, &slurm.Client{Env: c.Env()}
}

// slurmJob makes a script job that runs on Slurm with a small memory
// limit (many fit on the test node at once).
func slurmJob(t *testing.T, d *daemon, name, script string) {
	t.Helper()
	d.scriptJob(t, name, script)
	d.ok(t, `echo slurm > "mnt/$J/config/backend" && echo 200 > "mnt/$J/config/limits/memory"`, "J="+name)
}

// slurmID is the Slurm job id of a run's step (runs/N/slurm_job: "ID LABEL"
// lines), waiting for the step's submission.
func slurmID(t *testing.T, d *daemon, job string, run int, label string) string {
	t.Helper()
	var id string
	waitFor(t, fmt.Sprintf("%s run %d step %s in slurm_job", job, run, label), func() bool {
		out, err := os.ReadFile(filepath.Join(d.mnt, job, "runs", fmt.Sprint(run), "slurm_job"))
		if err != nil {
			return false
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) == 2 && (label == "" || f[1] == label) {
				id = f[0]
				return true
			}
		}
		return false
	})
	return id
}

// gateScript prints started, waits for a gate file in its output folder
// (which the test writes on the host: the step's /tmp is its own), and
// prints done.
const gateScript = "#!/bin/sh\necho started\nwhile [ ! -e \"$2/gate\" ]; do sleep 0.1; done\nrm -f \"$2/gate\"\necho done\n"

// openGate lets run 1 of job go on (gateScript).
func openGate(t *testing.T, d *daemon, job string) {
	t.Helper()
	short := strings.TrimSpace(d.cat(t, "mnt/"+job+"/shortname"))
	if err := os.WriteFile(filepath.Join(d.state, "jobs", short, "runs", "1", "output", "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSlurm runs the integration subset of issue 21 on the Slurm backend:
// chains with fan-out and fan-in, exit codes and error lines, wait,
// stream, result, masking, PENDING while queued, limits (memory -> out of
// memory, timeout), ctl stop and scancel from outside, a gres option, and
// slurmctld killed and restarted during a run.
func TestSlurm(t *testing.T) {
	cl, sc := slurmCluster(t)
	d := startDaemon(t, daemonOpts{args: []string{"--slurm"}, maxActive: 16})

	// Settings first: refused values, said in the log.
	d.ok(t, `mkdir mnt/cfg`)
	d.wantFile(t, "mnt/cfg/config/backend", "local\n")
	d.fails(t, `echo lsf > mnt/cfg/config/backend`, "Invalid argument")
	d.fails(t, `echo 'partition=a;reboot' > mnt/cfg/config/slurm`, "Invalid argument")
	d.fails(t, `echo 'mem=9G' > mnt/cfg/config/slurm`, "Invalid argument")
	if got := d.ok(t, `tail -n 1 mnt/cfg/log`); !strings.Contains(got, "config/slurm") || !strings.Contains(got, `unknown key "mem"`) {
		t.Errorf("after a bad config/slurm, tail -n 1 log = %q, want the reason", got)
	}

	t.Run("pending while queued", func(t *testing.T) {
		// A step that takes most of the node's memory, then one that cannot
		// fit beside it: PENDING until the first ends.
		slurmJob(t, d, "big", gateScript)
		d.ok(t, `echo 1900 > mnt/big/config/limits/memory`)
		slurmJob(t, d, "queued", "#!/bin/sh\necho ran\n")
		d.trigger(t, "big", "{}")
		d.waitStatus(t, "big", 1, "RUNNING")
		d.trigger(t, "queued", "{}")
		slurmID(t, d, "queued", 1, "")
		for range 3 { // three of the daemon's squeue polls at least
			time.Sleep(500 * time.Millisecond)
			d.wantFile(t, "mnt/queued/runs/1/status", "PENDING\n")
		}
		openGate(t, d, "big")
		if got := d.waitRun(t, "queued", 1); got != "COMPLETED" {
			t.Fatalf("queued ended %s; log:\n%s", got, d.cat(t, "mnt/queued/runs/1/log"))
		}
		d.wantFile(t, "mnt/big/runs/1/wait", "COMPLETED\n")
		wantLogEnds(t, d, "queued", "ran\n")
	})

	// The other cases run side by side: each starts its run, then checks.
	cases := []struct {
		name         string
		start, check func(t *testing.T)
	}{{
		name: "chain with fan-out and fan-in",
		start: func(t *testing.T) {
			image(t, d, "splitter", "#!/bin/sh\nfor i in 1 2 3; do echo \"part $i\" > \"$2/part$i.txt\"; done\necho split into 3\n")
			image(t, d, "page", "#!/bin/sh\ncat \"$1\"/* > \"$2/content.txt\"\necho \"$JOBFS_STEP on $SLURM_JOB_ID\"\n")
			image(t, d, "merger", "#!/bin/sh\ncd \"$1\" && cat */content.txt > \"$2/all.txt\"\necho merged\n")
			d.ok(t, `mkdir mnt/fan && echo slurm > mnt/fan/config/backend && echo 200 > mnt/fan/config/limits/memory && cat > mnt/fan/config/chains <<'EOF'
split <- splitter
page  <- page
merge <- merger
split -> .page -> merge
EOF`)
			d.trigger(t, "fan", "{}")
		},
		check: func(t *testing.T) {
			if got := d.waitRun(t, "fan", 1); got != "COMPLETED" {
				t.Fatalf("fan ended %s; log:\n%s", got, d.cat(t, "mnt/fan/runs/1/log"))
			}
			d.wantFile(t, "mnt/fan/runs/1/result", "part 1\npart 2\npart 3\n")
			d.wantFile(t, "mnt/fan/runs/1/exit_code", "0\n")
			ids := strings.Split(strings.TrimSpace(d.cat(t, "mnt/fan/runs/1/slurm_job")), "\n")
			if len(ids) != 5 {
				t.Errorf("slurm_job = %q, want 5 lines (split, page.1-3, merge)", ids)
			}
			runLog := d.cat(t, "mnt/fan/runs/1/log")
			for _, want := range []string{"[split] split into 3\n", "[merge] merged\n", "limits not enforced: pids (Slurm has no per-job process limit)"} {
				if !strings.Contains(runLog, want) {
					t.Errorf("runs/1/log lacks %q:\n%s", want, runLog)
				}
			}
			// The step ran inside its Slurm job (SLURM_JOB_ID is Slurm's, not
			// passed by jobfs: the step's env is jobfs's own).
			if log := d.cat(t, "mnt/fan/runs/1/steps/page.1/log"); !strings.HasPrefix(log, "page.1 on ") {
				t.Errorf("steps/page.1/log = %q", log)
			}
		},
	}, {
		name: "exit code and error",
		start: func(t *testing.T) {
			slurmJob(t, d, "fail", "#!/bin/sh\necho about to fail\nexit 7\n")
			d.trigger(t, "fail", "{}")
		},
		check: func(t *testing.T) {
			d.wantFile(t, "mnt/fail/runs/1/wait", "FAILED\n")
			d.wantFile(t, "mnt/fail/runs/1/exit_code", "7\n")
			if got := d.cat(t, "mnt/fail/runs/1/error"); !strings.Contains(got, "exited with code 7") {
				t.Errorf("error = %q, want ... exited with code 7", got)
			}
			if got := d.cat(t, "mnt/fail/runs/1/log"); !strings.Contains(got, "\nabout to fail\n") {
				t.Errorf("log = %q", got)
			}
		},
	}, {
		name: "stream of a live log, then result",
		start: func(t *testing.T) {
			slurmJob(t, d, "live", "#!/bin/sh\nfor i in 1 2 3 4 5; do echo line $i; sleep 0.3; done\necho '{\"ok\": true}' > \"$2/out.json\"\n")
			d.trigger(t, "live", "{}")
		},
		check: func(t *testing.T) {
			d.waitStatus(t, "live", 1, "RUNNING", "COMPLETED")
			if got := d.ok(t, `cat mnt/live/runs/1/stream`); !strings.HasSuffix(got, "line 1\nline 2\nline 3\nline 4\nline 5\n") {
				t.Errorf("stream = %q", got)
			}
			d.wantFile(t, "mnt/live/runs/1/wait", "COMPLETED\n")
			d.wantFile(t, "mnt/live/runs/1/result", "{\"ok\": true}\n")
		},
	}, {
		name: "secrets masked",
		start: func(t *testing.T) {
			slurmJob(t, d, "secret", "#!/bin/sh\necho \"token=$api_token\"\n")
			d.ok(t, `printf 'sl-7f3a9c2e1b4d8f60' > mnt/secret/config/env/api_token`)
			d.trigger(t, "secret", "{}")
		},
		check: func(t *testing.T) {
			d.wantFile(t, "mnt/secret/runs/1/wait", "COMPLETED\n")
			wantLogEnds(t, d, "secret", "token=***\n")
			if found := secFilesHolding(t, d.state, "sl-7f3a9c2e1b4d8f60"); len(found) > 0 {
				t.Errorf("files under state/ hold the value in clear (the spec must be gone): %v", found)
			}
		},
	}, {
		name: "out of memory",
		start: func(t *testing.T) {
			if slurmtest.SwapOn() && !cl.SwapLimited {
				t.Skip("swap on and not accounted per cgroup: a job over --mem pages out instead")
			}
			slurmJob(t, d, "oom", "#!/bin/sh\nhead -c 600M /dev/zero | tail > /dev/null\n")
			d.ok(t, `echo 100 > mnt/oom/config/limits/memory`)
			d.trigger(t, "oom", "{}")
		},
		check: func(t *testing.T) {
			if slurmtest.SwapOn() && !cl.SwapLimited {
				t.Skip("swap on and not accounted per cgroup")
			}
			d.wantFile(t, "mnt/oom/runs/1/wait", "FAILED\n")
			if got := d.cat(t, "mnt/oom/runs/1/error"); !strings.Contains(got, "out of memory (limit 100 MiB)") {
				t.Errorf("error = %q, want out of memory (limit 100 MiB)", got)
			}
		},
	}, {
		name: "timeout",
		start: func(t *testing.T) {
			slurmJob(t, d, "slow", "#!/bin/sh\necho sleeping\nsleep 120\n")
			d.ok(t, `echo 3s > mnt/slow/config/timeout`)
			d.trigger(t, "slow", "{}")
		},
		check: func(t *testing.T) {
			d.wantFile(t, "mnt/slow/runs/1/wait", "TIMEOUT\n")
			d.wantFile(t, "mnt/slow/runs/1/exit_code", "124\n")
		},
	}, {
		name: "ctl stop",
		start: func(t *testing.T) {
			slurmJob(t, d, "stopme", "#!/bin/sh\necho running\nsleep 120\n")
			d.trigger(t, "stopme", "{}")
		},
		check: func(t *testing.T) {
			d.waitStatus(t, "stopme", 1, "RUNNING")
			d.ok(t, `echo stop > mnt/stopme/runs/1/ctl`)
			d.wantFile(t, "mnt/stopme/runs/1/wait", "CANCELLED\n")
		},
	}, {
		name: "scancel from outside",
		start: func(t *testing.T) {
			slurmJob(t, d, "outside", "#!/bin/sh\necho running\nsleep 120\n")
			d.trigger(t, "outside", "{}")
		},
		check: func(t *testing.T) {
			d.waitStatus(t, "outside", 1, "RUNNING")
			id := slurmID(t, d, "outside", 1, "")
			if err := sc.Cancel(context.Background(), id, 0); err != nil {
				t.Fatal(err)
			}
			d.wantFile(t, "mnt/outside/runs/1/wait", "CANCELLED\n")
			if got := d.cat(t, "mnt/outside/runs/1/error"); !strings.Contains(got, "scancel outside jobfs") {
				t.Errorf("error = %q, want the scancel said", got)
			}
		},
	}, {
		name: "gres passed through",
		start: func(t *testing.T) {
			slurmJob(t, d, "gpu", "#!/bin/sh\necho on a gpu\n")
			d.ok(t, `echo "partition=$P gres=gpu:1" > mnt/gpu/config/slurm`, "P="+cl.Partition)
			d.trigger(t, "gpu", "{}")
		},
		check: func(t *testing.T) {
			d.wantFile(t, "mnt/gpu/runs/1/wait", "COMPLETED\n")
			id := slurmID(t, d, "gpu", 1, "")
			got, err := sc.Query(context.Background(), []string{id})
			if err != nil {
				t.Fatal(err)
			}
			if got[id].Gres != "gres:gpu:1" || got[id].Partition != cl.Partition {
				t.Errorf("Slurm's record of job %s: %+v, want gres:gpu:1 in partition %s", id, got[id], cl.Partition)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name+"/start", c.start)
	}
	t.Run("checks", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.check(t)
			})
		}
	})

	t.Run("slurmctld restarted during a run", func(t *testing.T) {
		slurmJob(t, d, "ctld", gateScript)
		d.trigger(t, "ctld", "{}")
		d.waitStatus(t, "ctld", 1, "RUNNING")
		id := slurmID(t, d, "ctld", 1, "")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cl.SaveJobState(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := cl.KillController(); err != nil {
			t.Fatal(err)
		}
		for range 3 { // the daemon's polls fail meanwhile: the run stays as it is
			time.Sleep(time.Second)
			d.wantFile(t, "mnt/ctld/runs/1/status", "RUNNING\n")
		}
		openGate(t, d, "ctld") // the step ends while slurmctld is down
		time.Sleep(time.Second)
		d.wantFile(t, "mnt/ctld/runs/1/status", "RUNNING\n")
		if err := cl.StartController(); err != nil {
			t.Fatal(err)
		}
		if got := d.waitRun(t, "ctld", 1); got != "COMPLETED" {
			t.Fatalf("ctld ended %s; log:\n%s\nslurmctld:\n%s", got, d.cat(t, "mnt/ctld/runs/1/log"), cl.LogTail("slurmctld"))
		}
		wantLogEnds(t, d, "ctld", "started\ndone\n")
	})
}

// TestSlurmDaemonRestart restarts the daemon while a step runs on Slurm
// and another waits in Slurm's queue: the new daemon re-attaches to both
// by the Slurm job ids in their run folders.
func TestSlurmDaemonRestart(t *testing.T) {
	_, _ = slurmCluster(t)
	d := startDaemon(t, daemonOpts{args: []string{"--slurm"}, outlive: true})
	slurmJob(t, d, "long", gateScript)
	d.ok(t, `echo 1900 > mnt/long/config/limits/memory`) // the queued step cannot fit beside it
	slurmJob(t, d, "queued", "#!/bin/sh\necho ran\n")
	d.trigger(t, "long", "{}")
	d.waitStatus(t, "long", 1, "RUNNING")
	// Slurm says RUNNING when the batch script starts: the step's first
	// line comes a moment later, and must be in the log before the new
	// daemon's re-attach line.
	waitFor(t, "long's first line", func() bool {
		b, err := os.ReadFile(filepath.Join(d.mnt, "long", "runs", "1", "log"))
		return err == nil && strings.Contains(string(b), "\nstarted\n")
	})
	id := slurmID(t, d, "long", 1, "")
	d.trigger(t, "queued", "{}")
	slurmID(t, d, "queued", 1, "")
	d.stop(t) // SIGTERM: the daemon leaves its runs to their shims and Slurm
	d.restart(t)
	d.wantFile(t, "mnt/long/runs/1/status", "RUNNING\n")
	d.wantFile(t, "mnt/queued/runs/1/status", "PENDING\n")
	openGate(t, d, "long")
	if got := d.waitRun(t, "long", 1); got != "COMPLETED" {
		t.Fatalf("long ended %s; log:\n%s", got, d.cat(t, "mnt/long/runs/1/log"))
	}
	if got := d.waitRun(t, "queued", 1); got != "COMPLETED" {
		t.Fatalf("queued ended %s; log:\n%s", got, d.cat(t, "mnt/queued/runs/1/log"))
	}
	wantLogEnds(t, d, "long", "started\njobfs: a new jobfs re-attached to this run: its steps ran on while jobfs was stopped\ndone\n")
	wantLogEnds(t, d, "queued", "ran\n")
	if got := d.cat(t, "mnt/long/runs/1/slurm_job"); !strings.HasPrefix(got, id+" ") || strings.Count(got, "\n") != 1 {
		t.Errorf("slurm_job = %q, want one line for job %s", got, id)
	}
}

// wantLogEnds checks run 1's log: the line that says what Slurm does not
// enforce (the step gets jobfs-init's isolation on the node), then exactly
// the step's output.
func wantLogEnds(t *testing.T, d *daemon, job, output string) {
	t.Helper()
	got := d.cat(t, "mnt/"+job+"/runs/1/log")
	if !strings.HasPrefix(got, "limits not enforced: pids") || !strings.HasSuffix(got, "\n"+output) {
		t.Errorf("%s: runs/1/log = %q, want the limits line first and the output %q last", job, got, output)
	}
}

// TestSlurmOwner runs two throwaway users' jobs on Slurm from a root
// daemon: each step's batch job is its owner's in Slurm's record (its
// accounting, fair share and associations see the user, not root); on the
// node the step starts from jobfs-init in a user namespace that maps only
// the owner, with the private root, /input /output /app and network none;
// its secret is masked and its output is the owner's. On disk each owner
// reaches its own run folder (traverse-only ACLs on jobs/ and its job's
// folder) and nothing of the other's.
func TestSlurmOwner(t *testing.T) {
	shareSkip(t)
	_, sc := slurmCluster(t)
	users, _ := shareUsers(t, 2, false)
	d := shareDaemon(t, "--slurm")
	script := `#!/bin/sh
echo "uid $(id -u) token $t"
echo "map $(tr -s ' ' < /proc/self/uid_map | sed 's/^ //')"
echo "host $(hostname) app $(ls /app) in $(ls /input) ifaces $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo out > "$2/out.txt"
`
	for _, u := range users {
		A := shareAs(u)
		A.job(t, d, "mine", script)
		A.ok(t, d, `echo slurm > mnt/mine/config/backend && echo 200 > mnt/mine/config/limits/memory && echo none > mnt/mine/config/network && printf 'own-9d1c7e52a0b4' > mnt/mine/config/env/t`)
		A.ok(t, d, `echo '{}' > mnt/mine/data`)
	}
	runDir := map[string]string{} // each user's run folder on disk
	for _, u := range users {
		A := shareAs(u)
		if got := A.ok(t, d, `cat mnt/mine/runs/1/wait`); got != "COMPLETED\n" {
			t.Fatalf("%s's run ended %q; log:\n%s", u.name, got, A.ok(t, d, `cat mnt/mine/runs/1/log`))
		}
		log := A.ok(t, d, `cat mnt/mine/runs/1/log`)
		t.Logf("%s's run log:\n%s", u.name, log)
		for _, want := range []string{
			"uid " + u.uid + " token ***\n",                    // the owner's uid, the secret masked
			"map " + u.uid + " " + u.uid + " 1\n",              // a user namespace mapping only the owner
			"host jobfs app script in input.json ifaces lo \n", // the init's namespaces, private root, network none
		} {
			if !strings.Contains(log, want) {
				t.Errorf("%s: log lacks %q:\n%s", u.name, want, log)
			}
		}
		if strings.Contains(log, "isolation not applied") || strings.Contains(log, "Slurm sees root") {
			t.Errorf("%s: log = %q, want the step isolated and submitted as its owner", u.name, log)
		}
		A.want(t, d, `stat -c %u mnt/mine/runs/1/result`, u.uid+"\n")
		id := strings.Fields(A.ok(t, d, `cat mnt/mine/runs/1/slurm_job`))[0]
		got, err := sc.Query(context.Background(), []string{id})
		if err != nil || got[id].State != slurm.Completed || got[id].User != u.name {
			t.Errorf("Slurm's record of %s's job %s: %+v, %v; want COMPLETED as %s", u.name, id, got[id], err, u.name)
		}
		short := strings.TrimSpace(A.ok(t, d, `cat mnt/mine/shortname`))
		runDir[u.name] = filepath.Join(d.state, "jobs", short, "runs", "1")
	}
	jobs := filepath.Join(d.state, "jobs")
	for i, u := range users {
		A, other := shareAs(u), users[1-i]
		// Its own run folder, through jobs/ and its job's folder, which it
		// may pass but not list.
		A.want(t, d, `cat "$R/output/out.txt"`, "out\n", "R="+runDir[u.name])
		A.fails(t, d, `ls "$J"`, "Permission denied", "J="+jobs)
		A.fails(t, d, `ls "$J"`, "Permission denied", "J="+filepath.Dir(filepath.Dir(runDir[u.name])))
		// Nothing of the other user's.
		A.fails(t, d, `cat "$R/log"`, "Permission denied", "R="+runDir[other.name])
		A.fails(t, d, `ls "$R/output"`, "Permission denied", "R="+runDir[other.name])
		// Its output folder is now reachable outside the step's private
		// root: the kernel's protected_hardlinks (the default) keeps a
		// file of root's (the store) from being linked in for the daemon
		// to read back as the result.
		if b, err := os.ReadFile("/proc/sys/fs/protected_hardlinks"); err == nil && strings.TrimSpace(string(b)) == "1" {
			A.fails(t, d, `ln "$S/jobfs.db" "$R/output/db"`, "Operation not permitted", "S="+d.state, "R="+runDir[u.name])
		}
	}
}

// TestSlurmCrashCancels kills a daemon that stops runs on exit
// (--stop-runs-on-exit, the harness's default) while a step runs on Slurm:
// the next start fails the run, as locally, and cancels its Slurm job,
// which nobody would follow.
func TestSlurmCrashCancels(t *testing.T) {
	_, sc := slurmCluster(t)
	d := startDaemon(t, daemonOpts{args: []string{"--slurm"}})
	slurmJob(t, d, "crash", gateScript)
	d.trigger(t, "crash", "{}")
	d.waitStatus(t, "crash", 1, "RUNNING")
	id := slurmID(t, d, "crash", 1, "")
	d.kill9(t)
	d.restart(t)
	d.wantFile(t, "mnt/crash/runs/1/status", "FAILED\n")
	var last slurm.Info
	waitFor(t, "Slurm job "+id+" cancelled", func() bool {
		got, err := sc.Query(context.Background(), []string{id})
		last = got[id]
		return err == nil && last.State.Terminal()
	})
	if last.State != slurm.Cancelled {
		t.Errorf("Slurm job %s ended %+v, want CANCELLED", id, last)
	}
}
