// SPDX-License-Identifier: GPL-2.0

//! PMU context migration (slice S4): `perf_pmu_migrate_context()`.
//!
//! C: `perf_pmu_migrate_context()`, `__perf_pmu_remove()`, `__perf_pmu_install()` and
//! `__perf_pmu_install_event()` of `kernel/events/core.c`. The entry point keeps its name and
//! its `EXPORT_SYMBOL_GPL` (in `core.c`): uncore-style drivers (x86 RAPL, cstate and uncore,
//! many of `drivers/perf/`) call it from their CPU hotplug callbacks to move all events of their
//! PMU from a CPU going offline to one that stays, and the core calls it for scoped PMUs
//! (`perf_event_clear_cpumask()`).
//!
//! # Ownership
//!
//! Every moved event leaves the source CPU context with its references: the epc reference is
//! put at once ([`put_pmu_ctx`]), the context reference only once `event->ctx` points at the
//! destination, which took its own ([`get_ctx`]) first: the accounting that commit 889c58b3155f
//! ("perf/core: Fix cpuctx refcounting") restored. A CPU context's epc is embedded in
//! the PMU's per-CPU data, so finding the destination's ([`find_get_pmu_context`]) cannot fail.
//!
//! # Locking
//!
//! Both contexts' `ctx->mutex`, taken in address order ([`MutexPair`]); the removal and the
//! installation take `ctx->lock` themselves (C's `perf_remove_from_context()` and
//! `perf_install_in_context()`, which also reach the CPUs concerned). Between the two, a grace
//! period lets the events quiesce: lockless readers that found them in the source context are
//! done before they show up in the destination. The events sit on a private list
//! (`event->migrate_entry`) meanwhile, reachable from nowhere else.

use crate::{
    ctx::{get_ctx, put_ctx},
    epc::{find_get_pmu_context, put_pmu_ctx},
    lock::{Ctx, MutexHeld, MutexPair, Read},
};
use kernel::{bindings, ffi::c_int, prelude::*, sync::rcu};

/// `ctx->event_list` of the proof's context, in list order; the caller may take the event it was
/// handed last off the list.
fn events_of<'p>(held: &'p MutexHeld<'_>) -> impl Iterator<Item = *mut bindings::perf_event> + 'p {
    // SAFETY: The list head is part of the context, which the proof keeps alive.
    let head = unsafe { &raw mut (*held.ctx().as_raw()).event_list };
    // SAFETY: The list head is valid; the mutex keeps events from joining or leaving the list
    // except through the caller.
    unsafe { crate::list::links(head) }.map(|link| {
        // SAFETY: `link` is the `event_entry` of an event on the list.
        unsafe { kernel::container_of!(link, bindings::perf_event, event_entry) }
    })
}

/// Takes every event of `pmu` off the source context onto `events` (through `migrate_entry`),
/// dropping its epc reference; the context reference stays until it is installed elsewhere.
/// C: `__perf_pmu_remove()`.
fn remove(src: &MutexHeld<'_>, pmu: *mut bindings::pmu, events: *mut bindings::list_head) {
    for event in events_of(src) {
        // SAFETY: An event on the list is valid, with an epc while it is in a context.
        let epc = unsafe { (*event).pmu_ctx };
        // SAFETY: As above; an epc's PMU is immutable.
        if unsafe { (*epc).pmu } != pmu {
            continue;
        }
        // SAFETY: The caller holds the source context's mutex, which is `event->ctx`'s; the
        // event's reference on its epc is ours to drop once it is out of the context, and the
        // context stays alive (the event still holds its reference on it). `migrate_entry` is
        // unused while the event is in a context.
        unsafe {
            bindings::perf_remove_from_context(event, 0);
            put_pmu_ctx(epc);
            bindings::list_add(&raw mut (*event).migrate_entry, events);
        }
    }
}

