// SPDX-License-Identifier: GPL-2.0
/*
 * Every allocation of perf_event_open(), of fork() with inherited events and
 * of mmap() of the ring buffer made to fail, one at a time: with
 * /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION + CONFIG_FAILSLAB),
 * the N-th slab allocation of the next system call fails, for N = 1, 2, ...
 * until the call no longer reaches an N-th allocation. Each call must then
 * either succeed (the allocation was optional) or fail with ENOMEM, and the
 * kernel must neither splat nor leak (the harness scans kmemleak after the
 * run).
 *
 * The fork case covers the inherit error paths: perf_event_init_task()
 * failing to allocate the child's context, an event, or the event's PMU
 * context -- inherit_event() then frees the half-made child event and fails
 * the fork (e2d371484653, 0ba3a4ab76fd: inherit when the PMU context cannot
 * be obtained). The parent has events of three PMUs (software, tracepoint,
 * breakpoint) so the child gets three PMU contexts, and a failure can hit
 * between any two of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "tracepoint_id.h"

#define FAILSLAB	"/sys/kernel/debug/failslab/"
#define MAX_NTH		2000

static int fail_nth_fd = -1;
static int bp_target;

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

static void read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
}

/* Arms the n-th allocation of this thread's next calls to fail. */
static void arm(int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	if (pwrite(fail_nth_fd, buf, len, 0) != len)
		abort();
}

/* True if the armed failure was injected; disarms it either way. */
static int injected(void)
{
	char buf[16] = "";
	int fired;

	if (pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) <= 0)
		abort();
	fired = atoi(buf) == 0;
	if (pwrite(fail_nth_fd, "0", 1, 0) != 1)
		abort();
	return fired;
}

struct outcome {
	int calls, failed, succeeded_anyway, bad;
};

/* One call with its n-th allocation failed: it must succeed or return ENOMEM. */
static void record(struct __test_metadata *_metadata, struct outcome *o, const char *what,
		   int n, int ok, int err)
{
	o->calls++;
	if (ok) {
		o->succeeded_anyway++;
	} else if (err == ENOMEM) {
		o->failed++;
	} else {
		o->bad++;
		TH_LOG("%s: allocation %d failed -> %s, want ENOMEM", what, n, strerror(err));
	}
}

/* After the last n: the call ran out of allocations to fail, and some failures failed it. */
static void summarise(struct __test_metadata *_metadata, struct outcome *o, const char *what,
		      int n)
{
	TH_LOG("%s: %d allocations, %d failed the call with ENOMEM, %d were survived",
	       what, o->calls, o->failed, o->succeeded_anyway);
	EXPECT_LT(n, MAX_NTH);
	EXPECT_GT(o->failed, 0);
	EXPECT_EQ(o->bad, 0);
}

FIXTURE(failslab)
{
	char saved_ignore[8], saved_verbose[8];
	long tp_id;
};

FIXTURE_SETUP(failslab)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth", (long)syscall(SYS_gettid));
	fail_nth_fd = open(path, O_RDWR);
	ASSERT_GE(fail_nth_fd, 0) TH_LOG("%s: %s (CONFIG_FAULT_INJECTION?)", path, strerror(errno));
	read_str(FAILSLAB "ignore-gfp-wait", self->saved_ignore, sizeof(self->saved_ignore));
	read_str(FAILSLAB "verbose", self->saved_verbose, sizeof(self->saved_verbose));
	ASSERT_NE(self->saved_ignore[0], 0) TH_LOG("no " FAILSLAB " (CONFIG_FAILSLAB, debugfs?)");
	/* GFP_KERNEL allocations too (most of perf's), and no stack dump per failure. */
	ASSERT_EQ(write_str(FAILSLAB "ignore-gfp-wait", "N"), 0);
	ASSERT_EQ(write_str(FAILSLAB "verbose", "0"), 0);
	self->tp_id = tracepoint_id("sched/sched_switch");
}

FIXTURE_TEARDOWN(failslab)
{
	write_str(FAILSLAB "ignore-gfp-wait", self->saved_ignore);
	write_str(FAILSLAB "verbose", self->saved_verbose);
	if (fail_nth_fd >= 0)
		close(fail_nth_fd);
}

static void sw_attr(struct perf_event_attr *attr, unsigned long long config)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = PERF_TYPE_SOFTWARE;
	attr->config = config;
}

/* A child forked now inherits the exit-counting event fd: its exit is counted. */
static void check_inherited(struct __test_metadata *_metadata, int fd, const char *what, int n)
{
	uint64_t exits = 0;
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT_EQ(read(fd, &exits, sizeof(exits)), sizeof(exits));
	EXPECT_EQ(exits, 1) TH_LOG("%s, allocation %d failed: the exit counted %llu times",
				   what, n, (unsigned long long)exits);
}

/*
 * Opens one configuration with the n-th allocation failing, n = 1, 2, ...
 * kind: 0 task event on self, 1 CPU event, 2 group of a software leader and a
 * tracepoint sibling on self, 3 inherited sched_process_exit tracepoint event
 * on self: each one that opens despite the failure must be inherited by a
 * child forked next (the child's exit is counted in the parent's event).
 */
