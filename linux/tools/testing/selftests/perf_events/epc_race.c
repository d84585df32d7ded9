// SPDX-License-Identifier: GPL-2.0
/*
 * Open and close perf events from several threads at once, so that the last
 * put_pmu_ctx() of a PMU context (without ctx->mutex) races with
 * find_get_pmu_context() for the same context and PMU in another thread: the
 * race that put_pmu_ctx() closes by taking ctx->lock atomically with the final
 * decrement (atomic_dec_and_raw_lock_irqsave()), since commit 4f64a6c9f6f1
 * ("perf: Fix perf_event_pmu_context serialization"). Task events of the calling
 * process, task events bound to one CPU, per-CPU events on that CPU and
 * mixed-PMU groups (software + tracepoint: two PMU contexts in one context)
 * are used, for a bounded time.
 *
 * Passes if every open succeeds or fails with the errno the environment
 * explains, and nothing hangs; the kernel console is checked separately for
 * lockdep, refcount or list warnings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "tracepoint_id.h"

#define RUN_SECONDS	4
#define NR_THREADS	4

static long perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group)
{
	return syscall(__NR_perf_event_open, attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC);
}

static void sw_attr(struct perf_event_attr *attr, __u64 config)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->type = PERF_TYPE_SOFTWARE;
	attr->config = config;
	attr->exclude_kernel = 1;
}

struct racer {
	int index;
	long tp_id;
	unsigned long opened;
	int error;		/* first unexpected errno */
	atomic_int *stop;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct perf_event_attr sw, tp;

	sw_attr(&sw, PERF_COUNT_SW_CPU_CLOCK);
	memset(&tp, 0, sizeof(tp));
	tp.size = sizeof(tp);
	tp.type = PERF_TYPE_TRACEPOINT;
	tp.config = r->tp_id;

	while (!atomic_load(r->stop)) {
		int fds[4] = { -1, -1, -1, -1 }, n = 0, i;
		long fd;

		switch ((r->opened + r->index) % 4) {
		case 0: /* task event of this process */
			fds[n++] = perf_open(&sw, 0, -1, -1);
			break;
		case 1: /* task event bound to CPU 0 */
			fds[n++] = perf_open(&sw, 0, 0, -1);
			break;
		case 2: /* per-CPU event on CPU 0 (a CPU context: embedded epc) */
			fds[n++] = perf_open(&sw, -1, 0, -1);
			break;
		case 3: /* group over two PMUs: two epcs in one task context */
			fds[n++] = perf_open(&sw, 0, -1, -1);
			if (r->tp_id >= 0 && fds[0] >= 0)
				fds[n++] = perf_open(&tp, 0, -1, fds[0]);
			break;
		}
		for (i = 0; i < n; i++) {
			fd = fds[i];
			if (fd < 0 && !r->error)
				r->error = errno;
		}
		for (i = n - 1; i >= 0; i--)
			if (fds[i] >= 0)
				close(fds[i]);
		r->opened++;
	}
	return NULL;
}

TEST(epc_open_close_race)
{
	struct racer racers[NR_THREADS];
	pthread_t threads[NR_THREADS];
	atomic_int stop = 0;
	unsigned long total = 0;
	long tp_id = tracepoint_id("sched/sched_switch");
	int i;

	if (tp_id < 0)
		ksft_print_msg("no tracefs: groups use one PMU only\n");
	for (i = 0; i < NR_THREADS; i++) {
		racers[i] = (struct racer){ .index = i, .tp_id = tp_id, .stop = &stop };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, race, &racers[i]));
	}
	sleep(RUN_SECONDS);
	atomic_store(&stop, 1);
	for (i = 0; i < NR_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(threads[i], NULL));
		EXPECT_EQ(0, racers[i].error) {
			TH_LOG("thread %d: perf_event_open failed: %s", i,
			       strerror(racers[i].error));
		}
		total += racers[i].opened;
	}
	ksft_print_msg("%lu open/close rounds in %d s\n", total, RUN_SECONDS);
	EXPECT_GT(total, NR_THREADS);
}

TEST_HARNESS_MAIN
