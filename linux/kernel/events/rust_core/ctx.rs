// SPDX-License-Identifier: GPL-2.0

//! Context reference counting, allocation and RCU freeing (slice S1).
//!
//! C: `get_ctx()`, `put_ctx()`, `free_ctx()`, `__perf_event_init_context()` and
//! `alloc_perf_context()` of `kernel/events/core.c`.
//!
//! A context allocated here is owned by its reference count from then on: there is no Rust owner
//! type, because C code passes `struct perf_event_context *` around and takes and drops
//! references itself. The memory comes from C's own `kzalloc_obj(struct perf_event_context)`
//! (the helper `perf_alloc_context()`, so the same kmalloc cache and fast path as C) and goes
//! back with `kfree()` in [`free_ctx`] after a grace period.

use crate::lock::{Ctx, CtxRef, TASK_TOMBSTONE};
use kernel::{
    bindings,
    prelude::*,
    static_lock_class,
    sync::{barrier, rcu, Refcount},
};

/// The RCU callback that releases a context, `free_ctx()` of `core.c`.
pub(crate) type CtxFreeFn = unsafe extern "C" fn(*mut bindings::callback_head);

/// Returns the reference count of `ctx`.
///
/// # Safety
///
/// `ctx` must point to a valid context, and the returned reference must not outlive it.
#[inline]
unsafe fn refcount<'a>(ctx: *mut bindings::perf_event_context) -> &'a Refcount {
    // SAFETY: The caller guarantees that the context is valid for `'a`.
    unsafe { Ctx::from_raw(ctx) }.refcount()
}

/// Takes a reference on `ctx`. C: `get_ctx()`.
///
/// # Safety
///
/// `ctx` must point to a valid context on which the caller holds a reference (or which the
/// caller otherwise keeps alive, e.g. a per-CPU context).
#[export]
pub(crate) unsafe extern "C" fn get_ctx(ctx: *mut bindings::perf_event_context) {
    // SAFETY: The caller guarantees that `ctx` is valid.
    unsafe { refcount(ctx) }.inc();
}

/// Drops a reference on `ctx`. C: `put_ctx()`.
///
/// The last reference drops the parent context's reference and the task's, and frees `ctx`
/// after an RCU grace period. A reference dropped on a context whose task has exited
/// (`TASK_TOMBSTONE`) wakes whoever waits for the count to fall (`wait_var_event()` in
/// `perf_event_exit_task_context()`).
///
/// # Safety
///
/// `ctx` must point to a valid context and the caller must own the reference it drops. Must not
/// be called with `ctx->lock` held.
#[export]
pub(crate) unsafe extern "C" fn put_ctx(ctx: *mut bindings::perf_event_context) {
    // SAFETY: Forwarded from the caller.
    unsafe { put(ctx) }
}

/// [`put_ctx`] for the Rust callers ([`CtxRef`]'s drop), inlined into them.
///
/// # Safety
///
/// As for [`put_ctx`].
#[inline(always)]
pub(crate) unsafe fn put(ctx: *mut bindings::perf_event_context) {
    // SAFETY: Forwarded from the caller; `free_ctx` releases a context allocated by
    // `alloc_perf_context`, the only allocator of contexts whose count can reach zero.
    unsafe { put_ctx_with(ctx, free_ctx) }
}

/// [`put_ctx`] with the RCU callback that releases the memory as a parameter, so that tests can
/// observe when the release happens.
///
/// # Safety
///
/// As for [`put_ctx`]; in addition `free` must be sound to call from RCU callback context on the
/// `rcu_head` of a context whose count reached zero.
///
/// Inlined into its callers (the exported [`put_ctx`] and [`put`]): all but the last
/// reference is one decrement and a check, as C's `put_ctx()` is in its callers; the release of
/// the last reference is [`release_ctx`], out of line.
#[inline]
pub(crate) unsafe fn put_ctx_with(ctx: *mut bindings::perf_event_context, free: CtxFreeFn) {
    // SAFETY: The caller guarantees that `ctx` is valid and that it owns a reference.
    let count = unsafe { refcount(ctx) };
    if count.dec_and_test() {
        // SAFETY: That was the last reference, and `free` is sound (both from the caller).
        unsafe { release_ctx(ctx, free) };
    } else {
        // Pairs with `wait_var_event()` in `perf_event_exit_task_context()`: the decrement above
        // is ordered before the read of `ctx->task` below.
        barrier::smp_mb__after_atomic();
        // SAFETY: `ctx` is valid: the count has not reached zero, so another reference keeps it
        // alive at least until the RCU read side ends, and `ctx->task` is written with
        // `WRITE_ONCE()` by `perf_event_exit_task_context()`, hence the volatile read (READ_ONCE).
        let task = unsafe { (&raw const (*ctx).task).read_volatile() };
        if task == TASK_TOMBSTONE {
            // SAFETY: `wake_up_var()` only hashes the address to find the wait queue.
            unsafe { bindings::wake_up_var((&raw mut (*ctx).refcount).cast()) };
        }
    }
}

