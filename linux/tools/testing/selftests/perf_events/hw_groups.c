// SPDX-License-Identifier: GPL-2.0
/*
 * Groups and PMU contexts with hardware-context PMUs, on the test PMUs of
 * CONFIG_PERF_EVENTS_TEST_PMUS (test_hw_a, test_hw_b, test_hw_data: their
 * events count the nanoseconds they are scheduled in, on four counters per
 * CPU and PMU). Without them - a kernel built without the option - every
 * test skips and says why.
 *
 * Since the context rewrite (bd2756811766 "perf: Rewrite core context
 * handling") a task context holds one PMU context (epc) per PMU:
 *
 * - mixed_hw_pmus_einval: one group may not hold events of two hardware
 *   PMUs, EINVAL (the rewrite's "Don't allow group of multiple hw events
 *   from different pmus" check). Software events may join a hardware
 *   group and stay in its epc.
 *
 * - move_group_with_inherited_children: a hardware event joining a pure
 *   software group moves the group into the hardware epc (move_group: the
 *   old epc references are put, the new one taken for every member) while
 *   children forked earlier still hold the old composition: read() of the
 *   group with PERF_FORMAT_GROUP must fail with ECHILD while they live
 *   (32671e3799ca "perf: Disallow mis-matched inherited group reads") and
 *   succeed after they exit; children forked after the move inherit the
 *   moved group and their counts reach the parent's read.
 *
 * - cloned_contexts_swap_with_task_data: the scenario of 2016066c6619
 *   ("perf/core: Order the PMU list to fix warning about unordered
 *   pmu_ctx_list"): a task data holder event first, then a tracepoint,
 *   then a pinned software event, inherited by children whose contexts are
 *   clones of one parent and are swapped on every switch between them (one
 *   CPU, pipe ping-pong). The parent's epc list grows in creation order, a
 *   child's in inherit order (pinned groups first): only sorting by PMU
 *   type keeps them equal. 7.2 no longer has the swap of per-epc task data
 *   that warned, so an unsorted list has no symptom this test could see:
 *   it checks that the swaps and the per-task data under them count right
 *   and splat nothing (the harness reads the console). The order itself is
 *   the Rust core's KUnit cases pmus_get_their_own_epcs_sorted_by_type and
 *   parent_and_inherited_child_lists_match.
 *
 * - multiplexing: more events than counters rotate (every event runs part
 *   of the time), a group larger than the counters never runs.
 *
 * - pmu_filter: test_hw_cpu0 schedules on CPU 0 only, through pmu->filter(),
 *   as arm_pmu does for the CPUs outside its cluster. ->filter() returns true
 *   to keep a PMU's events off a CPU: the rewrite replaced ->filter_match()
 *   (true: may run) by ->filter() of the opposite sense, and arm_pmu, which
 *   had to follow, got it inverted (2023); with the sense wrong the events
 *   count on the wrong CPUs, or on none. A task's pinned event (and a
 *   software sibling in its group) must count on CPU 0 only, must not go to
 *   the error state on CPU 1, and a CPU event on CPU 1 is refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

#include "../kselftest_harness.h"
#include "tracepoint_id.h"
#include "pmu_type.h"

#define NS_PER_MS	1000000ULL

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static void init_attr(struct perf_event_attr *attr, int type, unsigned long long config)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = type;
	attr->config = config;
	attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
}

static unsigned long long thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void spin_ms(unsigned int ms)
{
	unsigned long long end = thread_cpu_ns() + ms * NS_PER_MS;

	while (thread_cpu_ns() < end)
		;
}

/* PERF_FORMAT_GROUP | TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING */
struct group_read {
	uint64_t nr, enabled, running;
	uint64_t values[8];
};

/* Opening an event of PMU @type into @group must fail with EINVAL. */
static void expect_einval(struct __test_metadata *_metadata, int type, pid_t pid, int cpu,
			  int group)
{
	struct perf_event_attr attr;

	init_attr(&attr, type, 0);
	errno = 0;
	EXPECT_EQ(-1, perf_open(&attr, pid, cpu, group));
	EXPECT_EQ(EINVAL, errno);
}

