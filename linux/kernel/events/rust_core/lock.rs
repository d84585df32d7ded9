// SPDX-License-Identifier: GPL-2.0

//! The context lock rule, as types.
//!
//! `struct perf_event_context` has two locks, and the state of a context and of its PMU contexts
//! (epcs) follows one rule (the comment above `struct perf_event_pmu_context`):
//!
//! - **modify** with both `ctx->mutex` and `ctx->lock` held: [`Both`];
//! - **read** with either held: anything that implements [`Read`] ([`MutexHeld`],
//!   [`LockHeld`], [`Both`]).
//!
//! A [`Both`] can only be made from a [`MutexHeld`] (by taking the spinlock), so code that needs
//! to modify cannot be written without holding the mutex first, in that order: the lock order
//! is `ctx->mutex` then `ctx->lock`. Code that only takes the spinlock gets a [`LockHeld`], which
//! reads but does not modify.
//!
//! Two call paths of C break the rule, and each has its own proof here instead of a silent
//! bypass:
//!
//! - [`Unpublished`]: `perf_event_init_task()` fills a child's context before anything else can
//!   see it, without the child's `ctx->mutex` (the first `XXX` of 7.2's
//!   `find_get_pmu_context()`). Making one is `unsafe`; [`Unpublished::assume`] checks what it can
//!   (the context's task is still `TASK_NEW`, nobody holds the mutex). Locked, it modifies like
//!   [`Both`].
//! - [`LastRef`]: `put_pmu_ctx()` is called from `_free_event()`/`put_event()` without
//!   `ctx->mutex` (the second `XXX`). When the count of an epc reaches zero under `ctx->lock`, no
//!   event uses the epc any more, so no mutex holder can be looking at it: the proof allows
//!   exactly one modification, unlinking that epc.
//!
//! Two contexts' mutexes at once (PMU migration moves events between two CPU contexts) are a
//! [`MutexPair`], taken in address order so that the type fixes the lock order.
//!
//! C callers cannot hand over Rust proofs, so the exported entry points make them from the
//! caller's documented contract: `unsafe`, with lockdep checking the mutex where it is claimed.

use kernel::{
    bindings,
    sync::{
        lock::{
            mutex::MutexBackend,
            raw_spinlock::{
                LocalIrqSave, RawSpinLockBackend, RawSpinLockIrqBackend, RawSpinLockIrqSaveBackend,
                RawSpinLockState,
            },
            Guard, Lock,
        },
        Refcount,
    },
    types::{NotThreadSafe, Opaque},
};

/// The value of `ctx->task` once the task of a task context has exited (`TASK_TOMBSTONE` in
/// `core.c`: `(void *)-1L`).
pub(crate) const TASK_TOMBSTONE: *mut bindings::task_struct = usize::MAX as *mut _;

/// A perf event context: `struct perf_event_context` in its C layout.
///
/// Only ever used by reference to a context that C or the Rust core allocated; the reference
/// count ([`Ctx::refcount`]) keeps it alive.
#[repr(transparent)]
pub(crate) struct Ctx(Opaque<bindings::perf_event_context>);

// SAFETY: A context is shared between CPUs and tasks by design; all access to its state goes
// through raw pointers under the lock rule above, or atomics.
unsafe impl Sync for Ctx {}
// SAFETY: As above; nothing in a context is tied to the task that created it.
unsafe impl Send for Ctx {}

