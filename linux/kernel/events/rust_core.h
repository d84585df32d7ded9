/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between kernel/events/core.c and the Rust perf core
 * (kernel/events/rust_core/perf_rust_core.rs), used with CONFIG_PERF_EVENTS_RUST_CORE.
 *
 * The functions below keep the names and the semantics of the static C
 * functions of core.c that they replace; core.c compiles those out when the
 * option is set. bindgen reads this header so that each Rust definition is
 * checked against its prototype (#[export]).
 */
#ifndef _KERNEL_EVENTS_RUST_CORE_H
#define _KERNEL_EVENTS_RUST_CORE_H

#ifdef CONFIG_PERF_EVENTS_RUST_CORE

struct perf_event;
struct perf_event_context;
struct perf_event_pmu_context;
struct pmu;
struct task_struct;

/* Slice S1: context reference counting, allocation and RCU freeing. */
void get_ctx(struct perf_event_context *ctx);
void put_ctx(struct perf_event_context *ctx);
void __perf_event_init_context(struct perf_event_context *ctx);
struct perf_event_context *alloc_perf_context(struct task_struct *task);

/* Slice S2: PMU contexts (epc), kernel/events/rust_core/epc.rs. */
void __perf_init_event_pmu_context(struct perf_event_pmu_context *epc,
				   struct pmu *pmu);
struct perf_event_pmu_context *
find_get_pmu_context(struct pmu *pmu, struct perf_event_context *ctx,
		     struct perf_event *event);
void get_pmu_ctx(struct perf_event_pmu_context *epc);
void put_pmu_ctx(struct perf_event_pmu_context *epc);

/*
 * Slice S3: finding, locking and pinning contexts,
 * kernel/events/rust_core/{event_lock,lookup}.rs.
 */
struct perf_event_context *perf_event_ctx_lock_nested(struct perf_event *event,
						      int nesting);
struct perf_event_context *perf_event_ctx_lock(struct perf_event *event);
void perf_event_ctx_unlock(struct perf_event *event,
			   struct perf_event_context *ctx);
struct perf_event_context *__must_check
unclone_ctx(struct perf_event_context *ctx);
struct perf_event_context *perf_pin_task_context(struct task_struct *task);
void perf_unpin_context(struct perf_event_context *ctx);
struct perf_event_context *find_get_context(struct task_struct *task,
					    struct perf_event *event);

/* Provided by core.c for the Rust core: the context of a CPU. */
struct perf_event_context *perf_cpu_ctx(int cpu);

/*
 * Slice S4: perf_pmu_migrate_context() (declared in <linux/perf_event.h>,
 * exported by core.c) is kernel/events/rust_core/migrate.rs. It moves events
 * with these two functions of core.c, static without the option.
 */
void perf_remove_from_context(struct perf_event *event, unsigned long flags);
void perf_install_in_context(struct perf_event_context *ctx,
			     struct perf_event *event, int cpu);

/* core.c defines the two functions above without static. */
#define __perf_rust_visible

#ifdef CONFIG_KUNIT
struct perf_event_attr;

/* For the KUnit suites: a CPU kernel counter in @leader's group. */
struct perf_event *
perf_event_create_kernel_sibling(struct perf_event_attr *attr,
				 struct perf_event *leader);
#endif

#else /* !CONFIG_PERF_EVENTS_RUST_CORE */

#define __perf_rust_visible static

#endif /* CONFIG_PERF_EVENTS_RUST_CORE */

#endif /* _KERNEL_EVENTS_RUST_CORE_H */