/* The types of the three test PMUs; false if one is missing. */
static bool test_pmus(int *a, int *b, int *d)
{
	*a = pmu_type("test_hw_a");
	*b = pmu_type("test_hw_b");
	*d = pmu_type("test_hw_data");
	return *a >= 0 && *b >= 0 && *d >= 0;
}

TEST(mixed_hw_pmus_einval)
{
	struct perf_event_attr attr;
	int a, b, d, leader, sib, sw, sw_leader, moved, cpu_leader;

	if (!test_pmus(&a, &b, &d))
		SKIP(return, "no test PMUs (CONFIG_PERF_EVENTS_TEST_PMUS=n)");

	init_attr(&attr, a, 0);
	leader = perf_open(&attr, 0, -1, -1);
	ASSERT_LE(0, leader) TH_LOG("test_hw_a: %s", strerror(errno));

	/* Same PMU: one epc. */
	sib = perf_open(&attr, 0, -1, leader);
	ASSERT_LE(0, sib) TH_LOG("test_hw_a sibling: %s", strerror(errno));

	/* Another hardware PMU in the group: EINVAL. */
	expect_einval(_metadata, b, 0, -1, leader);
	expect_einval(_metadata, d, 0, -1, leader);

	/* A software event joins the hardware group (and its epc). */
	init_attr(&attr, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK);
	sw = perf_open(&attr, 0, -1, leader);
	ASSERT_LE(0, sw) TH_LOG("software sibling: %s", strerror(errno));

	/*
	 * A software group that a test_hw_b event moved to test_hw_b's epc
	 * refuses test_hw_a events as well.
	 */
	sw_leader = perf_open(&attr, 0, -1, -1);
	ASSERT_LE(0, sw_leader);
	init_attr(&attr, b, 0);
	moved = perf_open(&attr, 0, -1, sw_leader);
	ASSERT_LE(0, moved) TH_LOG("move_group into test_hw_b: %s", strerror(errno));
	expect_einval(_metadata, a, 0, -1, sw_leader);

	/* CPU events: the same rule in the CPU context. */
	init_attr(&attr, a, 0);
	cpu_leader = perf_open(&attr, -1, 0, -1);
	ASSERT_LE(0, cpu_leader) TH_LOG("CPU event: %s", strerror(errno));
	expect_einval(_metadata, b, -1, 0, cpu_leader);

	close(cpu_leader);
	close(moved);
	close(sw_leader);
	close(sw);
	close(sib);
	close(leader);
}