impl Ctx {
    /// Views a C context.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid, initialised context that stays alive for `'a`.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::perf_event_context) -> &'a Self {
        // SAFETY: `Ctx` is a transparent wrapper of the C struct; validity is guaranteed by the
        // caller.
        unsafe { &*ptr.cast() }
    }

    /// The C context.
    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::perf_event_context {
        self.0.get()
    }

    /// The reference count, `ctx->refcount`.
    #[inline]
    pub(crate) fn refcount(&self) -> &Refcount {
        // SAFETY: `Refcount` is a transparent wrapper of `refcount_t`, and the field lives as
        // long as `self`.
        unsafe { &*(&raw mut (*self.as_raw()).refcount).cast::<Refcount>() }
    }

    /// `ctx->task`: NULL for a CPU context, [`TASK_TOMBSTONE`] once the task exited.
    ///
    /// Read with `READ_ONCE()` semantics: it is written under `ctx->lock` (the clone swap in
    /// `perf_event_context_sched_out()`, the tombstone in `perf_event_exit_task_context()`), and
    /// whether it is NULL never changes.
    #[inline]
    pub(crate) fn task(&self) -> *mut bindings::task_struct {
        // SAFETY: The field is valid for reads; a volatile read is C's READ_ONCE().
        unsafe { (&raw const (*self.as_raw()).task).read_volatile() }
    }

    /// `ctx->mutex`, as a Rust lock.
    #[inline]
    pub(crate) fn mutex(&self) -> &Lock<(), MutexBackend> {
        // SAFETY: `ctx->mutex` was initialised by `__perf_event_init_context()` and lives as long
        // as `self`.
        unsafe { Lock::from_raw(&raw mut (*self.as_raw()).mutex) }
    }

    /// `ctx->lock`, as a Rust lock of the backend `B`.
    #[inline]
    pub(crate) fn spinlock<B: RawSpinLockState>(&self) -> &Lock<(), B> {
        // SAFETY: `ctx->lock` was initialised by `__perf_event_init_context()` and lives as long
        // as `self`.
        unsafe { Lock::from_raw(&raw mut (*self.as_raw()).lock) }
    }

    /// Takes `ctx->mutex` (it may sleep) and returns the proof.
    #[inline]
    pub(crate) fn lock_mutex(&self) -> CtxMutexGuard<'_> {
        CtxMutexGuard {
            _guard: self.mutex().lock(),
            held: MutexHeld {
                ctx: self,
                _not_send: NotThreadSafe,
            },
        }
    }

    /// Takes `ctx->mutex` with a lockdep subclass (`mutex_lock_nested()`): a child context's
    /// mutex inside its parent's (`SINGLE_DEPTH_NESTING`). It may sleep.
    #[inline]
    pub(crate) fn lock_mutex_nested(&self, subclass: u32) -> CtxMutexGuard<'_> {
        CtxMutexGuard {
            _guard: self.mutex().lock_nested(subclass),
            held: MutexHeld {
                ctx: self,
                _not_send: NotThreadSafe,
            },
        }
    }

    /// Takes `ctx->lock`, saving and disabling interrupts, for reading.
    #[inline]
    pub(crate) fn lock_irqsave(&self) -> LockHeld<'_, RawSpinLockIrqSaveBackend> {
        LockHeld {
            ctx: self,
            _guard: self.spinlock().lock(),
        }
    }

    /// Takes `ctx->lock` with the plain `raw_spin_lock()`, inside a section that disabled
    /// interrupts already (`irqs`), for `perf_lock_task_context()`.
    #[inline]
    pub(crate) fn lock_irqs_off(&self, _irqs: &LocalIrqSave) -> LockHeld<'_, RawSpinLockBackend> {
        LockHeld {
            ctx: self,
            _guard: self.spinlock().lock(),
        }
    }

    /// Whether anybody holds `ctx->mutex` now. Only meaningful for a context nobody else can
    /// lock concurrently (see [`Unpublished::assume`]).
    #[inline]
    pub(crate) fn mutex_is_locked(&self) -> bool {
        // SAFETY: The mutex is initialised; `mutex_is_locked()` only reads its owner word.
        unsafe { bindings::mutex_is_locked(&raw mut (*self.as_raw()).mutex) }
    }

    /// Whether the current task holds `ctx->mutex`. Unlike [`Ctx::mutex_is_locked`] (true
    /// whoever holds it) and lockdep (only with `CONFIG_PROVE_LOCKING`), this is the mutex's own
    /// owner word, in every configuration. C: `mutex_get_owner() == current`.
    #[inline]
    pub(crate) fn mutex_owned_by_current(&self) -> bool {
        #[cfg(not(CONFIG_PREEMPT_RT))]
        // SAFETY: The mutex is initialised; `mutex_get_owner()` reads its owner word once.
        let owner = unsafe { bindings::mutex_get_owner(&raw mut (*self.as_raw()).mutex) } as usize;
        // An rtmutex-based mutex: the owner word is the task with RT_MUTEX_HAS_WAITERS (bit 0).
        #[cfg(CONFIG_PREEMPT_RT)]
        // SAFETY: The mutex is initialised; the owner word is read once, as C's READ_ONCE().
        let owner = unsafe { (&raw const (*self.as_raw()).mutex.rtmutex.owner).read_volatile() }
            as usize
            & !1;
        // SAFETY: No requirements.
        owner == unsafe { bindings::get_current() } as usize
    }
}

