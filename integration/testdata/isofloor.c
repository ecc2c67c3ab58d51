// isofloor: the kernel's part of one isolated jobfs run, with no program of
// jobfs in it. BenchmarkCmpFloor builds it with cc and runs it beside
// task-spooler to measure the floor under jobfs's trigger and throughput:
// what the guarantees alone cost, whatever program does them.
//
// A run here is what a jobfs run must do at the least, as system calls:
//   - the run recorded durably before the trigger returns: a commit as
//     bbolt makes one (data page, fdatasync, meta page, fdatasync);
//   - a fresh cgroup for the step in every controller jobfs uses, limits
//     written (memory, pids, cpu), the step's init moved in before any
//     step code runs;
//   - fresh pid, ipc, uts and mount namespaces, the step's root built as
//     jobfs-init builds it (tmpfs, the host's system folders bound
//     read-only, /input /output /app, /dev's harmless devices, private
//     /tmp and /dev/shm, a /proc of its own with the machine-wide parts
//     read-only or hidden), pivot_root, the host's root detached;
//   - the step (/bin/true) forked and exec'd by the init, reaped;
//   - the step's code told by the init and the verdict committed durably;
//     then, off the run's clock (as in jobfs, whose init tells its shim the
//     code before it exits), the init's exit and the cgroup's removal.
// No Go runtime, no shim, no FUSE, no daemon.
//
// usage: isofloor STATE CGROUPS WORKERS RUNS [prepared|noroot|commits]
//   STATE    a folder on the disk of jobfs's state (its files are removed)
//   CGROUPS  "v1:/sys/fs/cgroup" or "v2:/sys/fs/cgroup/unified" or "none"
//   WORKERS  processes making runs side by side
//   RUNS     runs per worker
//   prepared the cgroup and namespaces (and root) are made before the run's
//            clock starts, as a perfect pool would have them: the timed
//            part is the commits, the limits, the step's fork/exec/reap
//   noroot   no root is built (the namespaces and cgroups only): what is
//            left if a root cost nothing
//   commits  the two durable commits alone (no cgroup, sandbox or step):
//            what recording the run and its verdict costs
// Prints "runs N secs S cpu_ms_per_run C p50_ms P p99_ms Q".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *controllers[] = {"cpu", "cpuacct", "memory", "pids", "blkio", "freezer"};
#define NCTRL 6
static const char *hostDirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"};
static const char *devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *procRO[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};
static const char *procHidden[] = {"kcore", "keys", "timer_list", "kallsyms"};

static int cgVersion; // 0 none, 1, 2
static const char *cgRoot;
static const char *state;
static int noRoot;
static int commitsOnly;