/* A child that waits for a byte on @fd, then spins @ms of CPU time and exits. */
static pid_t fork_waiter(int fd, unsigned int ms)
{
	pid_t pid = fork();
	char c;

	if (pid == 0) {
		if (read(fd, &c, 1) != 1)
			_exit(1);
		spin_ms(ms);
		_exit(0);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/*
 * A task's context and its children's are clones until one changes, and the
 * scheduler swaps clones instead of switching their events out and in
 * (perf_event_context_sched_out()): the parent may then run on the context of
 * a child, and a new sibling of a group in the old one gets EINVAL ("not the
 * leader's context"), on both cores, in about half the runs on arm64. An
 * inherited PERF_SAMPLE_READ event turns the swap off (nr_no_switch_fast):
 * this one keeps the contexts where the test puts them.
 */
static int no_ctx_swap(struct __test_metadata *_metadata)
{
	struct perf_event_attr attr;
	int fd;

	init_attr(&attr, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY);
	attr.inherit = 1;
	attr.sample_period = 1;
	attr.sample_type = PERF_SAMPLE_READ | PERF_SAMPLE_TID;
	fd = perf_open(&attr, 0, -1, -1);
	EXPECT_LE(0, fd) TH_LOG("inherited SAMPLE_READ dummy: %s", strerror(errno));
	return fd;
}

TEST(move_group_with_inherited_children)
{
	struct perf_event_attr attr;
	struct group_read r0, r1;
	int a, b, d, round, noswap;

	if (!test_pmus(&a, &b, &d))
		SKIP(return, "no test PMUs (CONFIG_PERF_EVENTS_TEST_PMUS=n)");
	noswap = no_ctx_swap(_metadata);

	for (round = 0; round < 20; round++) {
		int go[2], leader, sib, hw;
		pid_t early, late;

		/* A pure software group, inherited. */
		init_attr(&attr, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK);
		attr.inherit = 1;
		attr.read_format |= PERF_FORMAT_GROUP;
		leader = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, leader) TH_LOG("leader: %s", strerror(errno));
		attr.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
		sib = perf_open(&attr, 0, -1, leader);
		ASSERT_LE(0, sib) TH_LOG("sibling: %s", strerror(errno));

		/* A child with the software group of two. */
		ASSERT_EQ(0, pipe(go));
		early = fork_waiter(go[0], 1);
		ASSERT_LT(0, early);

		/* A test_hw_a event joins: the group moves to test_hw_a's epc. */
		init_attr(&attr, a, 0);
		attr.inherit = 1;
		attr.read_format |= PERF_FORMAT_GROUP;
		hw = perf_open(&attr, 0, -1, leader);
		ASSERT_LE(0, hw) TH_LOG("move_group: %s", strerror(errno));

		/* The early child's group no longer matches: ECHILD. */
		EXPECT_EQ(-1, read(leader, &r0, sizeof(r0)));
		EXPECT_EQ(ECHILD, errno);

		ASSERT_EQ(1, write(go[1], "x", 1));
		ASSERT_EQ(0, reap(early));

		/* Gone: the parent's group of three reads. */
		ASSERT_LT(0, read(leader, &r0, sizeof(r0))) TH_LOG("read: %s", strerror(errno));
		ASSERT_EQ(3ULL, r0.nr);

		/* A child forked now inherits the moved group; reads work while it lives. */
		late = fork_waiter(go[0], 30);
		ASSERT_LT(0, late);
		ASSERT_LT(0, read(leader, &r1, sizeof(r1))) TH_LOG("read: %s", strerror(errno));
		ASSERT_EQ(3ULL, r1.nr);
		ASSERT_EQ(1, write(go[1], "x", 1));
		ASSERT_EQ(0, reap(late));

		ASSERT_LT(0, read(leader, &r1, sizeof(r1)));
		ASSERT_EQ(3ULL, r1.nr);
		/* The late child's 30 ms of CPU reached the parent: task-clock and test_hw_a. */
		EXPECT_LE(r0.values[0] + 15 * NS_PER_MS, r1.values[0])
			TH_LOG("task-clock %llu -> %llu", (unsigned long long)r0.values[0],
			       (unsigned long long)r1.values[0]);
		EXPECT_LE(r0.values[2] + 15 * NS_PER_MS, r1.values[2])
			TH_LOG("test_hw_a %llu -> %llu", (unsigned long long)r0.values[2],
			       (unsigned long long)r1.values[2]);
		if (round == 0)
			ksft_print_msg("moved: task-clock %llu ns, cs %llu, test_hw_a %llu ns\n",
				       (unsigned long long)r1.values[0],
				       (unsigned long long)r1.values[1],
				       (unsigned long long)r1.values[2]);

		close(go[0]);
		close(go[1]);
		close(hw);
		close(sib);
		close(leader);
	}
	close(noswap);
}

#define PINGS 300

/* Two children on one CPU pass a byte back and forth PINGS times. */
static int ping_pong(void)
{
	int ab[2], ba[2], i, ret = 0;
	pid_t p1, p2;
	char c = 0;

	if (pipe(ab) || pipe(ba))
		return -1;
	p1 = fork();
	if (p1 == 0) {
		for (i = 0; i < PINGS; i++)
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	p2 = fork();
	if (p2 == 0) {
		for (i = 0; i < PINGS; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	if (p1 < 0 || p2 < 0 || reap(p1) || reap(p2))
		ret = -1;
	close(ab[0]);
	close(ab[1]);
	close(ba[0]);
	close(ba[1]);
	return ret;
}

TEST(cloned_contexts_swap_with_task_data)
{
	struct perf_event_attr attr;
	uint64_t v[3][3];
	int a, b, d, round, fd[3], i;
	long tp;
	cpu_set_t one, old;

	if (!test_pmus(&a, &b, &d))
		SKIP(return, "no test PMUs (CONFIG_PERF_EVENTS_TEST_PMUS=n)");
	tp = tracepoint_id("sched/sched_switch");
	if (tp < 0)
		SKIP(return, "no tracefs (sched/sched_switch)");

	ASSERT_EQ(0, sched_getaffinity(0, sizeof(old), &old));
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));

	for (round = 0; round < 5; round++) {
		/* Creation order: task data holder, tracepoint, pinned software. */
		init_attr(&attr, d, 0);
		attr.inherit = 1;
		fd[0] = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, fd[0]) TH_LOG("test_hw_data: %s", strerror(errno));
		init_attr(&attr, PERF_TYPE_TRACEPOINT, tp);
		attr.inherit = 1;
		fd[1] = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, fd[1]) TH_LOG("sched_switch: %s", strerror(errno));
		init_attr(&attr, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES);
		attr.inherit = 1;
		attr.pinned = 1;
		fd[2] = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, fd[2]) TH_LOG("context-switches: %s", strerror(errno));

		ASSERT_EQ(0, ping_pong());

		for (i = 0; i < 3; i++) {
			ASSERT_EQ((ssize_t)sizeof(v[i]), read(fd[i], v[i], sizeof(v[i])));
			close(fd[i]);
		}
		/* Each child blocks PINGS times at least. */
		EXPECT_LE(2ULL * PINGS, v[1][0]) TH_LOG("sched_switch %llu",
						     (unsigned long long)v[1][0]);
		EXPECT_LE(2ULL * PINGS, v[2][0]) TH_LOG("context-switches %llu",
						     (unsigned long long)v[2][0]);
		EXPECT_LT(0ULL, v[0][0]);
		/* Counting PMUs with free counters: always running while enabled. */
		EXPECT_EQ(v[0][1], v[0][2]);
		if (round == 0)
			ksft_print_msg("test_hw_data %llu ns, sched_switch %llu, cs %llu\n",
				       (unsigned long long)v[0][0], (unsigned long long)v[1][0],
				       (unsigned long long)v[2][0]);
	}
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(old), &old));
}

