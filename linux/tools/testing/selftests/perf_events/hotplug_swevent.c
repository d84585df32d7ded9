// SPDX-License-Identifier: GPL-2.0
/*
 * Software events created while a CPU comes online. A CPU's software event
 * hash list exists while software events hold a reference on it (the first
 * one allocates it, the last one frees it); perf_event_init_cpu() allocated
 * it for a CPU coming online before taking pmus_lock and setting the CPU in
 * perf_online_mask, and swevent_hlist_get() allocates only for CPUs in that
 * mask. An event created between the two left the CPU online without a
 * list, and the next software event scheduled there warned in
 * perf_swevent_add() and did not count (found by a 30-minute make stress
 * on the C core; fixed by "perf/core: allocate a CPU's swevent hlist under
 * pmus_lock").
 *
 * One thread takes CPU 1 offline and online, others open a software task
 * event on themselves (the only software event in the test, so that the
 * reference count keeps dropping to zero), run on whichever CPU they are
 * given, and close it; for a bounded time. The harness reads the console:
 * the WARNING is the failure. Each event must also have counted whenever
 * it ran: time_running == time_enabled, else a CPU had no list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define RUN_SECONDS	15
#define NR_OPENERS	2

static volatile int stop;

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static int set_online(int on)
{
	int fd = open("/sys/devices/system/cpu/cpu1/online", O_WRONLY);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, on ? "1" : "0", 1) == 1 ? 0 : -1;
	close(fd);
	return ret;
}

static void *hotplug(void *arg)
{
	unsigned long *cycles = arg;

	while (!stop) {
		if (set_online(0) == 0)
			(*cycles)++;
		set_online(1);
	}
	return NULL;
}

struct opener {
	unsigned long opened, short_runs;
	int error;
};

static void *opener(void *arg)
{
	struct opener *o = arg;
	struct perf_event_attr attr;
	uint64_t v[3];
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	while (!stop) {
		fd = perf_open(&attr, 0, -1, -1);
		if (fd < 0) {
			o->error = errno;
			break;
		}
		/* Be scheduled out and in a few times, on either CPU. */
		usleep(200);
		sched_yield();
		if (read(fd, v, sizeof(v)) != sizeof(v)) {
			o->error = errno;
			close(fd);
			break;
		}
		if (v[2] != v[1])
			o->short_runs++;
		close(fd);
		o->opened++;
	}
	return NULL;
}

TEST(swevent_while_cpu_comes_online)
{
	struct opener o[NR_OPENERS];
	unsigned long cycles = 0, opened = 0, short_runs = 0;
	pthread_t h, t[NR_OPENERS];
	time_t end;
	int i;

	if (getuid() != 0 || access("/sys/devices/system/cpu/cpu1/online", W_OK))
		SKIP(return, "needs root and a CPU 1 that can go offline");

	memset(o, 0, sizeof(o));
	ASSERT_EQ(0, pthread_create(&h, NULL, hotplug, &cycles));
	for (i = 0; i < NR_OPENERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, opener, &o[i]));
	end = time(NULL) + RUN_SECONDS;
	while (time(NULL) < end)
		sleep(1);
	stop = 1;
	for (i = 0; i < NR_OPENERS; i++) {
		ASSERT_EQ(0, pthread_join(t[i], NULL));
		EXPECT_EQ(0, o[i].error) TH_LOG("opener %d: %s", i, strerror(o[i].error));
		opened += o[i].opened;
		short_runs += o[i].short_runs;
	}
	ASSERT_EQ(0, pthread_join(h, NULL));
	ASSERT_EQ(0, set_online(1));
	ksft_print_msg("%lu hotplug cycles, %lu events, %lu ran less than enabled\n",
		       cycles, opened, short_runs);
	EXPECT_LT(0UL, cycles);
	EXPECT_LT(0UL, opened);
	EXPECT_EQ(0UL, short_runs);
}

TEST_HARNESS_MAIN
