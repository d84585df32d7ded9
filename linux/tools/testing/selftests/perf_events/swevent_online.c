// SPDX-License-Identifier: GPL-2.0
/*
 * The first software event opened while a CPU comes online must find that
 * CPU's swevent hlist allocated once the CPU is up.
 *
 * perf_event_init_cpu() (hotplug state perf:online) allocates an onlining
 * CPU's hlist if software events hold references (hlist_refcount), and
 * swevent_hlist_get() allocates it for CPUs in perf_online_mask. An opener
 * that ran between the two checks once left the CPU online with a reference
 * and no hlist: a task scheduled in there got WARN_ON_ONCE(!head) in
 * perf_swevent_add() and its pinned event went to error state (read() gives
 * 0 bytes). Fixed by "perf/core: Allocate an onlining CPU's swevent hlist
 * under pmus_lock".
 *
 * - first_swevent_while_cpu_comes_online: CYCLES times, offline CPU 1, online
 *   it from a thread and, as soon as its hotplug state reaches perf:online
 *   (/sys/devices/system/cpu/cpu1/hotplug/state counts up through the
 *   callbacks, the state is set before its callback runs), open a pinned
 *   context-switch event on this task; then run on CPU 1 and require the
 *   event to read and count there. The window is a few instructions wide
 *   without a delay in perf_event_init_cpu(): the test reports how many
 *   opens started while CPU 1 was in perf:online. It needs every software
 *   event's hlist reference gone (no other perf user), which the kselftest
 *   run gives; another live software event would hide the bug, not fake it.
 *
 * Without CPU hotplug (or with one CPU) the test skips and says why.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "cpu_online.h"

#define CYCLES		20
#define TEST_CPU	1

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

/* The number of hotplug state perf:online ("NNN: perf:online"), or -1. */
static int perf_online_state(void)
{
	char line[128];
	int state = -1;
	FILE *f;

	f = fopen("/sys/devices/system/cpu/hotplug/states", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *name = strchr(line, ':');

		if (name && !strcmp(name, ": perf:online\n")) {
			state = atoi(line);
			break;
		}
	}
	fclose(f);
	return state;
}

static int cpu_state(int cpu)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/hotplug/state", cpu);
	return sysfs_int(path);
}

static int run_on(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

struct onliner {
	int cpu;
	int err;
	atomic_int done;
};

static void *onliner_fn(void *arg)
{
	struct onliner *o = arg;

	o->err = set_online(o->cpu, 1);
	atomic_store(&o->done, 1);
	return NULL;
}

TEST(first_swevent_while_cpu_comes_online)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CONTEXT_SWITCHES,
		.pinned = 1,
	};
	int state, cycle, inside = 0;
	int online_fd;

	if (sysconf(_SC_NPROCESSORS_CONF) <= TEST_CPU)
		SKIP(return, "one CPU: no CPU to bring online");
	online_fd = cpu_online_fd(TEST_CPU);
	if (online_fd < 0)
		SKIP(return, "CPU %d cannot go offline (no CPU hotplug)", TEST_CPU);
	close(online_fd);
	state = perf_online_state();
	ASSERT_GT(state, 0) TH_LOG("no perf:online in /sys/devices/system/cpu/hotplug/states");

	for (cycle = 0; cycle < CYCLES; cycle++) {
		struct onliner o = { .cpu = TEST_CPU };
		uint64_t count = 0;
		pthread_t thread;
		ssize_t n;
		int fd, i, now;

		ASSERT_EQ(0, run_on(0));
		ASSERT_EQ(0, set_online(TEST_CPU, 0));
		ASSERT_EQ(0, pthread_create(&thread, NULL, onliner_fn, &o));
		do
			now = cpu_state(TEST_CPU);
		while (!atomic_load(&o.done) && now < state);
		fd = perf_open(&attr, 0, -1, -1);
		if (now == state)
			inside++;
		ASSERT_EQ(0, pthread_join(thread, NULL));
		ASSERT_EQ(0, o.err) TH_LOG("onlining CPU %d: %s", TEST_CPU, strerror(-o.err));
		ASSERT_GE(fd, 0) TH_LOG("perf_event_open: %s", strerror(errno));

		ASSERT_EQ(0, run_on(TEST_CPU));
		for (i = 0; i < 10; i++)
			usleep(1000);
		n = read(fd, &count, sizeof(count));
		close(fd);
		ASSERT_EQ((ssize_t)sizeof(count), n)
			TH_LOG("cycle %d: read() gave %zd bytes: event in error state on CPU %d",
			       cycle, n, TEST_CPU);
		ASSERT_LT((uint64_t)0, count)
			TH_LOG("cycle %d: no context switch counted on CPU %d", cycle, TEST_CPU);
	}
	ASSERT_EQ(0, run_on(0));
	TH_LOG("%d cycles, %d opens started while CPU %d was in perf:online", CYCLES, inside,
	       TEST_CPU);
}

TEST_HARNESS_MAIN
