// SPDX-License-Identifier: GPL-2.0
/*
 * kh-bench WORKLOAD ITERATIONS: latency of perf_event_open()+close() and of
 * operations on an open event, as the median of per-batch averages.
 *
 *   open-task      a task event of this process (task context, epc alloc/free)
 *   open-cpu-local a per-CPU event on the CPU we run on (CPU context)
 *   open-cpu-remote a per-CPU event on another CPU (IPI to install/remove)
 *   open-group4    a group of 4 task events (one leader, three siblings)
 *   read           read() of an enabled task counter
 *   enable-disable PERF_EVENT_IOC_ENABLE + PERF_EVENT_IOC_DISABLE
 *   fork-inherit   fork() + _exit() + waitpid() of a child that inherits a task counter
 *                  (perf_event_init_task(), perf_event_exit_task(), the child's free)
 *   exec           fork() + execve() + waitpid(): the child inherits a disabled
 *                  enable_on_exec counter and a remove_on_exec counter, and its exec
 *                  (perf_event_exec()) enables the one and removes the other
 *   ctx-swap       a round trip over two pipes between this process and a child that
 *                  inherited its counter, on one CPU: two context switches between
 *                  tasks with equivalent (cloned) contexts, which
 *                  perf_event_context_sched_out() swaps instead of scheduling out and in
 *   multiplex      a busy loop of LOOP iterations (about 1 ms of guest time under
 *                  icount) while 8 counters of the test PMU test_hw_a (4 counters per
 *                  CPU) are open on this task: perf_mux_hrtimer rotates them
 *
 * A workload named floor:<workload> is the same operation without any event (the
 * fork, exec, round trip or loop alone).
 *
 *   mem            ITERATIONS children blocked on a pipe; the growth of the kernel's
 *                  slab memory (/proc/meminfo Slab) when one task counter is opened on
 *                  each (a context, an epc, the event and its file per child), printed
 *                  as "KH-BENCH mem-task-event <bytes per event>"
 *
 * Prints "KH-BENCH <workload> <ns/op>". Pinned to CPU 0 (children inherit that).
 *
 * With KH_BENCH_MARK set, a sched_get_priority_min() just before the first and just
 * after the last operation marks them in QEMU's execution log (make crossings,
 * harness/kh/crossings.py).
 */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 50
#define LOOP 250000
#define MUX_EVENTS 8

static int perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group);

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* fork(); the child runs @child (which must not return) and the parent waits for it. */
static void fork_wait(void (*child)(void))
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0)
		child();
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "child exited with status 0x%x\n", status);
		exit(1);
	}
}

static void child_exit(void)
{
	_exit(0);
}

static char *self_exe;

static void child_exec(void)
{
	char *argv[] = { "kh-bench", "exit", NULL };

	execv(self_exe, argv);
	perror("execv");
	_exit(1);
}

static void busy_loop(void)
{
	volatile long n;

	for (n = 0; n < LOOP; n++)
		;
}

/* The type of a PMU from sysfs. */
static int pmu_type(const char *name)
{
	char path[256];
	FILE *f;
	int type;

	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/type", name);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &type) != 1)
		die(path);
	fclose(f);
	return type;
}

/* The Slab line of /proc/meminfo, in kB. */
static long slab_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		die("/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Slab: %ld kB", &kb) == 1)
			break;
	fclose(f);
	if (kb < 0) {
		fprintf(stderr, "no Slab line in /proc/meminfo\n");
		exit(1);
	}
	return kb;
}

/*
 * @n children blocked on a pipe, one task counter opened on each: the slab growth per
 * counter. Everything is closed and reaped before it returns.
 */