/// Proof that the current task holds `ctx->mutex` of [`Read::ctx`].
pub(crate) struct MutexHeld<'a> {
    ctx: &'a Ctx,
    _not_send: NotThreadSafe,
}

impl<'a> MutexHeld<'a> {
    /// Makes the proof for a mutex that the C caller took.
    ///
    /// # Safety
    ///
    /// The current task must hold `ctx->mutex` for as long as the proof lives. This is checked
    /// (a warning, once) in every configuration from the mutex's owner, and with lockdep too.
    #[inline]
    pub(crate) unsafe fn assume(ctx: &'a Ctx) -> Self {
        // SAFETY: The mutex is initialised.
        unsafe { bindings::mutex_assert_is_held(&raw mut (*ctx.as_raw()).mutex) };
        crate::warn_on_once!(!ctx.mutex_owned_by_current());
        Self {
            ctx,
            _not_send: NotThreadSafe,
        }
    }

    /// Takes `ctx->lock` with interrupts disabled (`raw_spin_lock_irq()`), for modification.
    ///
    /// Interrupts must be enabled: the guard enables them again.
    #[inline]
    pub(crate) fn lock_irq<'m>(&'m self) -> Both<'a, 'm> {
        Both {
            _mutex: self,
            lock: LockHeld {
                ctx: self.ctx,
                _guard: self.ctx.spinlock().lock(),
            },
        }
    }
}

/// A `ctx->mutex` that the Rust core took; released on drop.
pub(crate) struct CtxMutexGuard<'a> {
    held: MutexHeld<'a>,
    _guard: Guard<'a, (), MutexBackend>,
}

impl<'a> core::ops::Deref for CtxMutexGuard<'a> {
    type Target = MutexHeld<'a>;

    fn deref(&self) -> &MutexHeld<'a> {
        &self.held
    }
}

/// The `ctx->mutex` of two different contexts, taken in address order whatever the order of the
/// arguments, the second with lockdep subclass `SINGLE_DEPTH_NESTING`; released on drop. Two
/// tasks that lock the same pair cannot deadlock. C: `mutex_lock_double()` on two contexts.
pub(crate) struct MutexPair<'a> {
    first: CtxMutexGuard<'a>,
    second: CtxMutexGuard<'a>,
}

impl<'a> MutexPair<'a> {
    /// Takes both mutexes (it may sleep); `None` if `a` and `b` are the same context, whose
    /// mutex cannot be taken twice.
    pub(crate) fn lock(a: &'a Ctx, b: &'a Ctx) -> Option<Self> {
        let (low, high) = match a.as_raw().cmp(&b.as_raw()) {
            core::cmp::Ordering::Equal => return None,
            core::cmp::Ordering::Less => (a, b),
            core::cmp::Ordering::Greater => (b, a),
        };
        let low = low.lock_mutex();
        let high = high.lock_mutex_nested(bindings::SINGLE_DEPTH_NESTING);
        let (first, second) = if core::ptr::eq(low.ctx(), a) {
            (low, high)
        } else {
            (high, low)
        };
        Some(Self { first, second })
    }

