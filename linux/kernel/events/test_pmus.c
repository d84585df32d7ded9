// SPDX-License-Identifier: GPL-2.0
/*
 * Hardware-context test PMUs, to test the perf core where no hardware PMU is
 * present (an x86 guest under QEMU TCG has none).
 *
 * Since the 2022 context rewrite one task context holds one PMU context (epc)
 * per PMU, and the paths that only hardware PMUs take - a group that may not
 * mix two hardware PMUs, the move of a software group into a hardware PMU
 * context (move_group), per-task PMU data (task->perf_ctx_data), counter
 * scheduling that fails and multiplexes - need PMUs with task_ctx_nr ==
 * perf_hw_context. These three provide them:
 *
 *   test_hw_a     a hardware-context PMU with TEST_PMU_COUNTERS counters per CPU
 *   test_hw_b     the same, a second PMU: test_hw_a and test_hw_b events may
 *                 not share a group
 *   test_hw_data  the same, and each task event attaches per-task PMU data
 *                 (PERF_ATTACH_TASK_DATA, pmu->task_ctx_cache), as the x86 LBR
 *                 call-stack mode does
 *   test_hw_cpu0  the same, on CPU 0 only, as arm_pmu is on the CPUs of one
 *                 cluster of a heterogeneous system: ->filter() keeps its
 *                 events off the other CPUs, event_init refuses CPU events
 *                 there (-ENOENT)
 *
 * An event counts the nanoseconds (local_clock()) it is scheduled in on a
 * CPU, whatever the exclude_* bits say. config must be 0. Events are
 * counting-only: the core rejects sampling with -EOPNOTSUPP
 * (PERF_PMU_CAP_NO_INTERRUPT). ->add() fails with -EAGAIN once a CPU's
 * counters are in use, so groups fail to schedule and the core rotates.
 *
 * Locking: ->add(), ->del(), ->start(), ->stop() and ->read() run on the
 * event's CPU with interrupts disabled (the core's rule for PMU callbacks);
 * the per-CPU counter use count needs nothing more.
 */

#include <linux/cpumask.h>
#include <linux/init.h>
#include <linux/percpu.h>
#include <linux/perf_event.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>

#define TEST_PMU_COUNTERS	4

struct test_pmu {
	struct pmu pmu;
	const char *name;
	bool task_data;
	bool cpu0_only;
	int __percpu *used;
};

/* What task->perf_ctx_data holds for test_hw_data: only its size matters. */
struct test_pmu_task_data {
	u64 reserved[4];
};

static struct test_pmu test_pmus[] = {
	{ .name = "test_hw_a" },
	{ .name = "test_hw_b" },
	{ .name = "test_hw_data", .task_data = true },
	{ .name = "test_hw_cpu0", .cpu0_only = true },
};

static struct test_pmu *to_test_pmu(struct pmu *pmu)
{
	return container_of(pmu, struct test_pmu, pmu);
}

static int test_pmu_event_init(struct perf_event *event)
{
	if (event->attr.type != event->pmu->type)
		return -ENOENT;

	if (event->attr.config || has_branch_stack(event))
		return -EINVAL;

	if (to_test_pmu(event->pmu)->cpu0_only && event->cpu > 0)
		return -ENOENT;

	/*
	 * Only task events get per-task data: for a CPU event the core would
	 * attach it to every task in the system.
	 */
	if (to_test_pmu(event->pmu)->task_data && event->hw.target)
		event->attach_state |= PERF_ATTACH_TASK_DATA;

	/* Not counting until ->add() starts it. */
	event->hw.state = PERF_HES_STOPPED | PERF_HES_UPTODATE;
	return 0;
}

static void test_pmu_update(struct perf_event *event)
{
	u64 now = local_clock();
	u64 prev = local64_xchg(&event->hw.prev_count, now);

	local64_add(now - prev, &event->count);
}

static void test_pmu_start(struct perf_event *event, int flags)
{
	local64_set(&event->hw.prev_count, local_clock());
	event->hw.state = 0;
}

static void test_pmu_stop(struct perf_event *event, int flags)
{
	if (event->hw.state & PERF_HES_STOPPED)
		return;

	test_pmu_update(event);
	event->hw.state = PERF_HES_STOPPED | PERF_HES_UPTODATE;
}

static int test_pmu_add(struct perf_event *event, int flags)
{
	int *used = this_cpu_ptr(to_test_pmu(event->pmu)->used);

	if (*used >= TEST_PMU_COUNTERS)
		return -EAGAIN;

	(*used)++;
	event->hw.state = PERF_HES_STOPPED | PERF_HES_UPTODATE;
	if (flags & PERF_EF_START)
		test_pmu_start(event, flags);

	return 0;
}

static void test_pmu_del(struct perf_event *event, int flags)
{
	int *used = this_cpu_ptr(to_test_pmu(event->pmu)->used);

	test_pmu_stop(event, PERF_EF_UPDATE);
	if (!WARN_ON_ONCE(*used <= 0))
		(*used)--;
}

static void test_pmu_read(struct perf_event *event)
{
	if (!(event->hw.state & PERF_HES_STOPPED))
		test_pmu_update(event);
}

/*
 * test_hw_cpu0's ->filter(), after armpmu_filter(): true means the core must
 * not schedule this PMU's events on @cpu.
 */
static bool test_pmu_filter_cpu0(struct pmu *pmu, int cpu)
{
	return cpu != 0;
}

static int __init test_pmu_register(struct test_pmu *tp)
{
	int ret;

	tp->used = alloc_percpu(int);
	if (!tp->used)
		return -ENOMEM;

	tp->pmu = (struct pmu) {
		.task_ctx_nr	= perf_hw_context,
		.capabilities	= PERF_PMU_CAP_NO_INTERRUPT,
		.event_init	= test_pmu_event_init,
		.add		= test_pmu_add,
		.del		= test_pmu_del,
		.start		= test_pmu_start,
		.stop		= test_pmu_stop,
		.read		= test_pmu_read,
	};

	if (tp->cpu0_only)
		tp->pmu.filter = test_pmu_filter_cpu0;

	if (tp->task_data) {
		tp->pmu.task_ctx_cache = KMEM_CACHE(test_pmu_task_data, 0);
		if (!tp->pmu.task_ctx_cache) {
			ret = -ENOMEM;
			goto free_used;
		}
	}

	ret = perf_pmu_register(&tp->pmu, tp->name, -1);
	if (ret)
		goto free_cache;

	return 0;

free_cache:
	kmem_cache_destroy(tp->pmu.task_ctx_cache);
free_used:
	free_percpu(tp->used);
	return ret;
}

static int __init test_pmus_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(test_pmus); i++) {
		ret = test_pmu_register(&test_pmus[i]);
		if (ret) {
			pr_err("perf: test PMU %s: %d\n", test_pmus[i].name, ret);
			return ret;
		}
	}

	return 0;
}
device_initcall(test_pmus_init);
