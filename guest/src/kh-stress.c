// SPDX-License-Identifier: GPL-2.0
/*
 * kh-stress: concurrent use of everything the perf context core serves, bounded in
 * time and in operations, stopping by itself.
 *
 *   kh-stress [--hotplug] SECONDS [MAX_OPS]
 *
 * Threads (all in one process, so task events on the process's threads share one
 * task context per thread and the CPU events share the per-CPU contexts):
 *  - 3 openers: open task events (on themselves and on the main thread), CPU events
 *    on a random CPU, and groups (software leader + tracepoint and software
 *    siblings); with inherit, remove_on_exec + sigtrap, enable_on_exec at random;
 *    if the kernel has the test PMUs (CONFIG_PERF_EVENTS_TEST_PMUS), also software
 *    groups that a test_hw_a or test_hw_data sibling moves into its hardware PMU
 *    context (move_group, inherited at random: a read of such a group meets
 *    ECHILD while a child forked before the move lives), and a test_hw_b sibling
 *    that must fail with EINVAL; and groups of CPU events on test_uncore, which
 *    moves its events to another CPU with perf_pmu_migrate_context() when its CPU
 *    goes offline or a higher one comes online (so the hotplug thread migrates
 *    them twice a cycle; a sibling opened after its leader's CPU moved fails with
 *    EINVAL, as on C); then enable/disable/reset ioctls, read, mmap of
 *    the ring buffer, close;
 *  - a forker: fork children that exec themselves and exit (inherit, exec, exit
 *    paths), or exit at once;
 *  - a migrator: moves the openers between CPUs (sched_setaffinity);
 *  - with --hotplug (meant for the test guest, never a host), a hotplug thread:
 *    takes CPU 1 offline and online again through sysfs (CPU events of an offline
 *    CPU fail with ENODEV, as on C).
 *
 * Each failure of a system call is counted by errno; errnos that the calls can
 * return for reasons other than a bug (ENODEV for an offline CPU, EINVAL from
 * sched_setaffinity to an offline CPU, EBUSY/EAGAIN from hotplug, ...) are expected,
 * any other is "unexpected" and makes the exit status 1. Output: one
 * "KH-STRESS <kind> <ops> <failures>" line per kind and a last line
 * "KH-STRESS-TOTAL <ops> ops <unexpected> unexpected".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* tracepoint_id() and pmu_type(), shared with the perf_events selftests (-I of that folder). */
#include "tracepoint_id.h"
#include "pmu_type.h"

enum kind { K_OPEN, K_CTL, K_MMAP, K_FORK, K_MIGRATE, K_HOTPLUG, K_UNCORE, NR_KINDS };
static const char * const kind_name[NR_KINDS] = {
	"open", "ioctl+read", "mmap", "fork+exec", "migrate", "hotplug", "uncore",
};

static atomic_long ops[NR_KINDS], fails[NR_KINDS], unexpected;
static atomic_long total_ops;
static atomic_int stop;
static long max_ops;
static pid_t main_tid;
static atomic_int forker_tid;
static long tp_switch = -1;
static int hw_a = -1, hw_b = -1, hw_data = -1;	/* the test PMUs' types, if any */
static int uncore = -1;				/* test_uncore's type, if any */
static int ncpus;
static char self_exe[256];
static volatile sig_atomic_t traps;

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static void count(enum kind k)
{
	atomic_fetch_add(&ops[k], 1);
	if (atomic_fetch_add(&total_ops, 1) + 1 >= max_ops)
		atomic_store(&stop, 1);
}

/* A failed call: expected (allowed) or not. */
static void failed(enum kind k, const char *what, int err, int allowed)
{
	atomic_fetch_add(&fails[k], 1);
	if (!allowed && atomic_fetch_add(&unexpected, 1) < 20)
		fprintf(stderr, "unexpected: %s: %s\n", what, strerror(err));
}

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	return rand_r(seed) % n;
}