    /// The proof for the first argument of [`MutexPair::lock`].
    pub(crate) fn first(&self) -> &MutexHeld<'a> {
        &self.first
    }

    /// The proof for the second argument of [`MutexPair::lock`].
    pub(crate) fn second(&self) -> &MutexHeld<'a> {
        &self.second
    }
}

/// Proof that `ctx->lock` of [`Read::ctx`] is held (with interrupts disabled); releasing it is
/// dropping the proof.
pub(crate) struct LockHeld<'a, B: RawSpinLockState> {
    ctx: &'a Ctx,
    _guard: Guard<'a, (), B>,
}

impl<'a> LockHeld<'a, RawSpinLockIrqSaveBackend> {
    /// Adopts `ctx->lock` that C code took with `raw_spin_lock_irqsave()` (or
    /// `atomic_dec_and_raw_lock_irqsave()`) and the flags it saved.
    ///
    /// # Safety
    ///
    /// The current context must hold `ctx->lock`, taken with these `flags`, and hand the
    /// unlocking over to the returned proof.
    #[inline]
    pub(crate) unsafe fn adopt(ctx: &'a Ctx, flags: kernel::ffi::c_ulong) -> Self {
        // SAFETY: Guaranteed by the caller; `Guard::new` asserts the lock is held.
        let guard = unsafe { Guard::new(ctx.spinlock(), flags) };
        Self { ctx, _guard: guard }
    }
}

/// Proof that both `ctx->mutex` and `ctx->lock` are held: the state may be modified.
///
/// Only [`MutexHeld::lock_irq`] makes one, so the mutex is always taken first.
pub(crate) struct Both<'a, 'm> {
    _mutex: &'m MutexHeld<'a>,
    lock: LockHeld<'a, RawSpinLockIrqBackend>,
}

/// Proof that the context is a child's that nobody else can reach yet (the inherit path).
pub(crate) struct Unpublished<'a> {
    ctx: &'a Ctx,
    _not_send: NotThreadSafe,
}

impl<'a> Unpublished<'a> {
    /// Makes the proof for a context that `perf_event_init_task()` is filling, if it looks
    /// unpublished: its task is still in `copy_process()` (`TASK_NEW`) and nobody holds its
    /// mutex. Otherwise (a caller that broke its contract) warns once and returns `None`: the
    /// check runs in every configuration.
    ///
    /// # Safety
    ///
    /// No other task or CPU may be able to reach `ctx` while the proof lives: it is the context
    /// of a task that `copy_process()` is creating and no event of it has been published.
    #[inline]
    pub(crate) unsafe fn assume(ctx: &'a Ctx) -> Option<Self> {
        if crate::warn_on_once!(!Self::looks_unpublished(ctx)) {
            return None;
        }
        Some(Self {
            ctx,
            _not_send: NotThreadSafe,
        })
    }

    /// What [`Unpublished::assume`] checks: the context's task is still in `copy_process()`
    /// (`TASK_NEW`) and nobody holds the context's mutex.
    #[inline]
    pub(crate) fn looks_unpublished(ctx: &Ctx) -> bool {
        let task = ctx.task();
        // SAFETY: A task context holds a reference on its task; `__state` is read once.
        let new = !task.is_null()
            && task != TASK_TOMBSTONE
            && unsafe { (&raw const (*task).__state).read_volatile() } == bindings::TASK_NEW;
        new && !ctx.mutex_is_locked()
    }

    /// Takes `ctx->lock` with interrupts disabled. Nothing else can contend for it, but the
    /// perf core's helpers and lockdep expect it held while the state changes.
    #[inline]
    pub(crate) fn lock_irq(&self) -> UnpublishedLocked<'a> {
        UnpublishedLocked {
            lock: LockHeld {
                ctx: self.ctx,
                _guard: self.ctx.spinlock().lock(),
            },
        }
    }
}

