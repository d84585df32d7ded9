// SPDX-License-Identifier: GPL-2.0
/*
 * PMU context migration (perf_pmu_migrate_context()) on CPU hotplug, with
 * test_uncore of CONFIG_PERF_EVENTS_TEST_PMUS: an uncore-like PMU of CPU
 * events served by one CPU at a time (its sysfs cpumask), the highest online
 * one. Taking that CPU offline migrates its events to another CPU; bringing it
 * back online migrates them back. Its events count the nanoseconds they are
 * scheduled in. Without the PMU every test skips; without CPU hotplug (or
 * with one CPU) the hotplug tests skip, and say why.
 *
 * - task_events_refused: the core refuses task events of a PMU without a task
 *   context (perf_invalid_context), EINVAL.
 *
 * - events_move_with_their_cpu: a group of three and two single events,
 *   opened on another CPU than the PMU's, are moved to the PMU's CPU by
 *   event_init; offlining that CPU moves them to another one (the cpumask
 *   follows), onlining it moves them back. After each move every event
 *   counts (a CPU that goes offline with its events detaches them: they stop
 *   counting, and the group falls apart), the group still reads as one
 *   group with its members' ids in order, enabled and running times agree.
 *
 * - hotplug_loop_with_openers: HOTPLUG_CYCLES offline/online cycles of the
 *   PMU's CPU while two threads open and close single events and groups on
 *   the PMU, and a long-lived group counts through all of it. An open may
 *   fail with ENODEV (its CPU went offline between event_init and the
 *   install), a sibling with EINVAL (its leader was opened on the CPU before
 *   a migration, the sibling after: not the same CPU); any other error fails
 *   the test.
 *
 * The harness checks the console (lockdep, KASAN, WARN) and kmemleak after
 * the run: closing migrated events must free everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "cpu_online.h"
#include "pmu_type.h"

#define HOTPLUG_CYCLES	20
#define GROUP_SIZE	3
#define NR_EVENTS	(GROUP_SIZE + 2)

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static void init_attr(struct perf_event_attr *attr, int type, int group_read)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = type;
	attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING |
			    PERF_FORMAT_ID;
	if (group_read)
		attr->read_format |= PERF_FORMAT_GROUP;
}

/* test_uncore's CPU from its sysfs cpumask ("N"), -1 if unreadable. */
static int uncore_cpu(void)
{
	return sysfs_int("/sys/bus/event_source/devices/test_uncore/cpumask");
}

/* Why the hotplug tests cannot run here, or NULL if they can. */
static const char *no_hotplug(void)
{
	int cpu = uncore_cpu(), fd;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return "one online CPU: nowhere to migrate to";
	fd = cpu_online_fd(cpu);
	if (fd < 0)
		return "the PMU's CPU cannot go offline (no CPU hotplug, or CPU 0)";
	close(fd);
	return NULL;
}

struct one_read {
	uint64_t value, enabled, running, id;
};

struct group_read {
	uint64_t nr, enabled, running;
	struct {
		uint64_t value, id;
	} values[GROUP_SIZE];
};

struct events {
	int fd[NR_EVENTS];		/* [0] the group leader, [1..2] its siblings */
	uint64_t id[NR_EVENTS];
};

static void open_events(struct __test_metadata *_metadata, int type, int cpu, struct events *ev)
{
	struct perf_event_attr attr;
	int i;

	for (i = 0; i < NR_EVENTS; i++) {
		int leader = i > 0 && i < GROUP_SIZE ? ev->fd[0] : -1;

		init_attr(&attr, type, i == 0);
		ev->fd[i] = perf_open(&attr, -1, cpu, leader);
		ASSERT_LE(0, ev->fd[i]) TH_LOG("event %d: %s", i, strerror(errno));
		ASSERT_EQ(0, ioctl(ev->fd[i], PERF_EVENT_IOC_ID, &ev->id[i]));
	}
}

static void close_events(struct events *ev)
{
	int i;

	for (i = NR_EVENTS - 1; i >= 0; i--)
		close(ev->fd[i]);
}

/* Reads every event: the group as a group, the others alone. */
static void read_events(struct __test_metadata *_metadata, struct events *ev,
			uint64_t value[NR_EVENTS])
{
	struct group_read g;
	struct one_read r;
	int i;

	ASSERT_EQ(sizeof(g), read(ev->fd[0], &g, sizeof(g))) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(GROUP_SIZE, g.nr);
	EXPECT_EQ(g.enabled, g.running);
	for (i = 0; i < GROUP_SIZE; i++) {
		EXPECT_EQ(ev->id[i], g.values[i].id) TH_LOG("group member %d", i);
		value[i] = g.values[i].value;
	}
	for (i = GROUP_SIZE; i < NR_EVENTS; i++) {
		ASSERT_EQ(sizeof(r), read(ev->fd[i], &r, sizeof(r)));
		EXPECT_EQ(ev->id[i], r.id);
		EXPECT_EQ(r.enabled, r.running) TH_LOG("event %d", i);
		value[i] = r.value;
	}
}