/// Installs one removed event into the destination context on `cpu`.
/// C: `__perf_pmu_install_event()`.
///
/// # Safety
///
/// `event` was taken off its context by [`remove`] and holds a reference on it (`event->ctx`);
/// the caller holds the destination's mutex (`dst`) and has unlinked `migrate_entry`.
unsafe fn install_event(
    dst: &MutexHeld<'_>,
    pmu: *mut bindings::pmu,
    cpu: c_int,
    event: *mut bindings::perf_event,
) {
    let ctx = dst.ctx().as_raw();
    // SAFETY: Guaranteed by the caller: the event and its old context are valid, the
    // destination's mutex is held. The event's new context reference is taken before
    // `event->ctx` changes and the old one dropped after (the order of 889c58b3155f). A CPU
    // context's `find_get_pmu_context()` cannot fail.
    unsafe {
        let old = (*event).ctx;
        get_ctx(ctx);
        (*event).cpu = cpu;
        let epc = find_get_pmu_context(pmu, ctx, event);
        (*event).pmu_ctx = epc;
        if (*event).state >= bindings::perf_event_state_PERF_EVENT_STATE_OFF {
            (*event).state = bindings::perf_event_state_PERF_EVENT_STATE_INACTIVE;
        }
        bindings::perf_install_in_context(ctx, event, cpu);
        put_ctx(old);
    }
}

/// Installs the removed events into the destination context in two passes, group siblings
/// before their leaders: a sibling is not scheduled without its leader, but a leader schedules
/// its siblings, which must be in the new context by then. C: `__perf_pmu_install()`.
///
/// # Safety
///
/// `events` holds, through `migrate_entry`, only events taken off by [`remove`]; the caller
/// holds the destination's mutex (`dst`).
unsafe fn install(
    dst: &MutexHeld<'_>,
    pmu: *mut bindings::pmu,
    cpu: c_int,
    events: *mut bindings::list_head,
) {
    for leaders in [false, true] {
        // SAFETY: The list is private to this migration (see `perf_pmu_migrate_context`); only
        // the entry handed out last is unlinked.
        for link in unsafe { crate::list::links(events) } {
            // SAFETY: `link` is the `migrate_entry` of an event on the list.
            let event = unsafe { kernel::container_of!(link, bindings::perf_event, migrate_entry) };
            // SAFETY: The event is valid; `group_leader` does not change while it is out of
            // any context.
            let is_leader = unsafe { (*event).group_leader } == event;
            if leaders || !is_leader {
                // SAFETY: The entry is on the private list; unlinking it hands the event to
                // `install_event` with the caller's proof of the destination's mutex.
                unsafe {
                    bindings::list_del_init(link);
                    install_event(dst, pmu, cpu, event);
                }
            }
        }
    }
}

/// Moves every event of `pmu` from the context of CPU `src_cpu` to that of `dst_cpu`.
/// C: `perf_pmu_migrate_context()`, exported (`EXPORT_SYMBOL_GPL` in `core.c`) for drivers.
///
/// # Safety
///
/// `pmu` must be a registered PMU, both CPUs possible CPUs; the caller must be able to sleep
/// and must keep `dst_cpu` online (a CPU hotplug callback, as the drivers call it).
#[export]
pub(crate) unsafe extern "C" fn perf_pmu_migrate_context(
    pmu: *mut bindings::pmu,
    src_cpu: c_int,
    dst_cpu: c_int,
) {
    // SAFETY: Both CPUs are possible CPUs; the per-CPU contexts are static, so no reference is
    // needed to keep them.
    let (src, dst) = unsafe {
        (
            Ctx::from_raw(bindings::perf_cpu_ctx(src_cpu)),
            Ctx::from_raw(bindings::perf_cpu_ctx(dst_cpu)),
        )
    };
    // Moving events to the CPU they are on moves nothing (C would deadlock, taking the same
    // mutex twice).
    let Some(both) = MutexPair::lock(src, dst) else {
        return;
    };
    let mut events = bindings::list_head {
        next: core::ptr::null_mut(),
        prev: core::ptr::null_mut(),
    };
    let list = &raw mut events;
    // SAFETY: `list` is a local list head that lives until the end of the function.
    unsafe { bindings::INIT_LIST_HEAD(list) };

    remove(both.first(), pmu, list);
    // SAFETY: `list` is initialised.
    if unsafe { bindings::list_empty(list) } {
        return;
    }
    // Wait for the events to quiesce before re-instating them.
    rcu::synchronize();
    // SAFETY: `list` holds only the events `remove` took off; `both` holds the destination's
    // mutex.
    unsafe { install(both.second(), pmu, dst_cpu, list) };
}

#[kunit_tests(perf_rust_core_migrate)]
mod tests {
    use super::*;
    use crate::epc::cpu_epc;

    /// A counting `cpu-clock` event on a CPU, made as the watchdog makes its own.
    struct CpuClock(*mut bindings::perf_event);