static void die(const char *what) {
	fprintf(stderr, "isofloor: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

// commit writes a page and syncs, then a meta page and syncs: bbolt's commit.
static void commit(int fd, long n) {
	static char page[4096];
	memset(page, (int)n, sizeof page);
	if (pwrite(fd, page, sizeof page, 4096 * (2 + n % 64)) < 0 || fdatasync(fd) < 0) die("commit data");
	if (pwrite(fd, page, sizeof page, 4096 * (n % 2)) < 0 || fdatasync(fd) < 0) die("commit meta");
}

static void writeFile(const char *path, const char *s) {
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) die(path);
	if (write(fd, s, strlen(s)) < 0) die(path);
	close(fd);
}

// cgPaths fills the step cgroup's folders (one per v1 controller, one for v2).
static int cgPaths(char paths[NCTRL][256], int w, long i) {
	if (cgVersion == 1) {
		for (int c = 0; c < NCTRL; c++)
			snprintf(paths[c], 256, "%s/%s/jobfs-floor/%d-%ld", cgRoot, controllers[c], w, i);
		return NCTRL;
	}
	if (cgVersion == 2) {
		snprintf(paths[0], 256, "%s/jobfs-floor/%d-%ld", cgRoot, w, i);
		return 1;
	}
	return 0;
}

static void cgMake(char paths[NCTRL][256], int n) {
	for (int c = 0; c < n; c++)
		if (mkdir(paths[c], 0755) < 0) die(paths[c]);
}

// cgLimit writes the limits a job's config/limits give, as jobfs does.
static void cgLimit(char paths[NCTRL][256], int n) {
	char p[320];
	for (int c = 0; c < n; c++) {
		if (cgVersion == 2) {
			snprintf(p, sizeof p, "%s/memory.max", paths[c]), writeFile(p, "1073741824");
			snprintf(p, sizeof p, "%s/pids.max", paths[c]), writeFile(p, "1000");
			snprintf(p, sizeof p, "%s/cpu.max", paths[c]), writeFile(p, "100000 100000");
		} else if (!strcmp(controllers[c], "memory")) {
			snprintf(p, sizeof p, "%s/memory.limit_in_bytes", paths[c]), writeFile(p, "1073741824");
		} else if (!strcmp(controllers[c], "pids")) {
			snprintf(p, sizeof p, "%s/pids.max", paths[c]), writeFile(p, "1000");
		} else if (!strcmp(controllers[c], "cpu")) {
			snprintf(p, sizeof p, "%s/cpu.cfs_quota_us", paths[c]), writeFile(p, "100000");
		}
	}
}

// cgJoin moves the calling process into its cgroup, as jobfs-init does: "0"
// to v1's tasks files (a single-threaded process: the kernel then skips
// the global lock a move of another process takes), cgroup.procs for v2.
static void cgJoin(char paths[NCTRL][256], int n) {
	char p[320];
	const char *s = "0";
	for (int c = 0; c < n; c++) {
		snprintf(p, sizeof p, "%s/%s", paths[c], cgVersion == 2 ? "cgroup.procs" : "tasks");
		writeFile(p, s);
	}
}

static void cgRemove(char paths[NCTRL][256], int n) {
	for (int c = 0; c < n; c++)
		while (rmdir(paths[c]) < 0) {
			if (errno != EBUSY) die(paths[c]);
			usleep(100);
		}
}

static void mkfile(const char *p) {
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) die(p);
	close(fd);
}

static void bindRO(const char *src, const char *dst, int ro, int dir) {
	if (dir) {
		if (mkdir(dst, 0755) < 0 && errno != EEXIST) die(dst);
	} else mkfile(dst);
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) die(src);
	if (ro && mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL) < 0) die(dst);
}

// buildRoot is jobfs-init's buildRoot and pivot, in the init's namespaces.
static void buildRoot(const char *in, const char *out, const char *app) {
	char p[512], q[512];
	struct stat st;
	if (mount("", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("private");
	// The run's folders may live below /tmp, where the root is built: held
	// open first and bound by descriptor, as jobfs-init does.
	const char *srcs[3] = {in, out, app};
	char held[3][64];
	for (int i = 0; i < 3; i++) {
		int fd = open(srcs[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) die(srcs[i]);
		snprintf(held[i], sizeof held[i], "/proc/self/fd/%d", fd);
	}
	const char *root = "/tmp";
	if (mount("jobfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) die("tmpfs root");
	for (unsigned i = 0; i < sizeof hostDirs / sizeof *hostDirs; i++) {
		if (lstat(hostDirs[i], &st) < 0) continue;
		snprintf(p, sizeof p, "%s%s", root, hostDirs[i]);
		if (S_ISLNK(st.st_mode)) {
			ssize_t k = readlink(hostDirs[i], q, sizeof q - 1);
			if (k < 0) die("readlink");
			q[k] = 0;
			if (symlink(q, p) < 0) die("symlink");
			continue;
		}
		bindRO(hostDirs[i], p, 1, 1);
	}
	snprintf(p, sizeof p, "%s/input", root), bindRO(held[0], p, 1, 1);
	snprintf(p, sizeof p, "%s/output", root), bindRO(held[1], p, 0, 1);
	snprintf(p, sizeof p, "%s/app", root), bindRO(held[2], p, 1, 1);
	snprintf(p, sizeof p, "%s/dev", root);
	if (mkdir(p, 0755) < 0) die(p);
	for (unsigned i = 0; i < sizeof devices / sizeof *devices; i++) {
		snprintf(q, sizeof q, "/dev/%s", devices[i]);
		snprintf(p, sizeof p, "%s/dev/%s", root, devices[i]);
		bindRO(q, p, 0, 0);
	}
	const char *links[][2] = {{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s/dev/%s", root, links[i][0]);
		if (symlink(links[i][1], p) < 0) die("dev link");
	}
	const char *tmps[] = {"/tmp", "/dev/shm"};
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s%s", root, tmps[i]);
		if (mkdir(p, 01777) < 0) die(p);
		if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0) die("tmpfs");
	}
	snprintf(p, sizeof p, "%s/proc", root);
	if (mkdir(p, 0555) < 0) die(p);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) die("proc");
	for (unsigned i = 0; i < sizeof procRO / sizeof *procRO; i++) {
		snprintf(p, sizeof p, "%s/proc/%s", root, procRO[i]);
		if (lstat(p, &st) < 0) continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) die(p);
		if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) die(p);
	}
	for (unsigned i = 0; i < sizeof procHidden / sizeof *procHidden; i++) {
		snprintf(p, sizeof p, "%s/proc/%s", root, procHidden[i]);
		if (lstat(p, &st) < 0) continue;
		if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) die(p);
	}
	if (chdir(root) < 0) die("chdir");
	if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0) die("detach");
	(void)mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
	if (chdir("/") < 0) die("chdir /");
}