static int mem_per_task_event(struct perf_event_attr *attr, long n)
{
	int gate[2], status;
	pid_t *kids = calloc(n, sizeof(*kids));
	int *fds = calloc(n, sizeof(*fds));
	long i, before, after;
	char c;

	if (!kids || !fds || pipe(gate))
		die("mem setup");
	for (i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			die("fork");
		if (kids[i] == 0) {
			close(gate[1]);
			/* Blocks until the parent closes its end. */
			_exit(read(gate[0], &c, 1) != 0);
		}
	}
	/* Let the children settle (their first allocations after fork). */
	sleep(1);
	before = slab_kb();
	for (i = 0; i < n; i++)
		fds[i] = perf_open(attr, kids[i], -1, -1);
	after = slab_kb();
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(gate[1]);
	for (i = 0; i < n; i++)
		if (waitpid(kids[i], &status, 0) != kids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("a mem child");
	printf("KH-BENCH mem-task-event %.1f\n", (after - before) * 1024.0 / n);
	return 0;
}

static void xwrite(int fd)
{
	char c = 0;

	if (write(fd, &c, 1) != 1)
		die("write");
}

static void xread(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		die("read");
}

static int perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	int fd = syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0) {
		perror("perf_event_open");
		exit(1);
	}
	return fd;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct perf_event_attr attr;
	const char *w = argc > 1 ? argv[1] : "";
	long iters = argc > 2 ? atol(argv[2]) : 1000;
	long batches = iters / BATCH, b, i;
	int ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double *avg;
	uint64_t val;
	cpu_set_t set;
	int fd = -1, mark = getenv("KH_BENCH_MARK") != NULL, floor = 0;
	int ping[2], pong[2], k, mux[MUX_EVENTS];
	pid_t partner = -1;
	const char *name = w;

	/* The program the exec workload's child runs. */
	if (!strcmp(w, "exit"))
		return 0;
	if (!strncmp(w, "floor:", 6)) {
		floor = 1;
		w += 6;
		if (strcmp(w, "fork-inherit") && strcmp(w, "exec") && strcmp(w, "ctx-swap") &&
		    strcmp(w, "multiplex")) {
			fprintf(stderr, "no floor for workload '%s'\n", w);
			return 2;
		}
	}
	self_exe = realpath("/proc/self/exe", NULL);
	if (!self_exe)
		die("realpath /proc/self/exe");
	if (batches < 1)
		batches = 1;
	avg = calloc(batches, sizeof(*avg));
	if (!avg) {
		perror("calloc");
		return 1;
	}
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return 1;
	}

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;

	if (!strcmp(w, "read") || !strcmp(w, "enable-disable"))
		fd = perf_open(&attr, 0, -1, -1);
	if (!floor && (!strcmp(w, "fork-inherit") || !strcmp(w, "ctx-swap"))) {
		attr.inherit = 1;
		perf_open(&attr, 0, -1, -1);
		attr.inherit = 0;
	}
	if (!floor && !strcmp(w, "exec")) {
		attr.inherit = 1;
		attr.disabled = 1;
		attr.enable_on_exec = 1;
		perf_open(&attr, 0, -1, -1);
		attr.disabled = 0;
		attr.enable_on_exec = 0;
		attr.remove_on_exec = 1;
		perf_open(&attr, 0, -1, -1);
		attr.remove_on_exec = 0;
		attr.inherit = 0;
	}
	if (!floor && !strcmp(w, "multiplex")) {
		struct perf_event_attr hw;

		memset(&hw, 0, sizeof(hw));
		hw.size = sizeof(hw);
		hw.type = pmu_type("test_hw_a");
		hw.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
		for (k = 0; k < MUX_EVENTS; k++)
			mux[k] = perf_open(&hw, 0, -1, -1);
	}
	if (!strcmp(w, "ctx-swap")) {
		if (pipe(ping) || pipe(pong))
			die("pipe");
		partner = fork();
		if (partner < 0)
			die("fork");
		if (partner == 0) {
			/* Answer every ping until the parent closes its end. */
			char c;

			close(ping[1]);
			close(pong[0]);
			while (read(ping[0], &c, 1) == 1)
				xwrite(pong[1]);
			_exit(0);
		}
		close(ping[0]);
		close(pong[1]);
	}
	if (!strcmp(w, "mem"))
		return mem_per_task_event(&attr, iters);
	if (!strcmp(w, "open-cpu-remote") && ncpu < 2) {
		fprintf(stderr, "open-cpu-remote needs 2 CPUs\n");
		return 1;
	}

	if (mark)
		syscall(__NR_sched_get_priority_min, SCHED_OTHER);
	for (b = 0; b < batches; b++) {
		uint64_t t0 = now_ns();

		for (i = 0; i < BATCH; i++) {
			if (!strcmp(w, "open-task")) {
				close(perf_open(&attr, 0, -1, -1));
			} else if (!strcmp(w, "open-cpu-local")) {
				close(perf_open(&attr, -1, 0, -1));
			} else if (!strcmp(w, "open-cpu-remote")) {
				close(perf_open(&attr, -1, 1, -1));
			} else if (!strcmp(w, "open-group4")) {
				int g[4], k;

				g[0] = perf_open(&attr, 0, -1, -1);
				for (k = 1; k < 4; k++)
					g[k] = perf_open(&attr, 0, -1, g[0]);
				for (k = 3; k >= 0; k--)
					close(g[k]);
			} else if (!strcmp(w, "read")) {
				if (read(fd, &val, sizeof(val)) != sizeof(val)) {
					perror("read");
					return 1;
				}
			} else if (!strcmp(w, "enable-disable")) {
				if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) {
					perror("PERF_EVENT_IOC_ENABLE");
					return 1;
				}
				if (ioctl(fd, PERF_EVENT_IOC_DISABLE, 0)) {
					perror("PERF_EVENT_IOC_DISABLE");
					return 1;
				}
			} else if (!strcmp(w, "fork-inherit")) {
				fork_wait(child_exit);
			} else if (!strcmp(w, "exec")) {
				fork_wait(child_exec);
			} else if (!strcmp(w, "ctx-swap")) {
				xwrite(ping[1]);
				xread(pong[0]);
			} else if (!strcmp(w, "multiplex")) {
				busy_loop();
			} else {
				fprintf(stderr, "unknown workload '%s'\n", w);
				return 2;
			}
		}
		avg[b] = (double)(now_ns() - t0) / BATCH;
	}
	if (mark)
		syscall(__NR_sched_get_priority_min, SCHED_OTHER);
	if (!floor && !strcmp(w, "multiplex")) {
		/* Every counter ran, and not all the time: they were rotated. */
		uint64_t v[3];
		int rotated = 0;

		for (k = 0; k < MUX_EVENTS; k++) {
			if (read(mux[k], v, sizeof(v)) != sizeof(v))
				die("read test_hw_a");
			if (!v[2]) {
				fprintf(stderr, "multiplex: counter %d never ran\n", k);
				return 1;
			}
			rotated |= v[2] < v[1];
		}
		if (!rotated) {
			fprintf(stderr, "multiplex: every counter ran all the time: no rotation\n");
			return 1;
		}
	}
	if (partner > 0) {
		int status;

		close(ping[1]);
		if (waitpid(partner, &status, 0) != partner || !WIFEXITED(status) ||
		    WEXITSTATUS(status))
			die("the ctx-swap partner");
	}
	qsort(avg, batches, sizeof(*avg), cmp);
	printf("KH-BENCH %s %.1f\n", name, avg[batches / 2]);
	return 0;
}