    impl CpuClock {
        fn attr() -> bindings::perf_event_attr {
            // SAFETY: All-zero is a valid `struct perf_event_attr`.
            let mut attr: bindings::perf_event_attr = unsafe { core::mem::zeroed() };
            attr.type_ = bindings::perf_type_id_PERF_TYPE_SOFTWARE;
            attr.config = u64::from(bindings::perf_sw_ids_PERF_COUNT_SW_CPU_CLOCK);
            attr.size = core::mem::size_of::<bindings::perf_event_attr>() as u32;
            attr
        }

        /// A group leader (or a singleton) on `cpu`.
        fn new(cpu: c_int) -> Result<Self> {
            // SAFETY: The attributes are valid for the call; no task, no overflow handler.
            let event = unsafe {
                bindings::perf_event_create_kernel_counter(
                    &mut Self::attr(),
                    cpu,
                    core::ptr::null_mut(),
                    None,
                    core::ptr::null_mut(),
                )
            };
            kernel::error::from_err_ptr(event)?;
            Ok(Self(event))
        }

        /// A sibling in `leader`'s group.
        fn sibling(leader: &CpuClock) -> Result<Self> {
            // SAFETY: The attributes are valid for the call; `leader` is a live CPU counter.
            let event =
                unsafe { bindings::perf_event_create_kernel_sibling(&mut Self::attr(), leader.0) };
            kernel::error::from_err_ptr(event)?;
            Ok(Self(event))
        }

        /// The count, the time enabled and the time running.
        fn read(&self) -> (u64, u64, u64) {
            let (mut enabled, mut running) = (0, 0);
            // SAFETY: The event is valid until dropped.
            let count =
                unsafe { bindings::perf_event_read_value(self.0, &mut enabled, &mut running) };
            (count, enabled, running)
        }

        fn pmu(&self) -> *mut bindings::pmu {
            // SAFETY: The event is valid until dropped; its PMU never changes.
            unsafe { (*self.0).pmu }
        }

        /// `event->cpu`, `event->ctx` and `event->pmu_ctx->ctx`.
        fn placement(
            &self,
        ) -> (
            c_int,
            *mut bindings::perf_event_context,
            *mut bindings::perf_event_context,
        ) {
            // SAFETY: The event is valid and in a context, so it has an epc.
            unsafe { ((*self.0).cpu, (*self.0).ctx, (*(*self.0).pmu_ctx).ctx) }
        }

        /// `event->group_leader`.
        fn leader(&self) -> *mut bindings::perf_event {
            // SAFETY: The event is valid until dropped.
            let ctx = unsafe { Ctx::from_raw((*self.0).ctx) };
            // Group links change under both locks; either is enough to read them.
            let _held = ctx.lock_mutex();
            // SAFETY: As above.
            unsafe { (*self.0).group_leader }
        }

        /// The siblings of a group leader, in group order.
        fn siblings(&self) -> Result<KVec<*mut bindings::perf_event>> {
            assert_eq!(self.leader(), self.0);
            let mut siblings = KVec::new();
            // SAFETY: The event is valid until dropped.
            let ctx = unsafe { Ctx::from_raw((*self.0).ctx) };
            let _held = ctx.lock_mutex();
            // SAFETY: A leader's `sibling_list` heads the list of its siblings' `sibling_list`
            // entries, stable under the mutex.
            for link in unsafe { crate::list::links(&raw mut (*self.0).sibling_list) } {
                // SAFETY: `link` is the `sibling_list` of a sibling.
                let sibling =
                    unsafe { kernel::container_of!(link, bindings::perf_event, sibling_list) };
                siblings.push(sibling, GFP_KERNEL)?;
            }
            Ok(siblings)
        }
    }

    impl Drop for CpuClock {
        fn drop(&mut self) {
            // SAFETY: The test's own kernel counter, released once.
            unsafe { bindings::perf_event_release_kernel(self.0) };
        }
    }

    /// `ctx->refcount` of a CPU context.
    fn ctx_refs(cpu: c_int) -> i32 {
        // SAFETY: The per-CPU contexts are static and initialised.
        unsafe { Ctx::from_raw(bindings::perf_cpu_ctx(cpu)) }
            .refcount()
            .read()
    }