// init is the step's init: pid 1 of its namespaces. It waits for go (its
// cgroup joined, or in prepared mode the run's start), builds its root
// unless built, forks and execs the step, reaps it, writes its code to done
// and exits with it. The verdict needs the step's code, not the init's end:
// the namespaces' teardown at its exit (its mounts unmounted) is off the
// run's clock, as jobfs-init tells its shim the code before it exits.
static int init(int go, int done, int built, const char *in, const char *out, const char *app) {
	char c;
	if (!built) {
		if (read(go, &c, 1) != 1) _exit(3);
		if (!noRoot) buildRoot(in, out, app);
	} else {
		buildRoot(in, out, app);
		if (read(go, &c, 1) != 1) _exit(3);
	}
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0) die("wait step");
	unsigned char code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	if (write(done, &code, 1) != 1) _exit(3);
	_exit(code);
}

// startInit clones the init into fresh namespaces; it joins its cgroup
// first thing.
static pid_t startInit(int *goW, int *doneR, int prepared, char paths[NCTRL][256], int n, const char *in, const char *out, const char *app) {
	int go[2], done[2];
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0) die("pipe");
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0) die("clone");
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		cgJoin(paths, n);
		_exit(init(go[0], done[1], prepared, in, out, app));
	}
	close(go[0]);
	close(done[1]);
	*goW = go[1];
	*doneR = done[0];
	return pid;
}