#define MUX_EVENTS 6	/* two more than test_hw_a has counters */

TEST(multiplexing)
{
	struct perf_event_attr attr;
	uint64_t v[MUX_EVENTS][3], g[3 + 5];
	int a, b, d, i, fd[MUX_EVENTS], big[5];

	if (!test_pmus(&a, &b, &d))
		SKIP(return, "no test PMUs (CONFIG_PERF_EVENTS_TEST_PMUS=n)");

	init_attr(&attr, a, 0);
	for (i = 0; i < MUX_EVENTS; i++) {
		fd[i] = perf_open(&attr, 0, -1, -1);
		ASSERT_LE(0, fd[i]) TH_LOG("event %d: %s", i, strerror(errno));
	}
	/* A group of five never fits four counters. */
	attr.read_format |= PERF_FORMAT_GROUP;
	for (i = 0; i < 5; i++) {
		big[i] = perf_open(&attr, 0, -1, i ? big[0] : -1);
		ASSERT_LE(0, big[i]) TH_LOG("group member %d: %s", i, strerror(errno));
	}

	spin_ms(200);

	for (i = 0; i < MUX_EVENTS; i++) {
		ASSERT_EQ((ssize_t)sizeof(v[i]), read(fd[i], v[i], sizeof(v[i])));
		/* enabled, running > 0, running < enabled: rotated in and out. */
		EXPECT_LT(0ULL, v[i][2]) TH_LOG("event %d never ran", i);
		EXPECT_LT(v[i][2], v[i][1]) TH_LOG("event %d ran all the time", i);
		EXPECT_LT(0ULL, v[i][0]);
	}
	ASSERT_EQ((ssize_t)sizeof(g), read(big[0], g, sizeof(g)));
	EXPECT_EQ(5ULL, g[0]);
	EXPECT_LT(0ULL, g[1]);
	EXPECT_EQ(0ULL, g[2]) TH_LOG("a group of 5 ran on 4 counters");
	ksft_print_msg("6 events on 4 counters: event 0 ran %llu of %llu ns\n",
		       (unsigned long long)v[0][2], (unsigned long long)v[0][1]);

	for (i = 0; i < 5; i++)
		close(big[4 - i]);
	for (i = 0; i < MUX_EVENTS; i++)
		close(fd[i]);
}

