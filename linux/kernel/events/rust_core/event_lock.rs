// SPDX-License-Identifier: GPL-2.0

//! Locking the context of an event (slice S3).
//!
//! C: `perf_event_ctx_lock_nested()`, `perf_event_ctx_lock()` and `perf_event_ctx_unlock()` of
//! `kernel/events/core.c`.
//!
//! `event->ctx` changes while the event lives: `sys_perf_event_open()` with a group leader of a
//! software PMU and a hardware sibling moves the group to the hardware context (move_group), and
//! `perf_pmu_migrate_context()` moves CPU events between CPUs. Both hold the old and the new
//! `ctx->mutex` and publish the new pointer after `synchronize_rcu()`. So the file operations on
//! an event find its context under RCU, take a reference (`refcount_inc_not_zero()`: the old
//! context may be on its way out), take its mutex, and check that the event still points to it;
//! if not, they drop both and try again. Once the mutex is held and the check passed, the
//! context cannot change any more until the mutex is released.
//!
//! The C callers own the mutex and the reference between `perf_event_ctx_lock()` and
//! `perf_event_ctx_unlock()`: [`EventCtxLocked::into_c`] and [`EventCtxLocked::from_c`] hand
//! them over explicitly at the boundary.

use crate::lock::{Ctx, CtxRef, MutexHeld};
use core::mem::ManuallyDrop;
use kernel::{bindings, prelude::*, sync::lock::Guard, sync::rcu};

/// `ctx->mutex` held and a reference owned on an event's current context. Dropping it unlocks
/// the mutex, then drops the reference (C: `perf_event_ctx_unlock()`).
///
/// # Invariants
///
/// The current task holds `this`'s `ctx->mutex`, and `this` owns a reference that only `Drop`
/// drops (`ManuallyDrop`: so that the put is inlined there rather than left to the drop glue of
/// [`CtxRef`], which LLVM keeps out of line).
pub(crate) struct EventCtxLocked {
    this: ManuallyDrop<CtxRef>,
}

/// `READ_ONCE(event->ctx)`.
///
/// # Safety
///
/// `event` must be valid.
unsafe fn event_ctx(event: *mut bindings::perf_event) -> *mut bindings::perf_event_context {
    // SAFETY: `event` is valid; `event->ctx` is written with `WRITE_ONCE()`/under the mutexes,
    // and read once here.
    unsafe { (&raw const (*event).ctx).read_volatile() }
}

impl EventCtxLocked {
    /// Locks the current context of `event`, with the lockdep subclass `nesting` for its mutex.
    /// C: `perf_event_ctx_lock_nested()`. It may sleep.
    ///
    /// Inlined: each exported entry point below is then one function, as C's
    /// `perf_event_ctx_lock_nested()` is.
    ///
    /// # Safety
    ///
    /// `event` must be valid, and the caller must keep it alive (it holds a reference on it).
    #[inline]
    pub(crate) unsafe fn lock(event: *mut bindings::perf_event, nesting: u32) -> Self {
        loop {
            let rcu = rcu::read_lock();
            // SAFETY: `event` is valid. Contexts are freed after a grace period, and
            // `event->ctx` points to a context that was alive when the RCU section began.
            let ctx = unsafe { Ctx::from_raw(event_ctx(event)) };
            // A context whose count reached zero is being freed: the event has moved already,
            // and re-reading `event->ctx` finds the new one.
            let Some(this) = CtxRef::try_get(ctx) else {
                continue;
            };
            drop(rcu);
            let guard = this.ctx().lock_mutex_nested(nesting);
            // SAFETY: As above.
            if unsafe { event_ctx(event) } != this.ctx().as_raw() {
                // Moved while we waited: unlock, then put (`guard` drops before `this`).
                drop(guard);
                continue;
            }
            // The mutex stays held: from here on the value owns it.
            core::mem::forget(guard);
            // INVARIANT: The mutex of `this` is held by the current task.
            return Self {
                this: ManuallyDrop::new(this),
            };
        }
    }