    /// Of `pmu`'s epc on `cpu`: its count, its number of events, whether it is on CPU `cpu`'s
    /// context list and whether it has active events.
    fn epc_state(pmu: *mut bindings::pmu, cpu: c_int) -> (i32, u32, bool, bool) {
        // SAFETY: `pmu` is registered (the test holds an event of it), `cpu` is possible.
        let epc = unsafe { cpu_epc(pmu, cpu) }.as_raw();
        // SAFETY: The per-CPU contexts are static and initialised.
        let ctx = unsafe { Ctx::from_raw(bindings::perf_cpu_ctx(cpu)) };
        let lock = ctx.lock_irqsave();
        let linked = crate::epc::epcs(&lock).any(|e| e.as_raw() == epc);
        // SAFETY: The epc is valid (as above); its fields change under `ctx->lock`, held.
        let state = unsafe {
            (
                (*epc).refcount.counter,
                (*epc).nr_events,
                linked,
                !bindings::list_empty(&(*epc).pinned_active)
                    || !bindings::list_empty(&(*epc).flexible_active),
            )
        };
        drop(lock);
        state
    }

    /// The first of `events` that does not count all the time over a few milliseconds (its count
    /// grows, its time running grows as much as its time enabled), if any.
    fn not_counting<'a>(events: impl IntoIterator<Item = &'a CpuClock>) -> Option<usize> {
        events.into_iter().position(|e| {
            let (count, enabled, running) = e.read();
            // SAFETY: No requirements.
            unsafe { bindings::msleep(2) };
            let (count2, enabled2, running2) = e.read();
            count2 <= count || enabled2 - enabled != running2 - running
        })
    }

    #[test]
    fn a_group_and_singletons_move_with_their_references() -> Result {
        // CPU 1 must be online: the guests of the test suites have two CPUs.
        drop(CpuClock::new(1)?);
        let leader = CpuClock::new(0)?;
        let events = [
            CpuClock::sibling(&leader)?,
            CpuClock::sibling(&leader)?,
            CpuClock::new(0)?,
            CpuClock::new(0)?,
        ];
        let all = [&leader, &events[0], &events[1], &events[2], &events[3]];
        let (s1, s2) = (events[0].0, events[1].0);
        assert_eq!(leader.siblings()?[..], [s1, s2]);
        let pmu = leader.pmu();
        let (src_ctx, dst_ctx) = (ctx_refs(0), ctx_refs(1));
        let (src_epc, src_nr, true, true) = epc_state(pmu, 0) else {
            panic!("CPU 0's epc is not linked or has no active events");
        };
        let (dst_epc, dst_nr, true, false) = epc_state(pmu, 1) else {
            panic!("CPU 1's epc is not linked or has active events");
        };
        assert_eq!((src_nr, dst_nr), (5, 0));
        assert_eq!(not_counting(all), None);

        // SAFETY: A registered PMU, two online CPUs, a context that may sleep.
        unsafe { perf_pmu_migrate_context(pmu, 0, 1) };

        // SAFETY: CPU 1's context is static.
        let dst = unsafe { bindings::perf_cpu_ctx(1) };
        for e in all {
            assert_eq!(e.placement(), (1, dst, dst));
        }
        // The group is whole, in its order; the siblings still follow their leader.
        assert_eq!(leader.siblings()?[..], [s1, s2]);
        assert_eq!(
            (events[0].leader(), events[1].leader()),
            (leader.0, leader.0)
        );
        assert!(events[2].siblings()?.is_empty() && events[3].siblings()?.is_empty());
        // Each event's context and epc references moved from CPU 0 to CPU 1: CPU 0's epc kept
        // only the references it had without them, and no event; CPU 1's (linked by its first
        // event) took them. The embedded epcs stay linked.
        assert_eq!(ctx_refs(0), src_ctx - 5);
        assert_eq!(ctx_refs(1), dst_ctx + 5);
        assert_eq!(epc_state(pmu, 0), (src_epc - 5, 0, true, false));
        assert_eq!(epc_state(pmu, 1), (dst_epc + 5, dst_nr + 5, true, true));

        // They keep counting, on CPU 1 now, the group scheduled as one.
        assert_eq!(not_counting(all), None);
        drop((events, leader));
        assert_eq!(ctx_refs(1), dst_ctx);
        assert_eq!(epc_state(pmu, 1), (dst_epc, dst_nr, true, false));
        Ok(())
    }

    #[test]
    fn the_same_cpu_is_refused() -> Result {
        let e = CpuClock::new(0)?;
        let refs = ctx_refs(0);
        // SAFETY: As above; the call moves nothing.
        unsafe { perf_pmu_migrate_context(e.pmu(), 0, 0) };
        assert_eq!(e.placement().0, 0);
        assert_eq!(ctx_refs(0), refs);
        Ok(())
    }
}
