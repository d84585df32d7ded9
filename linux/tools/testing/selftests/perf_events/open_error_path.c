// SPDX-License-Identifier: GPL-2.0
/*
 * sys_perf_event_open() failing after it obtained the event's PMU context
 * (find_get_pmu_context()): the error path must drop the pmu_ctx reference
 * and the context reference exactly once, in that order. Upstream commit
 * a551844e345b fixed a use-after-free of the pmu_ctx on this path.
 *
 * Two late failures are driven repeatedly, on a task context and on a CPU
 * context, each with the errno upstream returns:
 *  - E2BIG: a PERF_FORMAT_GROUP group grown until its read() size passes
 *    the limit (perf_event_validate_size());
 *  - EINVAL: PERF_FLAG_FD_OUTPUT to an event of another CPU
 *    (perf_event_set_output()).
 * The groups and events that were opened must still work afterwards (the
 * leader's read() reports the right number of members). The kernel console
 * is checked separately for KASAN/refcount/list/lockdep reports.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest_harness.h"

#define ROUNDS		200
#define MAX_MEMBERS	2048

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu,
		      int group, unsigned long flags)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group,
		       flags | PERF_FLAG_FD_CLOEXEC);
}

static void sw_attr(struct perf_event_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = PERF_TYPE_SOFTWARE;
	attr->config = PERF_COUNT_SW_DUMMY;
	attr->read_format = PERF_FORMAT_GROUP | PERF_FORMAT_ID |
			    PERF_FORMAT_LOST;
}

/* Grows a group until perf_event_open() fails; returns its size. */
static int grow(int *fds, pid_t pid, int cpu, int *err)
{
	struct perf_event_attr attr;
	int n;

	sw_attr(&attr);
	fds[0] = perf_open(&attr, pid, cpu, -1, 0);
	if (fds[0] < 0) {
		*err = errno;
		return 0;
	}
	for (n = 1; n < MAX_MEMBERS; n++) {
		fds[n] = perf_open(&attr, pid, cpu, fds[0], 0);
		if (fds[n] < 0) {
			*err = errno;
			return n;
		}
	}
	*err = 0;
	return n;
}

static void group_too_big(struct __test_metadata *_metadata, pid_t pid, int cpu)
{
	static int fds[MAX_MEMBERS];
	struct perf_event_attr attr;
	uint64_t buf[1 + 3 * MAX_MEMBERS];
	int n, err, i;

	n = grow(fds, pid, cpu, &err);
	ASSERT_GT(n, 1) TH_LOG("group leader: %s", strerror(err));
	ASSERT_EQ(E2BIG, err) TH_LOG("group of %d stopped with %s", n, strerror(err));

	/* The failing open, again and again: each gets and puts a pmu_ctx. */
	sw_attr(&attr);
	for (i = 0; i < ROUNDS; i++) {
		errno = 0;
		ASSERT_EQ(-1, perf_open(&attr, pid, cpu, fds[0], 0));
		ASSERT_EQ(E2BIG, errno);
	}

	/* The group is intact: nr, then value, id, lost per member. */
	ASSERT_EQ((ssize_t)((1 + 3 * n) * sizeof(uint64_t)),
		  read(fds[0], buf, sizeof(buf)));
	ASSERT_EQ((uint64_t)n, buf[0]);
	for (i = n - 1; i >= 0; i--)
		close(fds[i]);
}

TEST(task_group_too_big)
{
	group_too_big(_metadata, 0, -1);
}

TEST(cpu_group_too_big)
{
	group_too_big(_metadata, -1, 0);
}

TEST(output_to_another_cpu)
{
	struct perf_event_attr attr;
	int out, i;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two online CPUs");
	sw_attr(&attr);
	attr.read_format = 0;
	out = perf_open(&attr, -1, 0, -1, 0);
	ASSERT_LE(0, out) TH_LOG("CPU event: %s", strerror(errno));
	for (i = 0; i < ROUNDS; i++) {
		errno = 0;
		ASSERT_EQ(-1, perf_open(&attr, -1, 1, out,
					PERF_FLAG_FD_OUTPUT | PERF_FLAG_FD_NO_GROUP));
		ASSERT_EQ(EINVAL, errno);
		/* The same on a task context bound to CPU 1. */
		errno = 0;
		ASSERT_EQ(-1, perf_open(&attr, 0, 1, out,
					PERF_FLAG_FD_OUTPUT | PERF_FLAG_FD_NO_GROUP));
		ASSERT_EQ(EINVAL, errno);
	}
	close(out);
}

TEST_HARNESS_MAIN