    /// The proof that `ctx->mutex` is held, for reading and for taking `ctx->lock`.
    #[cfg_attr(
        not(CONFIG_KUNIT = "y"),
        expect(dead_code, reason = "no Rust caller outside the tests until slice S4")
    )]
    pub(crate) fn held(&self) -> MutexHeld<'_> {
        // SAFETY: By the type invariant, the mutex is held while `self` lives.
        unsafe { MutexHeld::assume(self.this.ctx()) }
    }

    /// Hands the mutex and the reference over to a C caller, which releases both with
    /// `perf_event_ctx_unlock()`.
    pub(crate) fn into_c(self) -> *mut bindings::perf_event_context {
        let ctx = self.this.ctx().as_raw();
        // Neither `Drop` runs: the mutex stays locked and the reference moves to the C caller.
        core::mem::forget(self);
        ctx
    }

    /// Takes back what [`EventCtxLocked::into_c`] handed to C.
    ///
    /// # Safety
    ///
    /// The caller must hold `ctx->mutex` and own a reference on `ctx`, both from
    /// `perf_event_ctx_lock()`, and hand them over.
    pub(crate) unsafe fn from_c(ctx: *mut bindings::perf_event_context) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self {
            // SAFETY: Guaranteed by the caller.
            this: ManuallyDrop::new(unsafe { CtxRef::from_raw(ctx) }),
        }
    }
}

impl Drop for EventCtxLocked {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant the current task holds the mutex; adopting it into a
        // guard and dropping that unlocks it.
        drop(unsafe { Guard::new(self.this.ctx().mutex(), ()) });
        // SAFETY: `this` is not used again; its reference is dropped here, after the unlock.
        let ctx = unsafe { ManuallyDrop::take(&mut self.this) }.into_raw();
        // SAFETY: The reference that `this` owned.
        unsafe { crate::ctx::put(ctx) };
    }
}

/// Returns `event`'s context with `ctx->mutex` held (lockdep subclass `nesting`) and a reference
/// taken; the caller releases both with [`perf_event_ctx_unlock`].
/// C: `perf_event_ctx_lock_nested()`.
///
/// # Safety
///
/// `event` must be valid and kept alive by the caller. It may sleep.
#[export]
pub(crate) unsafe extern "C" fn perf_event_ctx_lock_nested(
    event: *mut bindings::perf_event,
    nesting: kernel::ffi::c_int,
) -> *mut bindings::perf_event_context {
    // SAFETY: Forwarded from the caller. Lockdep subclasses are small and non-negative.
    unsafe { EventCtxLocked::lock(event, nesting as u32) }.into_c()
}

/// [`perf_event_ctx_lock_nested`] with subclass 0. C: `perf_event_ctx_lock()`.
///
/// # Safety
///
/// As for [`perf_event_ctx_lock_nested`].
#[export]
pub(crate) unsafe extern "C" fn perf_event_ctx_lock(
    event: *mut bindings::perf_event,
) -> *mut bindings::perf_event_context {
    // SAFETY: Forwarded from the caller.
    unsafe { EventCtxLocked::lock(event, 0) }.into_c()
}

/// Releases what [`perf_event_ctx_lock`] returned: the mutex, then the reference.
/// C: `perf_event_ctx_unlock()`.
///
/// # Safety
///
/// `ctx` must be what `perf_event_ctx_lock[_nested]()` returned for `event`, still locked by the
/// current task.
#[export]
pub(crate) unsafe extern "C" fn perf_event_ctx_unlock(
    _event: *mut bindings::perf_event,
    ctx: *mut bindings::perf_event_context,
) {
    // SAFETY: Forwarded from the caller.
    drop(unsafe { EventCtxLocked::from_c(ctx) });
}

#[kunit_tests(perf_rust_core_event_lock)]
mod tests {
    use super::*;
    use crate::{
        ctx::alloc_ctx,
        lock::Read,
        testing::{kthread_run, wait_to_be_stopped, wait_until},
    };

    /// A context without a task, owned by the test.
    fn new_ctx() -> Result<CtxRef> {
        // SAFETY: No task.
        unsafe { alloc_ctx(core::ptr::null_mut()) }
    }
    use kernel::{
        alloc::flags,
        sync::atomic::{Acquire, Atomic, Release},
    };

