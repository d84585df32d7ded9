// SPDX-License-Identifier: GPL-2.0

#include <linux/perf_event.h>
#include <linux/slab.h>

__rust_helper int rust_helper_perf_allow_cpu(void)
{
	return perf_allow_cpu();
}

/*
 * The allocations of alloc_perf_context() and find_get_pmu_context() in
 * kernel/events/core.c, spelled as there: with the size a constant, kzalloc()
 * picks its kmalloc cache at compile time and calls __kmalloc_cache_noprof().
 * (KBox passes its size at run time, through krealloc_node_align() and
 * __kmalloc_node_track_caller_noprof().) Inlined into the Rust core with
 * RUST_INLINE_HELPERS; released with kfree(), as in C.
 */
__rust_helper struct perf_event_context *rust_helper_perf_alloc_context(void)
{
	return kzalloc_obj(struct perf_event_context);
}

__rust_helper struct perf_event_pmu_context *rust_helper_perf_alloc_pmu_context(void)
{
	return kzalloc_obj(struct perf_event_pmu_context);
}