/// Releases the context whose last reference [`put_ctx_with`] dropped: the parent's and the
/// task's references now, the memory after a grace period.
///
/// # Safety
///
/// `ctx`'s count must just have reached zero, and `free` must be sound to call from RCU callback
/// context on its `rcu_head`.
#[cold]
#[inline(never)]
unsafe fn release_ctx(ctx: *mut bindings::perf_event_context, free: CtxFreeFn) {
    // The last reference: nobody else can reach `ctx` any more but RCU readers, which only read
    // it and try (and fail) to take a reference.
    // SAFETY: `ctx` is valid until the RCU callback runs.
    let (parent, task) = unsafe { ((*ctx).parent_ctx, (*ctx).task) };
    if !parent.is_null() {
        // SAFETY: A child context owns a reference on its parent, which is dropped here.
        unsafe { put_ctx_with(parent, free) };
    }
    if !task.is_null() && task != TASK_TOMBSTONE {
        // SAFETY: A live task context owns a reference on its task (`alloc_perf_context`).
        unsafe { bindings::put_task_struct(task) };
    }
    // SAFETY: The context is unreachable but for RCU readers, its `rcu_head` is not queued (the
    // count reaches zero once) and stays valid until `free` releases the context.
    unsafe { rcu::call_rcu_raw(&raw mut (*ctx).callback_head, free) };
}

/// Releases a context after its grace period. C: `free_ctx()`.
///
/// # Safety
///
/// `head` must be the `rcu_head` of a context allocated by [`alloc_perf_context`] whose count
/// reached zero, queued once by [`put_ctx`].
unsafe extern "C" fn free_ctx(head: *mut bindings::callback_head) {
    // SAFETY: `head` is the `rcu_head` field of a `perf_event_context` (bindgen sees it as
    // `callback_head`: `rcu_head` is a macro for it).
    let ctx = unsafe { kernel::container_of!(head, bindings::perf_event_context, callback_head) };
    // SAFETY: The context came from `kzalloc()` in `alloc_ctx`; this is its only release.
    unsafe { bindings::kfree(ctx.cast()) };
}

/// Initialises the locks, lists, group trees and reference count (1) of `ctx`.
/// C: `__perf_event_init_context()`.
///
/// The lock classes are those of C's `raw_spin_lock_init(&ctx->lock)` and
/// `mutex_init(&ctx->mutex)` at this call site; `perf_event_init_all_cpus()` re-keys the per-CPU
/// contexts afterwards.
///
/// # Safety
///
/// `ctx` must point to a context that nothing else uses yet.
#[export]
pub(crate) unsafe extern "C" fn __perf_event_init_context(ctx: *mut bindings::perf_event_context) {
    // SAFETY: The caller guarantees exclusive access to a valid `ctx`; the lock class keys are
    // static, and the names are static C strings.
    unsafe {
        bindings::raw_spin_lock_init(
            &raw mut (*ctx).lock,
            c"&ctx->lock".as_char_ptr(),
            static_lock_class!().as_ptr(),
        );
        bindings::__mutex_init(
            &raw mut (*ctx).mutex,
            c"&ctx->mutex".as_char_ptr(),
            static_lock_class!().as_ptr(),
        );
        bindings::INIT_LIST_HEAD(&raw mut (*ctx).pmu_ctx_list);
        // C: perf_event_groups_init(), `RB_ROOT` is the empty tree. (Spelled out: a loop over
        // an array of the two is not unrolled, and calls `ExactSizeIterator::len()`.)
        (*ctx).pinned_groups.tree.rb_node = core::ptr::null_mut();
        (*ctx).pinned_groups.index = 0;
        (*ctx).flexible_groups.tree.rb_node = core::ptr::null_mut();
        (*ctx).flexible_groups.index = 0;
        bindings::INIT_LIST_HEAD(&raw mut (*ctx).event_list);
        refcount(ctx).set(1);
    }
}