static int cmpd(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

// worker makes runs runs, writing each one's seconds to lat.
static void worker(int w, long runs, int prepared, double *lat) {
	char file[512], in[512], out[512], app[512];
	snprintf(file, sizeof file, "%s/state-%d.db", state, w);
	snprintf(in, sizeof in, "%s/in-%d", state, w);
	snprintf(out, sizeof out, "%s/out-%d", state, w);
	snprintf(app, sizeof app, "%s/app-%d", state, w);
	for (char *d[] = {in, out, app}, **p = d; p < d + 3; p++)
		if (mkdir(*p, 0755) < 0 && errno != EEXIST) die(*p);
	int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) die(file);
	static char page[4096];
	for (int k = 0; k < 66; k++)
		if (pwrite(fd, page, sizeof page, 4096 * k) < 0) die("state");
	if (fsync(fd) < 0) die("fsync");
	char paths[NCTRL][256];
	int goW = -1, doneR = -1;
	pid_t pid = 0;
	int n = 0;
	if (prepared) { // the first run's sandbox is made ahead
		n = cgPaths(paths, w, 0);
		cgMake(paths, n);
		pid = startInit(&goW, &doneR, 1, paths, n, in, out, app);
	}
	for (long i = 0; commitsOnly && i < runs; i++) {
		double t0 = now();
		commit(fd, 2 * i);
		commit(fd, 2 * i + 1);
		lat[i] = now() - t0;
	}
	for (long i = 0; !commitsOnly && i < runs; i++) {
		double t0 = now();
		commit(fd, 2 * i); // the run queued, durably
		if (!prepared) {
			n = cgPaths(paths, w, i);
			cgMake(paths, n);
			cgLimit(paths, n);
			pid = startInit(&goW, &doneR, 0, paths, n, in, out, app);
		} else {
			cgLimit(paths, n);
		}
		if (write(goW, "g", 1) != 1) die("go");
		close(goW);
		unsigned char code;
		ssize_t got = read(doneR, &code, 1);
		if (got != 1 || code != 0) {
			if (got == 1) fprintf(stderr, "isofloor: the step ended with code %d\n", code);
			else fprintf(stderr, "isofloor: the step's init ended without telling the step's code\n");
			close(doneR);
			waitpid(pid, NULL, 0);
			cgRemove(paths, n);
			exit(2);
		}
		commit(fd, 2 * i + 1); // the verdict, durably
		lat[i] = now() - t0;
		// The init's end and its cgroup's removal, off the clock.
		close(doneR);
		int st;
		if (waitpid(pid, &st, 0) < 0) die("wait init");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "isofloor: the step's init ended %#x\n", st);
			exit(2);
		}
		cgRemove(paths, n);
		if (prepared) { // the next run's sandbox, off the clock
			n = cgPaths(paths, w, i + 1);
			cgMake(paths, n);
			pid = startInit(&goW, &doneR, 1, paths, n, in, out, app);
		}
	}
	if (prepared) { // the unused last sandbox
		close(goW);
		close(doneR);
		waitpid(pid, NULL, 0);
		cgRemove(paths, n);
	}
	close(fd);
	unlink(file);
	rmdir(in), rmdir(out), rmdir(app);
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: isofloor STATE CGROUPS WORKERS RUNS [prepared|noroot|commits]\n");
		return 2;
	}
	state = argv[1];
	if (!strncmp(argv[2], "v1:", 3)) cgVersion = 1, cgRoot = argv[2] + 3;
	else if (!strncmp(argv[2], "v2:", 3)) cgVersion = 2, cgRoot = argv[2] + 3;
	int workers = atoi(argv[3]);
	long runs = atol(argv[4]);
	int prepared = argc > 5 && !strcmp(argv[5], "prepared");
	noRoot = argc > 5 && !strcmp(argv[5], "noroot");
	commitsOnly = argc > 5 && !strcmp(argv[5], "commits");
	char p[512];
	for (int c = 0; cgVersion && c < (cgVersion == 1 ? NCTRL : 1); c++) {
		if (cgVersion == 1) snprintf(p, sizeof p, "%s/%s/jobfs-floor", cgRoot, controllers[c]);
		else snprintf(p, sizeof p, "%s/jobfs-floor", cgRoot);
		if (mkdir(p, 0755) < 0 && errno != EEXIST) die(p);
	}
	if (cgVersion == 2) {
		snprintf(p, sizeof p, "%s/jobfs-floor/cgroup.subtree_control", cgRoot);
		writeFile(p, "+memory +pids +cpu");
	}
	double *lat = mmap(NULL, sizeof(double) * workers * runs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lat == MAP_FAILED) die("mmap");
	double t0 = now();
	for (int w = 0; w < workers; w++) {
		pid_t pid = fork();
		if (pid < 0) die("fork");
		if (pid == 0) {
			worker(w, runs, prepared, lat + w * runs);
			_exit(0);
		}
	}
	int failed = 0, st;
	for (int w = 0; w < workers; w++) {
		if (wait(&st) < 0) die("wait");
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	double secs = now() - t0;
	for (int c = 0; cgVersion && c < (cgVersion == 1 ? NCTRL : 1); c++) {
		if (cgVersion == 1) snprintf(p, sizeof p, "%s/%s/jobfs-floor", cgRoot, controllers[c]);
		else snprintf(p, sizeof p, "%s/jobfs-floor", cgRoot);
		(void)rmdir(p); // the bench removes what a failed worker left
	}
	if (failed) return 2;
	struct rusage ru;
	if (getrusage(RUSAGE_CHILDREN, &ru) < 0) die("getrusage");
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	long total = workers * runs;
	qsort(lat, total, sizeof *lat, cmpd);
	printf("runs %ld secs %.4f cpu_ms_per_run %.4f p50_ms %.4f p99_ms %.4f\n", total, secs, cpu * 1e3 / total,
	       lat[total / 2] * 1e3, lat[(total * 99) / 100] * 1e3);
	return 0;
}