static void attr_sw(struct perf_event_attr *a, unsigned long long config, unsigned int *seed)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->type = PERF_TYPE_SOFTWARE;
	a->config = config;
	a->exclude_kernel = rnd(seed, 2);
	switch (rnd(seed, 4)) {
	case 0:
		a->inherit = 1;
		break;
	case 1:
		/* sigtrap needs remove_on_exec; a long period keeps signals rare. */
		a->remove_on_exec = 1;
		a->sigtrap = rnd(seed, 2);
		a->sample_period = a->sigtrap ? 50000000 : 0;
		break;
	case 2:
		a->disabled = 1;
		a->enable_on_exec = 1;
		a->inherit = 1;
		break;
	default:
		a->sample_period = 100000;
		a->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID;
		break;
	}
}

/* Drops attr_sw()'s per-task choices: for CPU events and group members. */
static void no_task_flags(struct perf_event_attr *a)
{
	a->inherit = a->remove_on_exec = a->sigtrap = a->enable_on_exec = 0;
	a->disabled = 0;
}

/* echild_ok: an inherited group that move_group changed under a forked child. */
static void use_event(int fd, int sampling, unsigned int *seed, int echild_ok)
{
	long page = 4096;
	unsigned long long v[4];
	void *p;

	if (ioctl(fd, PERF_EVENT_IOC_ENABLE, 0))
		failed(K_CTL, "enable", errno, 0);
	if (read(fd, v, sizeof(v)) < 0)
		failed(K_CTL, "read", errno, echild_ok && errno == ECHILD);
	if (ioctl(fd, PERF_EVENT_IOC_RESET, 0))
		failed(K_CTL, "reset", errno, 0);
	if (rnd(seed, 2) && ioctl(fd, PERF_EVENT_IOC_DISABLE, 0))
		failed(K_CTL, "disable", errno, 0);
	count(K_CTL);
	if (sampling) {
		p = mmap(NULL, 9 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			failed(K_MMAP, "mmap", errno, 0);
		} else {
			munmap(p, 9 * page);
		}
		count(K_MMAP);
	}
}

/*
 * Opens @a as a group leader on the calling thread (PERF_FORMAT_GROUP); a failure
 * is counted as an unexpected failed open and gives -1.
 */
static int open_leader(struct perf_event_attr *a, const char *what)
{
	int fd;

	a->read_format = PERF_FORMAT_GROUP;
	fd = perf_open(a, 0, -1, -1);
	if (fd < 0) {
		failed(K_OPEN, what, errno, 0);
		count(K_OPEN);
	}
	return fd;
}