/// Allocates and initialises a context, owning a reference on `task` if it is not NULL; the
/// caller owns the context's one reference.
///
/// # Safety
///
/// `task` must be NULL or point to a task on which the caller holds a reference.
#[inline]
pub(crate) unsafe fn alloc_ctx(task: *mut bindings::task_struct) -> Result<CtxRef> {
    // SAFETY: No precondition (`GFP_KERNEL`: the caller may sleep, as for C's `kzalloc()`). The
    // memory is released only by `free_ctx`, after the last `put_ctx()`.
    let ctx = unsafe { bindings::perf_alloc_context() };
    if ctx.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `ctx` is zeroed memory of the right size and alignment (all-zero is a valid
    // `perf_event_context`, as with C's `kzalloc()`), and nothing else knows of it yet.
    unsafe { __perf_event_init_context(ctx) };
    if !task.is_null() {
        // SAFETY: The caller holds a reference on `task`; this takes the context's own, dropped
        // by the last `put_ctx()`.
        unsafe {
            bindings::get_task_struct(task);
            (*ctx).task = task;
        }
    }
    // SAFETY: `__perf_event_init_context()` set the count to one: this reference.
    Ok(unsafe { CtxRef::from_raw(ctx) })
}

/// Allocates and initialises a context, owning a reference on `task` if it is not NULL.
/// Returns NULL if the allocation fails. C: `alloc_perf_context()`.
///
/// # Safety
///
/// `task` must be NULL or point to a task on which the caller holds a reference.
#[export]
pub(crate) unsafe extern "C" fn alloc_perf_context(
    task: *mut bindings::task_struct,
) -> *mut bindings::perf_event_context {
    // SAFETY: Forwarded from the caller.
    unsafe { alloc_ctx(task) }.map_or(core::ptr::null_mut(), CtxRef::into_raw)
}

#[kunit_tests(perf_rust_core_ctx)]
mod tests {
    use super::*;
    use crate::testing::alloc;
    use kernel::sync::atomic::{Atomic, Relaxed};

    /// Contexts released through [`counting_free`].
    static FREED: Atomic<usize> = Atomic::new(0);

    /// [`free_ctx`] that also counts the contexts it released.
    ///
    /// # Safety
    ///
    /// As for [`free_ctx`].
    unsafe extern "C" fn counting_free(head: *mut bindings::callback_head) {
        FREED.add(1, Relaxed);
        // SAFETY: Forwarded from the caller (`put_ctx_with`).
        unsafe { free_ctx(head) };
    }

    fn count(ctx: *mut bindings::perf_event_context) -> i32 {
        // SAFETY: The tests only pass contexts on which they hold a reference.
        unsafe { refcount(ctx) }.as_atomic().load(Relaxed)
    }

    fn task_usage(task: *mut bindings::task_struct) -> i32 {
        // SAFETY: `task` is the current task, which is alive while it runs this test;
        // `Refcount` is a transparent wrapper of `refcount_t`.
        unsafe { &*(&raw mut (*task).usage).cast::<Refcount>() }
            .as_atomic()
            .load(Relaxed)
    }

    #[test]
    fn init_leaves_an_empty_context_with_one_reference() -> Result {
        let ctx = alloc(core::ptr::null_mut())?;
        // SAFETY: `ctx` was just allocated and is only used here.
        unsafe {
            assert_eq!(count(ctx), 1);
            assert!((*ctx).task.is_null());
            assert!((*ctx).parent_ctx.is_null());
            for head in [&raw mut (*ctx).pmu_ctx_list, &raw mut (*ctx).event_list] {
                assert_eq!((*head).next, head);
                assert_eq!((*head).prev, head);
            }
            assert!((*ctx).pinned_groups.tree.rb_node.is_null());
            assert!((*ctx).flexible_groups.tree.rb_node.is_null());
            // The mutex and the raw spinlock are usable (and known to lockdep), in the lock
            // order. The lock class is that of every context, whose lock is taken under
            // `rq->lock`: always with interrupts off.
            let c = Ctx::from_raw(ctx);
            {
                let m = c.lock_mutex();
                drop(m.lock_irq());
            }
            drop(c.lock_irqsave());
            put_ctx(ctx);
        }
        Ok(())
    }

    #[test]
    fn refcount_and_task_reference_follow_get_and_put() -> Result {
        // SAFETY: Reading `current` has no requirements.
        let task = unsafe { bindings::get_current() };
        let usage = task_usage(task);
        let ctx = alloc(task)?;
        // SAFETY: The test holds the reference returned by `alloc`, and one more after `get_ctx`.
        unsafe {
            assert_eq!((*ctx).task, task);
            assert_eq!(task_usage(task), usage + 1);
            get_ctx(ctx);
            assert_eq!(count(ctx), 2);
            put_ctx_with(ctx, counting_free);
            assert_eq!(count(ctx), 1);
            assert_eq!(task_usage(task), usage + 1);
        }

        // Let callbacks queued earlier run before counting.
        rcu::barrier();
        let freed = FREED.load(Relaxed);
        let reader = rcu::read_lock();
        // SAFETY: The last reference, owned by the test.
        unsafe { put_ctx_with(ctx, counting_free) };
        let usage_after = task_usage(task);
        let freed_inside = FREED.load(Relaxed);
        drop(reader);
        // The task reference goes at once ...
        assert_eq!(usage_after, usage);
        // ... but the memory only after a grace period, which cannot end while this CPU is in
        // an RCU read-side critical section.
        assert_eq!(freed_inside, freed);
        rcu::barrier();
        assert_eq!(FREED.load(Relaxed), freed + 1);
        Ok(())
    }

    #[test]
    fn last_put_of_a_child_drops_the_parent_reference() -> Result {
        let parent = alloc(core::ptr::null_mut())?;
        let child = match alloc(core::ptr::null_mut()) {
            Ok(child) => child,
            Err(e) => {
                // SAFETY: The test owns the only reference.
                unsafe { put_ctx(parent) };
                return Err(e);
            }
        };
        rcu::barrier();
        let freed = FREED.load(Relaxed);
        // SAFETY: The test owns both contexts' references; the child takes one on the parent
        // as `perf_event_init_context()` does.
        unsafe {
            get_ctx(parent);
            (*child).parent_ctx = parent;
            assert_eq!(count(parent), 2);
            put_ctx_with(child, counting_free);
            assert_eq!(count(parent), 1);
            put_ctx_with(parent, counting_free);
        }
        rcu::barrier();
        assert_eq!(FREED.load(Relaxed), freed + 2);
        Ok(())
    }

    /// Queues a wait entry for `ctx->refcount` as `wait_var_event()` does, drops one of two
    /// references, and returns whether the put woke the entry.
    fn put_wakes_waiter(task: *mut bindings::task_struct) -> Result<bool> {
        let ctx = alloc(core::ptr::null_mut())?;
        // SAFETY: The test owns the context; the wait entry lives on this stack frame and is
        // removed from the queue by `finish_wait()` before the frame ends. No sleep happens
        // between `prepare_to_wait_event()` and `finish_wait()`.
        unsafe {
            (*ctx).task = task;
            get_ctx(ctx);
            let var = (&raw mut (*ctx).refcount).cast::<c_void>();
            let mut wbq: bindings::wait_bit_queue_entry = core::mem::zeroed();
            bindings::init_wait_var_entry(&mut wbq, var, 0);
            let wq = bindings::__var_waitqueue(var);
            bindings::prepare_to_wait_event(
                wq,
                &mut wbq.wq_entry,
                bindings::TASK_UNINTERRUPTIBLE as c_int,
            );
            put_ctx(ctx);
            // A woken entry is taken off the queue (autoremove_wake_function()).
            let entry = &raw mut wbq.wq_entry.entry;
            let woken = (*entry).next == entry;
            bindings::finish_wait(wq, &mut wbq.wq_entry);
            // The tombstone holds no task reference, so the last put must not drop one.
            put_ctx(ctx);
            Ok(woken)
        }
    }

    #[test]
    fn put_on_a_tombstoned_context_wakes_the_exit_waiter() -> Result {
        assert!(put_wakes_waiter(TASK_TOMBSTONE)?);
        // Control: without the tombstone, nobody is woken.
        assert!(!put_wakes_waiter(core::ptr::null_mut())?);
        Ok(())
    }
}
