// SPDX-License-Identifier: GPL-2.0
/*
 * Siblings added to one group from several threads at once, while another
 * thread reads the group and toggles it: each sibling's
 * sys_perf_event_open() takes the leader's ctx->mutex, and the leader's
 * PMU context must stay linked and referenced by the leader throughout
 * (the group_leader case of the 2022 context rewrite: modifying the
 * context's PMU list needs ctx->mutex and ctx->lock). Siblings of a
 * second PMU (a tracepoint) give the context a second PMU context that
 * comes and goes while the leader's stays.
 *
 * At the end every sibling is closed and the leader's read() must report
 * a group of one again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "tracepoint_id.h"

#define RUN_SECONDS	4
#define NR_ADDERS	3

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

struct shared {
	atomic_int stop;
	pid_t tid;		/* the thread whose context holds the group */
	int leader;
	long tp_id;
};

struct adder {
	struct shared *s;
	int index;
	unsigned long added;
	int error;
};

static void *add_siblings(void *arg)
{
	struct adder *a = arg;
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.read_format = PERF_FORMAT_GROUP;
	while (!atomic_load(&a->s->stop)) {
		int fds[4], i;

		for (i = 0; i < 4; i++) {
			if (a->s->tp_id >= 0 && (i + a->index) % 2) {
				attr.type = PERF_TYPE_TRACEPOINT;
				attr.config = a->s->tp_id;
			} else {
				attr.type = PERF_TYPE_SOFTWARE;
				attr.config = PERF_COUNT_SW_CPU_CLOCK;
			}
			/* Into the leader's task context, from another thread. */
			fds[i] = perf_open(&attr, a->s->tid, -1, a->s->leader);
			if (fds[i] < 0 && !a->error)
				a->error = errno;
		}
		for (i = 3; i >= 0; i--)
			if (fds[i] >= 0)
				close(fds[i]);
		a->added += 4;
	}
	return NULL;
}

static void *read_and_toggle(void *arg)
{
	struct shared *s = arg;
	uint64_t buf[1 + 4 * NR_ADDERS + 1];

	while (!atomic_load(&s->stop)) {
		ioctl(s->leader, PERF_EVENT_IOC_DISABLE, PERF_IOC_FLAG_GROUP);
		/* The member count changes under us; the call must just work. */
		if (read(s->leader, buf, sizeof(buf)) < 0 && errno != ENOSPC)
			return (void *)(long)errno;
		ioctl(s->leader, PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP);
	}
	return NULL;
}

TEST(siblings_from_threads)
{
	struct perf_event_attr attr;
	struct shared s = { .tp_id = tracepoint_id("sched/sched_switch") };
	struct adder adders[NR_ADDERS];
	pthread_t threads[NR_ADDERS], reader;
	uint64_t buf[2];
	void *ret;
	int i;

	if (s.tp_id < 0)
		ksft_print_msg("no tracefs: software siblings only\n");
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.read_format = PERF_FORMAT_GROUP;
	s.tid = syscall(SYS_gettid);
	s.leader = perf_open(&attr, s.tid, -1, -1);
	ASSERT_LE(0, s.leader) TH_LOG("leader: %s", strerror(errno));

	for (i = 0; i < NR_ADDERS; i++) {
		adders[i] = (struct adder){ .s = &s, .index = i };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, add_siblings, &adders[i]));
	}
	ASSERT_EQ(0, pthread_create(&reader, NULL, read_and_toggle, &s));
	sleep(RUN_SECONDS);
	atomic_store(&s.stop, 1);
	for (i = 0; i < NR_ADDERS; i++) {
		ASSERT_EQ(0, pthread_join(threads[i], NULL));
		EXPECT_EQ(0, adders[i].error) TH_LOG("adder %d: %s", i,
						     strerror(adders[i].error));
		EXPECT_GT(adders[i].added, 0);
	}
	ASSERT_EQ(0, pthread_join(reader, &ret));
	EXPECT_EQ(0, (long)ret) TH_LOG("group read: %s", strerror((long)ret));

	/* All siblings closed: a group of one. */
	ASSERT_EQ((ssize_t)sizeof(buf), read(s.leader, buf, sizeof(buf)));
	EXPECT_EQ(1, buf[0]);
	close(s.leader);
}

TEST_HARNESS_MAIN