static void *opener(void *arg)
{
	unsigned int seed = (unsigned int)(long)arg * 7919 + 17;
	struct perf_event_attr a;

	while (!atomic_load(&stop)) {
		int fds[4] = { -1, -1, -1, -1 }, n = 0, i, cpu = -1, inh;
		int echild_ok = 0, cross = 0, moved_ok = 0;
		pid_t pid = 0;

		switch (rnd(&seed, hw_a < 0 ? 4 : uncore < 0 ? 5 : 6)) {
		case 0: /* task event on this thread */
			attr_sw(&a, PERF_COUNT_SW_TASK_CLOCK, &seed);
			break;
		case 1: /* task event on another thread: the forker's (inherited by its
			 * children) or the main thread's */
			attr_sw(&a, PERF_COUNT_SW_CONTEXT_SWITCHES, &seed);
			a.sigtrap = 0;
			pid = rnd(&seed, 4) ? atomic_load(&forker_tid) : main_tid;
			break;
		case 2: /* CPU event */
			attr_sw(&a, PERF_COUNT_SW_CPU_CLOCK, &seed);
			no_task_flags(&a);
			pid = -1;
			cpu = rnd(&seed, ncpus);
			break;
		case 4: /* move_group into a test PMU's context */
			attr_sw(&a, PERF_COUNT_SW_TASK_CLOCK, &seed);
			inh = a.inherit;
			no_task_flags(&a);
			a.inherit = inh;
			a.sample_period = a.sample_type = 0;
			fds[n] = open_leader(&a, "move_group leader");
			if (fds[n] < 0)
				continue;
			n++;
			memset(&a, 0, sizeof(a));
			a.size = sizeof(a);
			a.type = rnd(&seed, 2) ? hw_a : hw_data;
			a.inherit = inh;
			a.read_format = PERF_FORMAT_GROUP;
			echild_ok = inh;
			cross = 1;
			break;
		case 5: /* group of CPU events on test_uncore, on whichever CPU serves it */
			memset(&a, 0, sizeof(a));
			a.size = sizeof(a);
			a.type = uncore;
			a.read_format = PERF_FORMAT_GROUP;
			pid = -1;
			cpu = rnd(&seed, ncpus);
			fds[n] = perf_open(&a, pid, cpu, -1);
			count(K_UNCORE);
			if (fds[n] < 0) {
				failed(K_UNCORE, "test_uncore leader", errno, errno == ENODEV);
				continue;
			}
			n++;
			/* The sibling: EINVAL if the leader's CPU moved meanwhile. */
			moved_ok = 1;
			break;
		default: /* group: software leader, tracepoint and software siblings */
			attr_sw(&a, PERF_COUNT_SW_CPU_CLOCK, &seed);
			no_task_flags(&a);
			fds[n] = open_leader(&a, "group leader");
			if (fds[n] < 0)
				continue;
			n++;
			if (tp_switch >= 0) {
				memset(&a, 0, sizeof(a));
				a.size = sizeof(a);
				a.type = PERF_TYPE_TRACEPOINT;
				a.config = tp_switch;
				a.read_format = PERF_FORMAT_GROUP;
			} else {
				attr_sw(&a, PERF_COUNT_SW_PAGE_FAULTS, &seed);
				no_task_flags(&a);
			}
			break;
		}
		fds[n] = perf_open(&a, pid, cpu, n ? fds[0] : -1);
		/* ENODEV: the CPU is offline; ESRCH: the forker thread ended at the stop. */
		if (fds[n] < 0)
			failed(K_OPEN, "perf_event_open", errno,
			       (cpu >= 0 && errno == ENODEV) ||
			       (moved_ok && errno == EINVAL) ||
			       (errno == ESRCH && atomic_load(&stop)));
		else
			n++;
		count(K_OPEN);
		if (cross && n == 2) {
			/* A second hardware PMU in the moved group: EINVAL. */
			struct perf_event_attr b = a;
			int bad;

			b.type = hw_b;
			bad = perf_open(&b, 0, -1, fds[0]);
			if (bad >= 0) {
				close(bad);
				failed(K_OPEN, "test_hw_b sibling of a hardware group opened", EEXIST, 0);
			} else {
				failed(K_OPEN, "test_hw_b sibling", errno, errno == EINVAL);
			}
			count(K_OPEN);
		}
		for (i = 0; i < n; i++)
			use_event(fds[i], i == 0 && a.sample_period && !a.inherit, &seed, echild_ok);
		for (i = n - 1; i >= 0; i--)
			close(fds[i]);
	}
	return NULL;
}

static void *forker(void *arg)
{
	unsigned int seed = 4242;

	(void)arg;
	atomic_store(&forker_tid, syscall(SYS_gettid));
	while (!atomic_load(&stop)) {
		int status, do_exec = rnd(&seed, 2);
		pid_t pid = fork();

		if (pid == 0) {
			if (do_exec)
				execl(self_exe, "kh-stress-child", NULL);
			_exit(0);
		}
		if (pid < 0) {
			failed(K_FORK, "fork", errno, errno == EAGAIN);
		} else if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
			   WEXITSTATUS(status)) {
			failed(K_FORK, "child", ECHILD, 0);
		}
		count(K_FORK);
	}
	return NULL;
}

static pthread_t openers[3];