    /// A zeroed `struct perf_event` pointing to `ctx`: all `perf_event_ctx_lock()` reads.
    fn fake_event(ctx: &CtxRef) -> Result<KBox<bindings::perf_event>> {
        let b = KBox::<bindings::perf_event>::new_uninit(flags::GFP_KERNEL | flags::__GFP_ZERO)?;
        // SAFETY: All-zero is a valid `perf_event` for the fields read here.
        let mut b = unsafe { b.assume_init() };
        b.ctx = ctx.ctx().as_raw();
        Ok(b)
    }

    #[test]
    fn lock_hands_the_mutex_and_a_reference_to_c_and_back() -> Result {
        let a = new_ctx()?;
        let mut event = fake_event(&a)?;
        // SAFETY: The event is valid and outlives the lock.
        let ctx = unsafe { perf_event_ctx_lock(&mut *event) };
        assert_eq!(ctx, a.ctx().as_raw());
        assert!(a.ctx().mutex_is_locked());
        assert_eq!(a.ctx().refcount().read(), 2);
        // SAFETY: What `perf_event_ctx_lock()` returned, still locked by us.
        unsafe { perf_event_ctx_unlock(&mut *event, ctx) };
        assert!(!a.ctx().mutex_is_locked());
        assert_eq!(a.ctx().refcount().read(), 1);
        Ok(())
    }

    /// What the locker kthread shares with the test.
    struct Locker {
        event: *mut bindings::perf_event,
        locked: Atomic<*mut bindings::perf_event_context>,
        held_mutex: Atomic<bool>,
        done: Atomic<bool>,
    }

    /// Locks the event's context, records which one it got, and waits to be stopped.
    ///
    /// # Safety
    ///
    /// `data` must point to a [`Locker`] that outlives the thread.
    unsafe extern "C" fn locker(data: *mut c_void) -> c_int {
        // SAFETY: `data` is a `Locker` that outlives the thread.
        let l = unsafe { &*data.cast::<Locker>() };
        // SAFETY: The test keeps the event alive.
        let locked = unsafe { EventCtxLocked::lock(l.event, 0) };
        let held = locked.held();
        l.locked.store(held.ctx().as_raw(), Release);
        l.held_mutex.store(held.ctx().mutex_is_locked(), Release);
        drop(locked);
        l.done.store(true, Release);
        wait_to_be_stopped();
        0
    }

    #[test]
    fn lock_follows_an_event_that_moves_while_it_waits() -> Result {
        // move_group: sys_perf_event_open() moves a group to another context while holding both
        // mutexes. A locker that found the old context and waits for its mutex must drop it and
        // lock the new one.
        let (old, new) = (new_ctx()?, new_ctx()?);
        let mut event = fake_event(&old)?;
        let l = Locker {
            event: &mut *event,
            locked: Atomic::new(core::ptr::null_mut()),
            held_mutex: Atomic::new(false),
            done: Atomic::new(false),
        };
        let guard = old.ctx().lock_mutex();
        // SAFETY: `locker` takes a `Locker`; `l` outlives the thread (stopped below).
        let t = unsafe { kthread_run(locker, &l, c"perf-s3-locker") }?;
        let old_raw = old.ctx().as_raw();
        // The locker holds a reference on the old context and waits for its mutex.
        let waiting = wait_until(|| {
            // SAFETY: The old context is alive; `first_waiter` is read once, for polling.
            !unsafe { (&raw const (*old_raw).mutex.first_waiter).read_volatile() }.is_null()
        });
        let old_count_while_waiting = old.ctx().refcount().read();
        // SAFETY: The event is the test's; the locker reads the field with READ_ONCE().
        unsafe { (&raw mut event.ctx).write_volatile(new.ctx().as_raw()) };
        drop(guard);
        let done = wait_until(|| l.done.load(Acquire));
        // SAFETY: Our kthread, done (or stuck, and then stopping it is all that is left).
        unsafe { bindings::kthread_stop(t) };
        waiting?;
        done?;
        assert_eq!(old_count_while_waiting, 2);
        assert_eq!(l.locked.load(Acquire), new.ctx().as_raw());
        assert!(l.held_mutex.load(Acquire));
        // Both references of the locker were dropped, both mutexes released.
        assert_eq!(old.ctx().refcount().read(), 1);
        assert_eq!(new.ctx().refcount().read(), 1);
        assert!(!old.ctx().mutex_is_locked() && !new.ctx().mutex_is_locked());
        Ok(())
    }
}