static void pin_to(struct __test_metadata *_metadata, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(set), &set)) TH_LOG("CPU %d: %s", cpu,
								    strerror(errno));
}

/* Reads leader and sibling of a PERF_FORMAT_GROUP group of two. */
static void read_pair(struct __test_metadata *_metadata, int leader, uint64_t r[5])
{
	ASSERT_EQ((ssize_t)(5 * sizeof(uint64_t)), read(leader, r, 5 * sizeof(uint64_t)))
		TH_LOG("a pinned group that cannot run on this CPU must not be in error state");
	ASSERT_EQ(2ULL, r[0]);
}

TEST(pmu_filter)
{
	struct perf_event_attr attr;
	cpu_set_t old;
	uint64_t r0[5], r1[5], r2[5], r3[5];
	int type, leader, sib, fd;

	type = pmu_type("test_hw_cpu0");
	if (type < 0)
		SKIP(return, "no test PMUs (CONFIG_PERF_EVENTS_TEST_PMUS=n)");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs CPUs 0 and 1");
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(old), &old));

	/* On CPU 1 from the start: the group must never run. */
	pin_to(_metadata, 1);
	init_attr(&attr, type, 0);
	attr.read_format |= PERF_FORMAT_GROUP;
	attr.pinned = 1;
	leader = perf_open(&attr, 0, -1, -1);
	ASSERT_LE(0, leader) TH_LOG("test_hw_cpu0: %s", strerror(errno));
	/* A software sibling moves into test_hw_cpu0's epc and is filtered with it. */
	attr.pinned = 0;
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	sib = perf_open(&attr, 0, -1, leader);
	ASSERT_LE(0, sib) TH_LOG("task-clock sibling: %s", strerror(errno));

	spin_ms(50);
	read_pair(_metadata, leader, r0);
	EXPECT_LT(0ULL, r0[1]) TH_LOG("not enabled");
	EXPECT_EQ(0ULL, r0[2]) TH_LOG("ran %llu ns on CPU 1", (unsigned long long)r0[2]);
	EXPECT_EQ(0ULL, r0[3]) TH_LOG("test_hw_cpu0 counted on CPU 1");
	EXPECT_EQ(0ULL, r0[4]) TH_LOG("its task-clock sibling counted on CPU 1");

	/* On CPU 0 it runs and counts. */
	pin_to(_metadata, 0);
	spin_ms(50);
	read_pair(_metadata, leader, r1);
	EXPECT_LE(40 * NS_PER_MS, r1[2]) TH_LOG("ran %llu ns of 50 ms on CPU 0",
						(unsigned long long)r1[2]);
	EXPECT_LT(0ULL, r1[3]);
	EXPECT_LT(0ULL, r1[4]);

	/* Back on CPU 1: nothing moves any more. */
	pin_to(_metadata, 1);
	read_pair(_metadata, leader, r2);
	spin_ms(50);
	read_pair(_metadata, leader, r3);
	EXPECT_EQ(r2[2], r3[2]) TH_LOG("ran on CPU 1");
	EXPECT_EQ(r2[3], r3[3]) TH_LOG("test_hw_cpu0 counted on CPU 1");
	EXPECT_EQ(r2[4], r3[4]) TH_LOG("its task-clock sibling counted on CPU 1");
	EXPECT_LT(r2[1], r3[1]) TH_LOG("enabled time stopped");
	ksft_print_msg("on CPU 0: ran %llu ns, test_hw_cpu0 %llu ns, task-clock %llu ns\n",
		       (unsigned long long)r1[2], (unsigned long long)r1[3],
		       (unsigned long long)r1[4]);
	close(sib);
	close(leader);

	/* CPU events: CPU 0 is served, CPU 1 refused as arm_pmu refuses foreign CPUs. */
	init_attr(&attr, type, 0);
	fd = perf_open(&attr, -1, 0, -1);
	EXPECT_LE(0, fd) TH_LOG("CPU 0 event: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	errno = 0;
	EXPECT_EQ(-1, perf_open(&attr, -1, 1, -1));
	EXPECT_EQ(ENOENT, errno);

	ASSERT_EQ(0, sched_setaffinity(0, sizeof(old), &old));
}

TEST_HARNESS_MAIN