static void *migrator(void *arg)
{
	unsigned int seed = 99;

	(void)arg;
	while (!atomic_load(&stop)) {
		cpu_set_t set;
		int i;

		CPU_ZERO(&set);
		CPU_SET(rnd(&seed, ncpus), &set);
		i = rnd(&seed, 3);
		/* EINVAL: the CPU is offline right now. */
		if (pthread_setaffinity_np(openers[i], sizeof(set), &set))
			failed(K_MIGRATE, "setaffinity", EINVAL, 1);
		count(K_MIGRATE);
		usleep(2000);
	}
	return NULL;
}

static int write_online(int on)
{
	int fd = open("/sys/devices/system/cpu/cpu1/online", O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

static void *hotplug(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int err = write_online(0);

		if (err)
			failed(K_HOTPLUG, "cpu1 offline", -err, -err == EBUSY || -err == EAGAIN);
		usleep(100000);
		err = write_online(1);
		if (err)
			failed(K_HOTPLUG, "cpu1 online", -err, -err == EBUSY || -err == EAGAIN);
		count(K_HOTPLUG);
		usleep(100000);
	}
	/* Leave the CPU online whatever happened. */
	write_online(1);
	return NULL;
}

static void on_trap(int sig)
{
	(void)sig;
	traps++;
}

int main(int argc, char **argv)
{
	pthread_t forker_t, migrator_t, hotplug_t;
	int seconds, i, can_hotplug;
	struct timespec t0, t1;
	long sum = 0;

	if (!strcmp(argv[0], "kh-stress-child"))
		return 0;
	can_hotplug = argc > 1 && !strcmp(argv[1], "--hotplug");
	if (can_hotplug) {
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: kh-stress [--hotplug] SECONDS [MAX_OPS]\n");
		return 2;
	}
	seconds = atoi(argv[1]);
	max_ops = argc > 2 ? atol(argv[2]) : 1000000000L;
	if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0)
		return 2;
	signal(SIGTRAP, on_trap);
	main_tid = syscall(SYS_gettid);
	ncpus = sysconf(_SC_NPROCESSORS_CONF);
	tp_switch = tracepoint_id("sched/sched_switch");
	hw_a = pmu_type("test_hw_a");
	hw_b = pmu_type("test_hw_b");
	hw_data = pmu_type("test_hw_data");
	uncore = pmu_type("test_uncore");
	if (hw_b < 0 || hw_data < 0)
		hw_a = -1;
	if (hw_a < 0)
		uncore = -1;
	if (can_hotplug && (ncpus < 2 ||
			    access("/sys/devices/system/cpu/cpu1/online", W_OK) != 0)) {
		fprintf(stderr, "--hotplug: /sys/devices/system/cpu/cpu1/online is not writable\n");
		return 2;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 3; i++)
		pthread_create(&openers[i], NULL, opener, (void *)(long)i);
	forker_tid = main_tid;
	pthread_create(&forker_t, NULL, forker, NULL);
	pthread_create(&migrator_t, NULL, migrator, NULL);
	if (can_hotplug)
		pthread_create(&hotplug_t, NULL, hotplug, NULL);
	while (!atomic_load(&stop)) {
		usleep(100000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= seconds)
			atomic_store(&stop, 1);
	}
	for (i = 0; i < 3; i++)
		pthread_join(openers[i], NULL);
	pthread_join(forker_t, NULL);
	pthread_join(migrator_t, NULL);
	if (can_hotplug)
		pthread_join(hotplug_t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	for (i = 0; i < NR_KINDS; i++) {
		printf("KH-STRESS %s %ld %ld\n", kind_name[i], atomic_load(&ops[i]),
		       atomic_load(&fails[i]));
		sum += atomic_load(&ops[i]);
	}
	printf("KH-STRESS-INFO %ld s, %d CPUs, hotplug %s, tracepoint %s, test PMUs %s, %d SIGTRAPs\n",
	       (long)(t1.tv_sec - t0.tv_sec), ncpus, can_hotplug ? "yes" : "no",
	       tp_switch >= 0 ? "yes" : "no", hw_a >= 0 ? "yes" : "no", (int)traps);
	printf("KH-STRESS-TOTAL %ld ops %ld unexpected\n", sum, atomic_load(&unexpected));
	return atomic_load(&unexpected) ? 1 : 0;
}