/* Every event counts: its count grows over 20 ms. */
static void expect_counting(struct __test_metadata *_metadata, struct events *ev,
			    const char *when)
{
	uint64_t before[NR_EVENTS], after[NR_EVENTS];
	int i;

	read_events(_metadata, ev, before);
	usleep(20000);
	read_events(_metadata, ev, after);
	for (i = 0; i < NR_EVENTS; i++) {
		int counts = after[i] > before[i];

		EXPECT_TRUE(counts) TH_LOG("event %d does not count %s: %llu, 20 ms later %llu",
					   i, when, (unsigned long long)before[i],
					   (unsigned long long)after[i]);
	}
}

static int uncore_type(struct __test_metadata *_metadata)
{
	int type = pmu_type("test_uncore");

	if (type < 0)
		SKIP(return -1, "no test_uncore PMU (CONFIG_PERF_EVENTS_TEST_PMUS=n)");
	return type;
}

/* test_uncore's type for a hotplug test, or -1 (and the test skips) if it cannot run here. */
static int hotplug_uncore_type(struct __test_metadata *_metadata)
{
	int type = uncore_type(_metadata);
	const char *why;

	if (type < 0)
		return -1;
	why = no_hotplug();
	if (why)
		SKIP(return -1, "%s", why);
	return type;
}

TEST(task_events_refused)
{
	struct perf_event_attr attr;
	int type = uncore_type(_metadata);

	if (type < 0)
		return;
	init_attr(&attr, type, 0);
	errno = 0;
	EXPECT_EQ(-1, perf_open(&attr, 0, -1, -1));
	EXPECT_EQ(EINVAL, errno);
}

TEST(events_move_with_their_cpu)
{
	int type = hotplug_uncore_type(_metadata), cpu, other;
	struct events ev;

	if (type < 0)
		return;
	cpu = uncore_cpu();
	/* Opened on CPU 0 (not the PMU's CPU, the highest): event_init moves them. */
	open_events(_metadata, type, 0, &ev);
	expect_counting(_metadata, &ev, "when opened");

	ASSERT_EQ(0, set_online(cpu, 0));
	other = uncore_cpu();
	EXPECT_NE(cpu, other);
	EXPECT_LE(0, other);
	expect_counting(_metadata, &ev, "after their CPU went offline");

	ASSERT_EQ(0, set_online(cpu, 1));
	EXPECT_EQ(cpu, uncore_cpu());
	expect_counting(_metadata, &ev, "after their CPU came back");

	close_events(&ev);
}

static atomic_int stop;
static atomic_int open_errors;

/* Opens and closes a single event and a group of two on @arg's PMU, until stop. */
static void *opener(void *arg)
{
	int type = *(int *)arg;
	struct perf_event_attr attr;

	while (!atomic_load(&stop)) {
		int a, b;

		init_attr(&attr, type, 1);
		a = perf_open(&attr, -1, 0, -1);
		if (a < 0) {
			if (errno != ENODEV)
				atomic_fetch_add(&open_errors, 1);
			continue;
		}
		init_attr(&attr, type, 0);
		b = perf_open(&attr, -1, 0, a);
		if (b < 0 && errno != ENODEV && errno != EINVAL)
			atomic_fetch_add(&open_errors, 1);
		if (b >= 0)
			close(b);
		close(a);
	}
	return NULL;
}

TEST(hotplug_loop_with_openers)
{
	int type = hotplug_uncore_type(_metadata), cpu, i;
	pthread_t threads[2];
	uint64_t before[NR_EVENTS], after[NR_EVENTS];
	struct events ev;

	if (type < 0)
		return;
	cpu = uncore_cpu();
	open_events(_metadata, type, cpu, &ev);
	read_events(_metadata, &ev, before);

	atomic_store(&stop, 0);
	atomic_store(&open_errors, 0);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, opener, &type));

	for (i = 0; i < HOTPLUG_CYCLES; i++) {
		int err = set_online(cpu, 0);

		EXPECT_EQ(0, err) TH_LOG("cycle %d: offline: %s", i, strerror(-err));
		err = set_online(cpu, 1);
		EXPECT_EQ(0, err) TH_LOG("cycle %d: online: %s", i, strerror(-err));
		if (err)
			break;
	}

	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, atomic_load(&open_errors));

	EXPECT_EQ(cpu, uncore_cpu());
	read_events(_metadata, &ev, after);
	for (i = 0; i < NR_EVENTS; i++) {
		int counted = after[i] > before[i];

		EXPECT_TRUE(counted) TH_LOG("event %d did not count in the loop: %llu, then %llu",
					    i, (unsigned long long)before[i],
					    (unsigned long long)after[i]);
	}
	expect_counting(_metadata, &ev, "after the loop");
	close_events(&ev);
}

TEST_HARNESS_MAIN