static void open_all_nth(struct __test_metadata *_metadata, long tp_id, int kind,
			 const char *what)
{
	struct outcome o = {};
	int n;

	for (n = 1; n < MAX_NTH; n++) {
		struct perf_event_attr attr;
		int leader = -1, fd, err, fired;

		if (kind == 2) {
			sw_attr(&attr, PERF_COUNT_SW_CPU_CLOCK);
			leader = perf_open(&attr, 0, -1, -1);
			ASSERT_GE(leader, 0);
		}
		if (kind >= 2 && tp_id >= 0) {
			memset(&attr, 0, sizeof(attr));
			attr.size = sizeof(attr);
			attr.type = PERF_TYPE_TRACEPOINT;
			attr.config = tp_id;
			attr.inherit = kind == 3;
			if (kind == 3) {
				attr.config = tracepoint_id("sched/sched_process_exit");
				ASSERT_GE((long)attr.config, 0) TH_LOG("no tracefs");
			}
		} else {
			sw_attr(&attr, kind == 1 ? PERF_COUNT_SW_CPU_CLOCK :
						   PERF_COUNT_SW_TASK_CLOCK);
		}
		arm(n);
		fd = kind == 1 ? perf_open(&attr, -1, 0, -1) : perf_open(&attr, 0, -1, leader);
		err = errno;
		fired = injected();
		if (fd >= 0 && kind == 3)
			check_inherited(_metadata, fd, what, n);
		if (fd >= 0)
			close(fd);
		if (leader >= 0)
			close(leader);
		if (!fired) {
			ASSERT_GE(fd, 0) TH_LOG("%s: fails without an injected fault: %s", what,
						 strerror(err));
			break;
		}
		record(_metadata, &o, what, n, fd >= 0, err);
	}
	summarise(_metadata, &o, what, n);
}

TEST_F(failslab, open_task)
{
	open_all_nth(_metadata, self->tp_id, 0, "task event");
}

TEST_F(failslab, open_cpu)
{
	open_all_nth(_metadata, self->tp_id, 1, "CPU event");
}

TEST_F(failslab, open_group_second_pmu)
{
	open_all_nth(_metadata, self->tp_id, 2, "tracepoint sibling of a software leader");
}

/*
 * Each event that opens is checked by a fork (check_inherited()): under KASAN
 * and TCG with the host loaded (two make stress guests at once) that took
 * more than the harness's default 30 s on either core, so give it 300.
 */
TEST_F_TIMEOUT(failslab, open_inherit, 300)
{
	open_all_nth(_metadata, self->tp_id, 3, "inherited tracepoint event");
}

/*
 * About 245 forks, each copying three inherited events: under KASAN and TCG
 * (make stress) that is well past the harness's default 30 s, so give it 300.
 */
TEST_F_TIMEOUT(failslab, fork_inherit_three_pmus, 300)
{
	long exit_id = tracepoint_id("sched/sched_process_exit");
	struct perf_event_attr attr;
	struct outcome o = {};
	int fds[3], n, i;
	uint64_t exits;

	sw_attr(&attr, PERF_COUNT_SW_TASK_CLOCK);
	attr.inherit = 1;
	fds[0] = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(fds[0], 0);
	ASSERT_GE(exit_id, 0) TH_LOG("no tracefs");
	/* Counts the children's exits: it fires before perf_event_exit_task(). */
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.config = exit_id;
	attr.inherit = 1;
	fds[1] = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(fds[1], 0);
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_BREAKPOINT;
	attr.bp_type = HW_BREAKPOINT_W;
	attr.bp_addr = (unsigned long)&bp_target;
	attr.bp_len = HW_BREAKPOINT_LEN_4;
	attr.inherit = 1;
	fds[2] = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(fds[2], 0);

	for (n = 1; n < MAX_NTH; n++) {
		int err, fired, status;
		pid_t pid;

		arm(n);
		pid = fork();
		err = errno;
		if (pid == 0) {
			__atomic_fetch_add(&bp_target, 1, __ATOMIC_RELAXED);
			_exit(0);
		}
		fired = injected();
		if (pid > 0) {
			ASSERT_EQ(waitpid(pid, &status, 0), pid);
			ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		if (!fired) {
			ASSERT_GT(pid, 0) TH_LOG("fork fails without an injected fault: %s",
						 strerror(err));
			break;
		}
		record(_metadata, &o, "fork", n, pid > 0, err);
	}
	summarise(_metadata, &o, "fork", n);
	/* Every child that was forked had the inherited events: its exit was counted. */
	ASSERT_EQ(read(fds[1], &exits, sizeof(exits)), sizeof(exits));
	EXPECT_EQ(exits, (uint64_t)o.succeeded_anyway + 1);
	for (i = 0; i < 3; i++)
		close(fds[i]);
}

TEST_F(failslab, mmap_ring_buffer)
{
	long page = sysconf(_SC_PAGESIZE);
	struct perf_event_attr attr;
	struct outcome o = {};
	int fd, n;

	sw_attr(&attr, PERF_COUNT_SW_TASK_CLOCK);
	attr.sample_period = 100000;
	attr.sample_type = PERF_SAMPLE_IP;
	fd = perf_open(&attr, 0, -1, -1);
	ASSERT_GE(fd, 0);
	for (n = 1; n < MAX_NTH; n++) {
		void *p;
		int err, fired;

		arm(n);
		p = mmap(NULL, 9 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		err = errno;
		fired = injected();
		if (p != MAP_FAILED)
			munmap(p, 9 * page);
		if (!fired) {
			ASSERT_NE(p, MAP_FAILED) TH_LOG("mmap fails without an injected fault: %s",
							strerror(err));
			break;
		}
		record(_metadata, &o, "mmap", n, p != MAP_FAILED, err);
	}
	summarise(_metadata, &o, "mmap", n);
	close(fd);
}

TEST_HARNESS_MAIN
