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
 * and one uncore-like PMU, to test perf_pmu_migrate_context():
 *
 *   test_uncore   CPU events only (task_ctx_nr == perf_invalid_context, so
 *                 the core refuses task events with -EINVAL), served by one
 *                 CPU at a time, which its sysfs cpumask names: event_init
 *                 moves every event to that CPU, as the RAPL and Intel uncore
 *                 drivers do. It prefers the highest-numbered online CPU:
 *                 when that CPU goes offline it migrates its events to the
 *                 highest other online CPU (as arm-cci does to any other),
 *                 and when a higher CPU comes online it migrates them there
 *                 (as arm-cmn does to a CPU of its NUMA node). So taking
 *                 the last CPU offline and online again migrates twice.
 *                 Sixteen counters per CPU.
 *
 * An event counts the nanoseconds (local_clock()) it is scheduled in on a
 * CPU, whatever the exclude_* bits say. config must be 0. Events are
 * counting-only: the core rejects sampling with -EOPNOTSUPP
 * (PERF_PMU_CAP_NO_INTERRUPT). ->add() fails with -EAGAIN once a CPU's
 * counters are in use, so groups fail to schedule and the core rotates.
 *
 * Locking: ->add(), ->del(), ->start(), ->stop() and ->read() run on the
 * event's CPU with interrupts disabled (the core's rule for PMU callbacks);
 * the per-CPU counter use count needs nothing more. test_uncore's CPU is
 * written by its hotplug callbacks only, which the CPU hotplug lock
 * serialises, and read locklessly by event_init and sysfs: an event opened
 * while its CPU migrates may stay on the old CPU, as with the drivers it
 * mimics.
 */

#include <linux/cpuhotplug.h>
#include <linux/cpumask.h>
#include <linux/device.h>
#include <linux/init.h>
#include <linux/percpu.h>
#include <linux/perf_event.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>

#define TEST_PMU_COUNTERS	4
#define TEST_UNCORE_COUNTERS	16

struct test_pmu {
	struct pmu pmu;
	const char *name;
	bool task_data;
	bool cpu0_only;
	bool uncore;
	int counters;
	/* test_uncore: the CPU that serves its events, -1 before hotplug setup. */
	int cpu;
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
	{ .name = "test_uncore", .uncore = true, .counters = TEST_UNCORE_COUNTERS, .cpu = -1 },
};

/* The one uncore-like PMU, for its hotplug callbacks. */
static struct test_pmu *test_uncore;

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

	if (to_test_pmu(event->pmu)->uncore) {
		int cpu = READ_ONCE(to_test_pmu(event->pmu)->cpu);

		/*
		 * A task event on any CPU: EINVAL, as the core answers every
		 * task event of a PMU without a task context.
		 */
		if (event->cpu < 0)
			return -EINVAL;
		if (cpu < 0)
			return -ENODEV;
		event->cpu = cpu;
	}

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
	struct test_pmu *tp = to_test_pmu(event->pmu);
	int *used = this_cpu_ptr(tp->used);

	if (*used >= (tp->counters ?: TEST_PMU_COUNTERS))
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

static ssize_t cpumask_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct test_pmu *tp = to_test_pmu(dev_get_drvdata(dev));
	int cpu = READ_ONCE(tp->cpu);

	if (cpu < 0)
		return sysfs_emit(buf, "\n");
	return cpumap_print_to_pagebuf(true, buf, cpumask_of(cpu));
}
static DEVICE_ATTR_RO(cpumask);

static struct attribute *test_uncore_attrs[] = {
	&dev_attr_cpumask.attr,
	NULL,
};

static const struct attribute_group test_uncore_attr_group = {
	.attrs = test_uncore_attrs,
};

static const struct attribute_group *test_uncore_attr_groups[] = {
	&test_uncore_attr_group,
	NULL,
};

/*
 * test_uncore's hotplug callbacks (CPUHP_AP_ONLINE_DYN: they run on the CPU
 * coming up after perf_event_init_cpu(), and on the CPU going down before
 * perf_event_exit_cpu(), with the CPU hotplug lock held).
 */
static int test_uncore_online(unsigned int cpu)
{
	struct test_pmu *tp = test_uncore;

	if (tp->cpu >= (int)cpu)
		return 0;
	if (tp->cpu >= 0)
		perf_pmu_migrate_context(&tp->pmu, tp->cpu, cpu);
	WRITE_ONCE(tp->cpu, cpu);
	return 0;
}

static int test_uncore_offline(unsigned int cpu)
{
	struct test_pmu *tp = test_uncore;
	int target = -1, c;

	if (tp->cpu != (int)cpu)
		return 0;
	for_each_online_cpu(c) {
		if (c != cpu)
			target = c;
	}
	/* The last CPU does not go offline; should it, the events stay. */
	if (target < 0)
		return 0;
	perf_pmu_migrate_context(&tp->pmu, cpu, target);
	WRITE_ONCE(tp->cpu, target);
	return 0;
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

	if (tp->uncore) {
		tp->pmu.task_ctx_nr = perf_invalid_context;
		tp->pmu.attr_groups = test_uncore_attr_groups;
	}

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

	if (tp->uncore) {
		test_uncore = tp;
		ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "perf/test_uncore:online",
					test_uncore_online, test_uncore_offline);
		if (ret < 0)
			goto unregister;
	}

	return 0;

unregister:
	test_uncore = NULL;
	perf_pmu_unregister(&tp->pmu);

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