/// An [`Unpublished`] context with its `ctx->lock` held: may be modified.
pub(crate) struct UnpublishedLocked<'a> {
    lock: LockHeld<'a, RawSpinLockIrqBackend>,
}

/// Proof that the state of [`Read::ctx`] may be read.
pub(crate) trait Read {
    /// The context the proof is about.
    fn ctx(&self) -> &Ctx;
}

/// Proof that the state of [`Read::ctx`] may be modified (which also means `ctx->lock` is held
/// and interrupts are off).
///
/// # Safety
///
/// Implementers must prove the rule: `ctx->mutex` and `ctx->lock` held, or one of the documented
/// exceptions with `ctx->lock` held.
pub(crate) unsafe trait Modify: Read {}

impl Read for MutexHeld<'_> {
    fn ctx(&self) -> &Ctx {
        self.ctx
    }
}

impl Read for CtxMutexGuard<'_> {
    fn ctx(&self) -> &Ctx {
        self.held.ctx
    }
}

impl<B: RawSpinLockState> Read for LockHeld<'_, B> {
    fn ctx(&self) -> &Ctx {
        self.ctx
    }
}

impl Read for Both<'_, '_> {
    fn ctx(&self) -> &Ctx {
        self.lock.ctx
    }
}

impl Read for UnpublishedLocked<'_> {
    fn ctx(&self) -> &Ctx {
        self.lock.ctx
    }
}

// SAFETY: A `Both` holds a `MutexHeld` and the spinlock guard.
unsafe impl Modify for Both<'_, '_> {}

// SAFETY: The context is unreachable by others (`Unpublished`) and its spinlock is held.
unsafe impl Modify for UnpublishedLocked<'_> {}

/// Proof that `ctx->lock` of [`Read::ctx`] is held, with interrupts off.
///
/// Some context fields are protected by `ctx->lock` **alone**, for reading and for writing:
/// `context_equiv()` compares them at every context switch holding only the two contexts'
/// spinlocks, so holding `ctx->mutex` neither excludes it nor lets anybody read them. Their
/// accessors are the methods of this trait:
///
/// - `pin_count`: a pinned context is not swapped between tasks by the clone optimisation;
/// - `parent_ctx` (a counted reference), `parent_gen`, `generation`: whether a context is a
///   clone of its parent and still equal to it.
///
/// # Safety
///
/// Implementers must hold `ctx->lock` of [`Read::ctx`] for as long as they live.
pub(crate) unsafe trait SpinHeld: Read {
    /// `ctx->pin_count`.
    #[inline]
    fn pin_count(&self) -> i32 {
        // SAFETY: The field is valid; `ctx->lock`, which protects it, is held.
        unsafe { (*self.ctx().as_raw()).pin_count }
    }

    /// Pins the context to its task: `++ctx->pin_count`.
    #[inline]
    fn pin(&self) {
        // SAFETY: As above; only holders of `ctx->lock` write it.
        unsafe { (*self.ctx().as_raw()).pin_count += 1 };
    }

    /// Drops one pin: `--ctx->pin_count`. Warns on underflow.
    #[inline]
    fn unpin(&self) {
        // SAFETY: As above.
        let count = unsafe { &mut (*self.ctx().as_raw()).pin_count };
        crate::warn_on_once!(*count <= 0);
        *count -= 1;
    }

    /// `ctx->generation`: bumped by every change that makes a clone differ from its parent.
    #[inline]
    fn generation(&self) -> u64 {
        // SAFETY: The field is valid; `ctx->lock` is held.
        unsafe { (*self.ctx().as_raw()).generation }
    }

    /// `ctx->parent_ctx`: the context this one was cloned from, NULL if none.
    #[inline]
    fn parent_ctx(&self) -> *mut bindings::perf_event_context {
        // SAFETY: The field is valid; `ctx->lock` is held.
        unsafe { (*self.ctx().as_raw()).parent_ctx }
    }

