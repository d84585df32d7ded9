// SPDX-License-Identifier: GPL-2.0

//! Finding, locking and pinning contexts (slice S3).
//!
//! C: `unclone_ctx()`, `perf_lock_task_context()`, `perf_pin_task_context()`,
//! `perf_unpin_context()` and `find_get_context()` of `kernel/events/core.c`.
//!
//! # Lookup
//!
//! A task's context is `task->perf_event_ctxp`, an `__rcu` pointer: published under
//! `task->perf_event_mutex` by [`find_get_context`], cleared by `perf_event_exit_task_context()`,
//! and **swapped between two tasks** by the clone optimisation in
//! `perf_event_context_sched_out()` (under both contexts' `ctx->lock`, without any mutex) when
//! parent and child contexts are equal. So a lookup reads the pointer under RCU with interrupts
//! off, takes `ctx->lock`, and checks that the task still points to that context; if it does,
//! the context cannot be swapped away any more while the lock is held. Pinning it
//! (`ctx->pin_count`) keeps it on its task after the lock is released.
//!
//! # Locking
//!
//! `pin_count`, `parent_ctx`, `parent_gen` and `generation` are `ctx->lock`-only fields
//! ([`SpinHeld`]). [`TaskCtxLocked`] is `perf_lock_task_context()`'s result: interrupts saved
//! and disabled *before* the RCU read-side section began, `ctx->lock` held, and a reference.
//! Un-cloning under it defers the parent's `put_ctx()` to after the unlock, because `put_ctx()`
//! may take scheduler locks and `ctx->lock` nests inside those: the Rust code cannot drop the
//! parent's reference while the lock is held.

use crate::{
    ctx::alloc_ctx,
    lock::{Ctx, CtxRef, LockAssumed, LockHeld, SpinHeld, TASK_TOMBSTONE},
    warn_on_once,
};
use kernel::{
    bindings,
    prelude::*,
    sync::{
        lock::{
            mutex::MutexBackend,
            raw_spinlock::{LocalIrqSave, RawSpinLockBackend},
            Lock,
        },
        rcu,
    },
};

/// A task's context found and locked: the result of `perf_lock_task_context()`.
///
/// Dropping it releases, in this order: `ctx->lock`, the saved interrupt state, the parent
/// reference an [`unclone`](Self::unclone) took over, and the context's own reference.
/// [`unlock`](Self::unlock) does the same but hands the context's reference to the caller.
///
/// # Invariants
///
/// `this` keeps the context of `lock` alive for as long as `lock` lives (fields drop in
/// declaration order), which is what makes `'static` sound.
pub(crate) struct TaskCtxLocked {
    lock: LockHeld<'static, RawSpinLockBackend>,
    _irqs: LocalIrqSave,
    parent: Option<CtxRef>,
    this: CtxRef,
}

impl TaskCtxLocked {
    /// Makes the context stop being a clone of its parent (C: `unclone_ctx()`); the parent's
    /// reference is dropped after `ctx->lock` is released.
    pub(crate) fn unclone(&mut self) {
        let parent = self.lock.take_parent();
        warn_on_once!(self.parent.is_some());
        if !parent.is_null() {
            // SAFETY: A child context owns a reference on its parent, which `take_parent` handed
            // to us.
            self.parent = Some(unsafe { CtxRef::from_raw(parent) });
        }
    }

    /// Releases `ctx->lock` and restores interrupts, then drops the parent's reference if
    /// [`unclone`](Self::unclone) took one; returns the context's reference.
    #[inline]
    pub(crate) fn unlock(self) -> CtxRef {
        let Self {
            lock,
            _irqs,
            parent,
            this,
        } = self;
        drop(lock);
        drop(_irqs);
        drop(parent);
        this
    }
}

impl core::ops::Deref for TaskCtxLocked {
    type Target = LockHeld<'static, RawSpinLockBackend>;

    fn deref(&self) -> &Self::Target {
        &self.lock
    }
}