    /// The first half of `unclone_ctx()`: makes the context stop being a clone (a new
    /// generation, no parent) and returns the parent, whose reference the caller now owns and
    /// must drop only after releasing `ctx->lock` (`put_ctx()` may take scheduler locks, which
    /// `ctx->lock` nests inside). Rust code uses
    /// [`TaskCtxLocked::unclone`](crate::lookup::TaskCtxLocked::unclone), which enforces that.
    #[inline]
    fn take_parent(&self) -> *mut bindings::perf_event_context {
        let ctx = self.ctx().as_raw();
        // SAFETY: The fields are valid; `ctx->lock` is held, which makes us their only writer.
        unsafe {
            let parent = (*ctx).parent_ctx;
            (*ctx).parent_ctx = core::ptr::null_mut();
            (*ctx).generation += 1;
            parent
        }
    }
}

// SAFETY: A `LockHeld` holds the spinlock.
unsafe impl<B: RawSpinLockState> SpinHeld for LockHeld<'_, B> {}

// SAFETY: A `Both` holds the spinlock.
unsafe impl SpinHeld for Both<'_, '_> {}

// SAFETY: An `UnpublishedLocked` holds the spinlock.
unsafe impl SpinHeld for UnpublishedLocked<'_> {}

/// Proof that a C caller holds `ctx->lock`; unlike [`LockHeld`], dropping it releases nothing.
pub(crate) struct LockAssumed<'a> {
    ctx: &'a Ctx,
    _not_send: NotThreadSafe,
}

impl<'a> LockAssumed<'a> {
    /// Makes the proof for `ctx->lock` that the C caller took. Lockdep asserts it.
    ///
    /// # Safety
    ///
    /// The current context must hold `ctx->lock` for as long as the proof lives.
    #[inline]
    pub(crate) unsafe fn assume(ctx: &'a Ctx) -> Self {
        ctx.spinlock::<RawSpinLockIrqSaveBackend>().assert_is_held();
        Self {
            ctx,
            _not_send: NotThreadSafe,
        }
    }
}

impl Read for LockAssumed<'_> {
    fn ctx(&self) -> &Ctx {
        self.ctx
    }
}

// SAFETY: The caller of `LockAssumed::assume` holds the spinlock while the proof lives.
unsafe impl SpinHeld for LockAssumed<'_> {}

/// An owned reference on a context (`ctx->refcount`); dropping it is `put_ctx()`.
///
/// `put_ctx()` must not run under `ctx->lock`: the lock guards of this crate that can hold a
/// reference ([`crate::lookup::TaskCtxLocked`]) release the lock before their references.
///
/// # Invariants
///
/// The pointer is valid and the value owns one reference on the context.
pub(crate) struct CtxRef(core::ptr::NonNull<bindings::perf_event_context>);

// SAFETY: A reference may be dropped on any task or CPU that may call `put_ctx()`.
unsafe impl Send for CtxRef {}

impl CtxRef {
    /// Takes over a reference that the caller owns.
    ///
    /// # Safety
    ///
    /// `ctx` must be a valid context on which the caller owns a reference, which it hands over.
    #[inline]
    pub(crate) unsafe fn from_raw(ctx: *mut bindings::perf_event_context) -> Self {
        // INVARIANT: Guaranteed by the caller; a valid context is not NULL.
        // SAFETY: As above.
        Self(unsafe { core::ptr::NonNull::new_unchecked(ctx) })
    }

    /// Takes a reference on `ctx` unless its count already reached zero (a lookup under RCU).
    #[inline]
    pub(crate) fn try_get(ctx: &Ctx) -> Option<Self> {
        // INVARIANT: The reference was just taken.
        ctx.refcount()
            .inc_not_zero()
            // SAFETY: The reference was just taken on a valid context.
            .then(|| unsafe { Self::from_raw(ctx.as_raw()) })
    }