/// `task->perf_event_ctxp`.
///
/// # Safety
///
/// `task` must point to a valid task.
unsafe fn ctxp(task: *mut bindings::task_struct) -> *mut *mut bindings::perf_event_context {
    // SAFETY: The caller guarantees that `task` is valid; only the field's address is computed.
    unsafe { &raw mut (*task).perf_event_ctxp }
}

/// Finds `task`'s context, takes a reference and returns with `ctx->lock` held and interrupts
/// off; `None` if the task has no context or its context is dead (`TASK_TOMBSTONE`, or the count
/// reached zero). C: `perf_lock_task_context()`.
///
/// # Safety
///
/// `task` must be a valid task on which the caller holds a reference.
// `always`: three call sites, and LLVM keeps one out-of-line copy with `#[inline]` alone (C's
// `perf_lock_task_context()` is inlined into its two callers).
#[inline(always)]
pub(crate) unsafe fn perf_lock_task_context(
    task: *mut bindings::task_struct,
) -> Option<TaskCtxLocked> {
    loop {
        // Interrupts go off before the RCU read-side section starts: the section ends while
        // `ctx->lock`, which nests inside `rq->lock`, is held, and preemptible RCU does not allow
        // that for a section that was partly run with interrupts on (rcu_read_unlock_special()).
        // Locals drop in reverse order: unlock, rcu_read_unlock(), local_irq_restore(), as C.
        let irqs = LocalIrqSave::new();
        let rcu = rcu::read_lock();
        // SAFETY: `task` is valid; `perf_event_ctxp` is an `__rcu` field written only with the
        // RCU accessors, and contexts are freed after a grace period.
        let ptr = unsafe { rcu::dereference(ctxp(task), &rcu) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: The context was reachable under RCU, so it stays allocated until `rcu` ends;
        // `'static` is kept only if a reference is taken below (see `TaskCtxLocked`).
        let ctx: &'static Ctx = unsafe { Ctx::from_raw(ptr) };
        // Interrupts are off already, so the plain `raw_spin_lock()` is C's.
        let lock = ctx.lock_irqs_off(&irqs);
        // The clone optimisation may have swapped the context to another task before we got
        // the lock; once we hold it, it cannot any more.
        // SAFETY: As above.
        if ptr != unsafe { rcu::dereference(ctxp(task), &rcu) } {
            continue;
        }
        if ctx.task() == TASK_TOMBSTONE {
            return None;
        }
        let this = CtxRef::try_get(ctx)?;
        warn_on_once!(ctx.task() != task);
        drop(rcu);
        // INVARIANT: `this` owns a reference on the locked context.
        return Some(TaskCtxLocked {
            lock,
            _irqs: irqs,
            parent: None,
            this,
        });
    }
}

/// Takes a reference on `task`'s context and pins it to the task (so that the clone optimisation
/// does not swap it away); NULL if the task has none. C: `perf_pin_task_context()`.
///
/// # Safety
///
/// `task` must be a valid task on which the caller holds a reference.
#[export]
pub(crate) unsafe extern "C" fn perf_pin_task_context(
    task: *mut bindings::task_struct,
) -> *mut bindings::perf_event_context {
    // SAFETY: Forwarded from the caller.
    match unsafe { perf_lock_task_context(task) } {
        Some(locked) => {
            locked.pin();
            locked.unlock().into_raw()
        }
        None => core::ptr::null_mut(),
    }
}

/// Drops one pin of `ctx`. C: `perf_unpin_context()`.
///
/// # Safety
///
/// `ctx` must be a valid context that the caller pinned (and holds a reference on).
#[export]
pub(crate) unsafe extern "C" fn perf_unpin_context(ctx: *mut bindings::perf_event_context) {
    // SAFETY: The caller's reference keeps the context alive.
    let ctx = unsafe { Ctx::from_raw(ctx) };
    ctx.lock_irqsave().unpin();
}

/// Makes `ctx` stop being a clone and returns its former parent, whose reference the caller
/// must drop with `put_ctx()` after releasing `ctx->lock`. C: `unclone_ctx()`.
///
/// # Safety
///
/// `ctx` must be valid and the caller must hold `ctx->lock` (lockdep asserts it).
#[export]
pub(crate) unsafe extern "C" fn unclone_ctx(
    ctx: *mut bindings::perf_event_context,
) -> *mut bindings::perf_event_context {
    // SAFETY: The caller holds `ctx->lock` on a valid context.
    let locked = unsafe { LockAssumed::assume(Ctx::from_raw(ctx)) };
    locked.take_parent()
}

/// `task->perf_event_mutex`.
///
/// # Safety
///
/// `task` must be valid for `'a`.
unsafe fn task_mutex<'a>(task: *mut bindings::task_struct) -> &'a Lock<(), MutexBackend> {
    // SAFETY: The mutex is initialised for every task (`perf_event_init_task()`) and lives as
    // long as the task.
    unsafe { Lock::from_raw(&raw mut (*task).perf_event_mutex) }
}

/// Publishes a new context as `task->perf_event_ctxp` under `task->perf_event_mutex`, unless the
/// task is exiting (`-ESRCH`) or has a context already (`-EAGAIN`: look it up again).
///
/// # Safety
///
/// `task` must be a valid task on which the caller holds a reference.
unsafe fn publish(task: *mut bindings::task_struct, new: &CtxRef) -> Result {
    // SAFETY: Forwarded from the caller.
    let _guard = unsafe { task_mutex(task) }.lock();
    // `perf_event_exit_task()` sets PF_EXITING before it takes this mutex; if it has already
    // run, we see the flag.
    // SAFETY: `task` is valid; `flags` of another task is read once.
    let flags = unsafe { (&raw const (*task).flags).read_volatile() };
    if flags & bindings::PF_EXITING != 0 {
        return Err(ESRCH);
    }
    // SAFETY: Writers of the pointer hold this mutex (or, for the clone swap, only exchange
    // two non-NULL contexts), so a plain read under the mutex is as good as C's.
    if !unsafe { ctxp(task).read_volatile() }.is_null() {
        return Err(EAGAIN);
    }
    // The task's reference, and the caller's pin, taken before the context becomes visible.
    let published = CtxRef::get(new.ctx());
    new.ctx().lock_irqsave().pin();
    // SAFETY: `task->perf_event_mutex` is held, which excludes the other publishers; the
    // context is fully initialised.
    unsafe { rcu::assign_pointer(ctxp(task), published.into_raw()) };
    Ok(())
}

/// Returns `task`'s context (allocating and publishing one if needed), or the context of
/// `event->cpu` if `task` is NULL, with a reference and a pin taken. C: `find_get_context()`.
///
/// Errors, as C: the CPU permission check's errno (`perf_allow_cpu()`); `-ENOMEM`; `-ESRCH` if
/// the task is exiting.
///
/// # Safety
///
/// `task` must be NULL or a valid task on which the caller holds a reference; `event` must be
/// valid, and with a NULL `task` its `cpu` must be a possible CPU. Must be called in process
/// context (it may sleep) with interrupts on.
#[export]
pub(crate) unsafe extern "C" fn find_get_context(
    task: *mut bindings::task_struct,
    event: *mut bindings::perf_event,
) -> *mut bindings::perf_event_context {
    // SAFETY: Forwarded from the caller.
    match unsafe { find_get(task, event) } {
        Ok(ctx) => ctx.into_raw(),
        Err(e) => e.to_ptr(),
    }
}

/// [`find_get_context`] with a Rust result.
///
/// # Safety
///
/// As for [`find_get_context`].
unsafe fn find_get(
    task: *mut bindings::task_struct,
    event: *mut bindings::perf_event,
) -> Result<CtxRef> {
    if task.is_null() {
        // Must be root (or CAP_PERFMON, or paranoid <= 0) to operate on a CPU event.
        // SAFETY: No requirements.
        kernel::error::to_result(unsafe { bindings::perf_allow_cpu() })?;
        // SAFETY: `event` is valid and its `cpu` a possible CPU; the per-CPU contexts are static
        // and never freed.
        let ctx = unsafe { Ctx::from_raw(bindings::perf_cpu_ctx((*event).cpu)) };
        let this = CtxRef::get(ctx);
        ctx.lock_irqsave().pin();
        return Ok(this);
    }

    loop {
        // SAFETY: Forwarded from the caller.
        if let Some(mut locked) = unsafe { perf_lock_task_context(task) } {
            locked.unclone();
            locked.pin();
            return Ok(locked.unlock());
        }
        // SAFETY: The caller holds a reference on `task`.
        let new = unsafe { alloc_ctx(task) }?;
        // SAFETY: Forwarded from the caller.
        match unsafe { publish(task, &new) } {
            Ok(()) => return Ok(new),
            // Somebody else published one first: find and pin theirs (`new` is dropped).
            Err(e) if e == EAGAIN => continue,
            Err(e) => return Err(e),
        }
    }
}

#[kunit_tests(perf_rust_core_lookup)]
mod tests {
    use super::*;
    use crate::{
        ctx::put_ctx,
        testing::{alloc, kthread_create, kthread_run, wait_to_be_stopped, wait_until},
    };
    use kernel::{
        alloc::flags,
        sync::atomic::{Acquire, Atomic, Release},
    };

    /// A kthread that is created but never woken: a live task that runs nothing, as the target
    /// of task contexts. Stopped (and so exited) on drop.
    struct IdleTask(*mut bindings::task_struct);

    /// The thread function of [`IdleTask`], which never runs it.
    ///
    /// # Safety
    ///
    /// None: it uses nothing.
    unsafe extern "C" fn never_runs(_: *mut c_void) -> c_int {
        0
    }

    impl IdleTask {
        fn new() -> Result<Self> {
            // SAFETY: `never_runs` uses no data (and never runs).
            let t =
                unsafe { kthread_create(never_runs, core::ptr::null::<()>(), c"perf-s3-idle") }?;
            Ok(Self(t))
        }

        fn ctxp(&self) -> *mut bindings::perf_event_context {
            // SAFETY: The task is alive until `drop`; the test is the only writer.
            unsafe { ctxp(self.0).read_volatile() }
        }

        fn set_ctxp(&self, ctx: *mut bindings::perf_event_context) {
            // SAFETY: As above; the field is only read through RCU accessors elsewhere.
            unsafe { rcu::assign_pointer(ctxp(self.0), ctx) };
        }
    }

    impl Drop for IdleTask {
        fn drop(&mut self) {
            // SAFETY: Our kthread. It never ran, so it exits without running `never_runs`, and
            // `perf_event_exit_task()` releases a context still published for it.
            unsafe { bindings::kthread_stop(self.0) };
        }
    }

    /// A zeroed `struct perf_event` that names a CPU: enough for `find_get_context()`.
    fn fake_event(cpu: i32) -> Result<KBox<bindings::perf_event>> {
        let b = KBox::<bindings::perf_event>::new_uninit(flags::GFP_KERNEL | flags::__GFP_ZERO)?;
        // SAFETY: All-zero is a valid `perf_event` for the fields read here.
        let mut b = unsafe { b.assume_init() };
        b.cpu = cpu;
        Ok(b)
    }

    fn count(ctx: *mut bindings::perf_event_context) -> i32 {
        // SAFETY: The tests only pass contexts they keep alive.
        unsafe { Ctx::from_raw(ctx) }.refcount().read()
    }

    fn pins(ctx: *mut bindings::perf_event_context) -> i32 {
        // SAFETY: As above.
        unsafe { Ctx::from_raw(ctx) }.lock_irqsave().pin_count()
    }

    fn find(
        task: *mut bindings::task_struct,
        event: &mut bindings::perf_event,
    ) -> Result<*mut bindings::perf_event_context> {
        // SAFETY: `task` is NULL or kept alive by the test; the event is valid.
        let ctx = unsafe { find_get_context(task, event) };
        kernel::error::from_err_ptr(ctx)
    }

    /// Undoes a successful `find_get_context()`.
    fn unpin_put(ctx: *mut bindings::perf_event_context) {
        // SAFETY: The caller pinned `ctx` and owns a reference.
        unsafe {
            perf_unpin_context(ctx);
            put_ctx(ctx);
        }
    }

    #[test]
    fn pin_and_unpin_balance() -> Result {
        let task = IdleTask::new()?;
        // SAFETY: The task is alive.
        assert!(unsafe { perf_pin_task_context(task.0) }.is_null());
        let ctx = alloc(task.0)?;
        // The allocation's reference becomes the task's.
        task.set_ctxp(ctx);
        for n in 1..=3 {
            // SAFETY: The task is alive.
            assert_eq!(unsafe { perf_pin_task_context(task.0) }, ctx);
            assert_eq!((count(ctx), pins(ctx)), (1 + n, n));
        }
        for n in (0..3).rev() {
            unpin_put(ctx);
            assert_eq!((count(ctx), pins(ctx)), (1 + n, n));
        }
        task.set_ctxp(core::ptr::null_mut());
        // SAFETY: The task's reference, now unpublished.
        unsafe { put_ctx(ctx) };
        Ok(())
    }

    #[test]
    fn find_get_context_on_a_cpu() -> Result {
        let mut event = fake_event(0)?;
        // SAFETY: CPU 0 exists.
        let cpu_ctx = unsafe { bindings::perf_cpu_ctx(0) };
        let (before, pinned) = (count(cpu_ctx), pins(cpu_ctx));
        let ctx = find(core::ptr::null_mut(), &mut event)?;
        assert_eq!(ctx, cpu_ctx);
        assert_eq!((count(ctx), pins(ctx)), (before + 1, pinned + 1));
        unpin_put(ctx);
        assert_eq!((count(ctx), pins(ctx)), (before, pinned));
        Ok(())
    }

    #[test]
    fn find_get_context_publishes_a_new_context_then_reuses_it() -> Result {
        let task = IdleTask::new()?;
        let mut event = fake_event(-1)?;
        let ctx = find(task.0, &mut event)?;
        assert_eq!(task.ctxp(), ctx);
        // SAFETY: `ctx` is alive (the test holds a reference).
        assert_eq!(unsafe { Ctx::from_raw(ctx) }.task(), task.0);
        // One reference for the task's pointer, one for us.
        assert_eq!((count(ctx), pins(ctx)), (2, 1));
        assert_eq!(find(task.0, &mut event)?, ctx);
        assert_eq!((count(ctx), pins(ctx)), (3, 2));
        unpin_put(ctx);
        unpin_put(ctx);
        assert_eq!((count(ctx), pins(ctx)), (1, 0));
        // `perf_event_exit_task()` of the exiting kthread releases the published context.
        Ok(())
    }

    #[test]
    fn find_get_context_on_an_exited_task_is_esrch() -> Result {
        let task = IdleTask::new()?;
        // SAFETY: Keep the task struct after it exits.
        unsafe { bindings::get_task_struct(task.0) };
        let raw = task.0;
        drop(task);
        let mut event = fake_event(-1)?;
        assert_eq!(find(raw, &mut event), Err(ESRCH));
        // SAFETY: Nothing was published for the dead task.
        assert!(unsafe { ctxp(raw).read_volatile() }.is_null());
        // SAFETY: The reference taken above.
        unsafe { bindings::put_task_struct(raw) };
        Ok(())
    }

    #[test]
    fn find_get_context_unclones_and_drops_the_parent_reference() -> Result {
        let task = IdleTask::new()?;
        let parent = alloc(core::ptr::null_mut())?;
        let child = alloc(task.0)?;
        // SAFETY: Both contexts are the test's; the child takes a reference on its parent as
        // `perf_event_init_context()` does, and is published as the task's.
        unsafe {
            crate::ctx::get_ctx(parent);
            (*child).parent_ctx = parent;
            (*child).generation = 5;
        }
        task.set_ctxp(child);
        assert_eq!(count(parent), 2);
        let mut event = fake_event(-1)?;
        assert_eq!(find(task.0, &mut event)?, child);
        // SAFETY: The test holds a reference on the child.
        let c = unsafe { Ctx::from_raw(child) }.lock_irqsave();
        let (p, generation) = (c.parent_ctx(), c.generation());
        drop(c);
        assert!(p.is_null());
        assert_eq!(generation, 6);
        assert_eq!(count(parent), 1);
        assert_eq!((count(child), pins(child)), (2, 1));
        unpin_put(child);
        task.set_ctxp(core::ptr::null_mut());
        // SAFETY: The task's reference on the child, then the test's on the parent.
        unsafe {
            put_ctx(child);
            put_ctx(parent);
        }
        Ok(())
    }

    /// What the finder kthread of the tombstone test shares with it.
    struct Finder {
        task: *mut bindings::task_struct,
        event: *mut bindings::perf_event,
        result: Atomic<*mut bindings::perf_event_context>,
        done: Atomic<bool>,
    }

    /// Runs `find_get_context()` for the test, records the result, and waits to be stopped.
    ///
    /// # Safety
    ///
    /// `data` must point to a [`Finder`] that outlives the thread.
    unsafe extern "C" fn finder(data: *mut c_void) -> c_int {
        // SAFETY: `data` is a `Finder` that outlives the thread.
        let f = unsafe { &*data.cast::<Finder>() };
        // SAFETY: The test keeps the task and the event alive.
        let ctx = unsafe { find_get_context(f.task, f.event) };
        f.result.store(ctx, Release);
        f.done.store(true, Release);
        wait_to_be_stopped();
        0
    }

    #[test]
    fn find_get_context_skips_a_tombstone_and_retries_on_eagain() -> Result {
        let task = IdleTask::new()?;
        // A dead context still published (the exit path tombstones it, then clears the pointer).
        let dead = alloc(core::ptr::null_mut())?;
        // SAFETY: The test's context; a tombstone holds no task reference.
        unsafe { (*dead).task = TASK_TOMBSTONE };
        task.set_ctxp(dead);
        let live = alloc(task.0)?;
        let mut event = fake_event(-1)?;
        let f = Finder {
            task: task.0,
            event: &mut *event,
            result: Atomic::new(core::ptr::null_mut()),
            done: Atomic::new(false),
        };
        // SAFETY: The task is alive.
        let mutex = unsafe { task_mutex(task.0) };
        let guard = mutex.lock();
        // SAFETY: `finder` takes a `Finder`; `f` outlives the thread (stopped below).
        let t = unsafe { kthread_run(finder, &f, c"perf-s3-finder") }?;
        // The finder skips the tombstone, allocates, and waits for the task's mutex to publish.
        let waiting = wait_until(|| {
            // SAFETY: The task and its mutex are valid; `first_waiter` is read once, racily, for
            // polling.
            !unsafe { (&raw const (*task.0).perf_event_mutex.first_waiter).read_volatile() }
                .is_null()
        });
        // Meanwhile the pointer changed: the finder must see -EAGAIN and look it up again.
        task.set_ctxp(live);
        drop(guard);
        let done = wait_until(|| f.done.load(Acquire));
        // SAFETY: Our kthread, done (or stuck, and then stopping it is all that is left).
        unsafe { bindings::kthread_stop(t) };
        waiting?;
        done?;
        assert_eq!(f.result.load(Acquire), live);
        assert_eq!((count(live), pins(live)), (2, 1));
        assert_eq!(count(dead), 1);
        unpin_put(live);
        task.set_ctxp(core::ptr::null_mut());
        // SAFETY: The task's reference on `live`, and the test's on `dead`.
        unsafe {
            put_ctx(live);
            put_ctx(dead);
        }
        Ok(())
    }
}