    /// Takes one more reference on `ctx`, which must have one already (or be a per-CPU
    /// context).
    #[inline]
    pub(crate) fn get(ctx: &Ctx) -> Self {
        ctx.refcount().inc();
        // SAFETY: The reference was just taken on a valid context.
        unsafe { Self::from_raw(ctx.as_raw()) }
    }

    /// The context.
    #[inline]
    pub(crate) fn ctx(&self) -> &Ctx {
        // SAFETY: By the type invariant the reference keeps the context alive.
        unsafe { Ctx::from_raw(self.0.as_ptr()) }
    }

    /// Hands the reference over to C.
    #[inline]
    pub(crate) fn into_raw(self) -> *mut bindings::perf_event_context {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr
    }
}

impl Drop for CtxRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the reference is ours to drop.
        unsafe { crate::ctx::put(self.0.as_ptr()) };
    }
}

/// Releases `ctx->lock` of a modification proof. Spelled out at call sites that must free memory
/// or drop references only after unlocking.
pub(crate) fn unlock<P: Modify>(proof: P) {
    drop(proof);
}

/// Proof that the last reference of a PMU context was dropped, atomically with taking
/// `ctx->lock` (`atomic_dec_and_raw_lock_irqsave()`), without `ctx->mutex`.
///
/// This is the `put_pmu_ctx()` exception: with the count at zero no event uses the epc, so
/// nothing that holds only `ctx->mutex` can be looking at it, and unlinking it under `ctx->lock`
/// alone is safe. The proof allows that one modification ([`LastRef::epc`] is the only epc it
/// names) and releases `ctx->lock` (restoring interrupts) when dropped.
pub(crate) struct LastRef<'a> {
    lock: LockHeld<'a, RawSpinLockIrqSaveBackend>,
    epc: *mut bindings::perf_event_pmu_context,
}

impl<'a> LastRef<'a> {
    /// Drops a reference on `epc`; if it was the last, returns with `ctx->lock` held.
    ///
    /// # Safety
    ///
    /// The caller must own a reference on `epc`, which must be linked into `ctx` (`epc->ctx`),
    /// and keep `ctx` alive for `'a` (an event owns references on both).
    #[inline]
    pub(crate) unsafe fn put(
        ctx: &'a Ctx,
        epc: *mut bindings::perf_event_pmu_context,
    ) -> Option<Self> {
        let mut flags: kernel::ffi::c_ulong = 0;
        // SAFETY: `epc` and `ctx` are valid (guaranteed by the caller), `flags` is a valid place.
        let last = unsafe {
            bindings::_atomic_dec_and_raw_lock_irqsave(
                &raw mut (*epc).refcount,
                &raw mut (*ctx.as_raw()).lock,
                &mut flags,
            )
        } != 0;
        if !last {
            return None;
        }
        Some(Self {
            // SAFETY: `_atomic_dec_and_raw_lock_irqsave()` returned true: it took `ctx->lock`
            // with `raw_spin_lock_irqsave()` and saved `flags`.
            lock: unsafe { LockHeld::adopt(ctx, flags) },
            epc,
        })
    }

    /// The PMU context whose last reference was dropped.
    #[inline]
    pub(crate) fn epc(&self) -> *mut bindings::perf_event_pmu_context {
        self.epc
    }
}

impl Read for LastRef<'_> {
    fn ctx(&self) -> &Ctx {
        self.lock.ctx
    }
}

// SAFETY: A `LastRef` holds the spinlock.
unsafe impl SpinHeld for LastRef<'_> {}

/// `WARN_ON_ONCE()`: warns the first time `cond` is true at this call site; returns `cond`.
#[macro_export]
macro_rules! warn_on_once {
    ($cond:expr) => {{
        static WARNED: ::kernel::sync::atomic::Atomic<bool> =
            ::kernel::sync::atomic::Atomic::new(false);
        let cond: bool = $cond;
        if cond && !WARNED.xchg(true, ::kernel::sync::atomic::Relaxed) {
            ::kernel::warn_on!(true);
        }
        cond
    }};
}
