// SPDX-License-Identifier: GPL-2.0

//! PMU contexts (slice S2): `struct perf_event_pmu_context`, the "epc".
//!
//! C: `__perf_init_event_pmu_context()`, `find_get_pmu_context()`, `get_pmu_ctx()`,
//! `put_pmu_ctx()`, `free_epc_rcu()` and `free_cpc_rcu()` of `kernel/events/core.c`.
//!
//! # Ownership
//!
//! An epc joins one context and one PMU. Each event of that PMU in that context holds one
//! reference (`epc->refcount`, an `atomic_t`); the epc sits on `ctx->pmu_ctx_list` exactly while
//! the count is non-zero, and `epc->ctx` points back to the context while it does.
//!
//! - Task contexts: an epc is allocated by the first event of its PMU and freed, after a grace
//!   period, when the last one goes. The list is sorted by `pmu->type`.
//! - CPU contexts: the epc is embedded in the PMU's per-CPU `perf_cpu_pmu_context` (cpc) and
//!   never allocated here. Its first use sets the count to 2: one reference is the PMU's, dropped
//!   by `perf_pmu_free()`, so the events' puts never free it; the last put frees the whole cpc.
//!   This path cannot fail: `perf_pmu_migrate_context()` relies on it.
//!
//! # Locking
//!
//! See [`crate::lock`]: the list and the epc fields change under [`Modify`] proofs, i.e. both
//! context locks, or the two documented exceptions (the inherit path's unpublished child
//! context, and the last put without `ctx->mutex`).

use crate::lock::{Ctx, LastRef, Modify, MutexHeld, Read, Unpublished};
use crate::warn_on_once;
use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        rcu,
    },
    types::Opaque,
};

/// A PMU context: `struct perf_event_pmu_context` in its C layout.
#[repr(transparent)]
pub(crate) struct Epc(Opaque<bindings::perf_event_pmu_context>);

impl Epc {
    /// Views a C PMU context.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid, initialised PMU context that stays alive for `'a`.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::perf_event_pmu_context) -> &'a Self {
        // SAFETY: `Epc` is a transparent wrapper of the C struct; validity is guaranteed by the
        // caller.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    pub(crate) fn as_raw(&self) -> *mut bindings::perf_event_pmu_context {
        self.0.get()
    }

    /// `epc->refcount`.
    #[inline]
    fn refcount(&self) -> &Atomic<i32> {
        // SAFETY: `atomic_t` is a transparent wrapper of its `int` counter, which lives as long
        // as `self` and is only accessed atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.as_raw()).refcount.counter) }
    }

    /// `epc->pmu`: set before the epc is published and never changed.
    #[inline]
    fn pmu(&self) -> *mut bindings::pmu {
        // SAFETY: The field is valid for reads and immutable once published.
        unsafe { (*self.as_raw()).pmu }
    }

    /// `epc->pmu->type`.
    #[inline]
    fn pmu_type(&self) -> i32 {
        // SAFETY: An epc's PMU outlives it (the PMU's unregistration frees its events first).
        unsafe { (*self.pmu()).type_ }
    }

    /// `epc->ctx`, read under the proof of either lock of that context.
    #[inline]
    fn ctx_ptr(&self, _proof: &impl Read) -> *mut bindings::perf_event_context {
        // SAFETY: Writers hold `ctx->lock`; the proof holds one of the locks that exclude them.
        unsafe { (*self.as_raw()).ctx }
    }

    /// Whether the epc is a per-CPU one, embedded in a `perf_cpu_pmu_context`.
    #[inline]
    fn is_embedded(&self) -> bool {
        // SAFETY: `embedded` is set once, before the epc is reachable by anybody else.
        unsafe { bindings::perf_event_pmu_context::embedded_raw(self.as_raw()) != 0 }
    }
}

/// The PMU contexts on `ctx->pmu_ctx_list` of the proof's context, in list order.
pub(crate) fn epcs<'p>(proof: &'p impl Read) -> impl Iterator<Item = &'p Epc> + 'p {
    // SAFETY: The list head is part of the context, which the proof keeps alive.
    let head = unsafe { &raw mut (*proof.ctx().as_raw()).pmu_ctx_list };
    // SAFETY: The list head is valid; with a read proof the list does not change while the
    // proof, and so the iterator, lives.
    unsafe { crate::list::links(head) }.map(|link| {
        // SAFETY: `link` is the `pmu_ctx_entry` of a linked epc, alive while linked.
        unsafe {
            Epc::from_raw(kernel::container_of!(
                link,
                bindings::perf_event_pmu_context,
                pmu_ctx_entry
            ))
        }
    })
}

/// Links `epc` into the proof's context before `before` (at the tail if `None`) and points it
/// back at the context.
fn link_before(proof: &impl Modify, epc: &Epc, before: Option<&Epc>) {
    let ctx = proof.ctx().as_raw();
    // SAFETY: The proof allows modifying the list and the epc's fields; both entries are valid.
    unsafe {
        let at = match before {
            Some(pos) => &raw mut (*pos.as_raw()).pmu_ctx_entry,
            None => &raw mut (*ctx).pmu_ctx_list,
        };
        // `list_add_tail(new, at)` inserts `new` just before `at`.
        bindings::list_add_tail(&raw mut (*epc.as_raw()).pmu_ctx_entry, at);
        (*epc.as_raw()).ctx = ctx;
    }
}

/// Initialises a PMU context for `pmu` with one reference. C: `__perf_init_event_pmu_context()`.
///
/// # Safety
///
/// `epc` must point to a PMU context that nothing else uses yet; `pmu` must outlive it.
#[export]
pub(crate) unsafe extern "C" fn __perf_init_event_pmu_context(
    epc: *mut bindings::perf_event_pmu_context,
    pmu: *mut bindings::pmu,
) {
    // SAFETY: The caller guarantees exclusive access to a valid `epc`.
    unsafe {
        (*epc).pmu = pmu;
        bindings::INIT_LIST_HEAD(&raw mut (*epc).pmu_ctx_entry);
        bindings::INIT_LIST_HEAD(&raw mut (*epc).pinned_active);
        bindings::INIT_LIST_HEAD(&raw mut (*epc).flexible_active);
        Epc::from_raw(epc).refcount().store(1, Relaxed);
    }
}

/// A new, unpublished task PMU context, allocated before `ctx->lock` is taken.
///
/// The memory comes from C's own `kzalloc_obj(*epc)` (the helper `perf_alloc_pmu_context()`:
/// the same kmalloc cache and fast path as C) and goes back with `kfree()`: here if the epc is
/// not needed, in [`free_epc_rcu`] once linked.
///
/// # Invariants
///
/// The pointer is an initialised epc from `perf_alloc_pmu_context()` that nothing else knows of.
pub(crate) struct NewEpc(NonNull<bindings::perf_event_pmu_context>);

impl NewEpc {
    /// Allocates and initialises an epc for `pmu` (zeroed, like C's `kzalloc_obj()`).
    pub(crate) fn new(pmu: *mut bindings::pmu) -> Result<Self> {
        // SAFETY: No precondition (`GFP_KERNEL`: the caller may sleep, as for C's `kzalloc()`).
        let epc = NonNull::new(unsafe { bindings::perf_alloc_pmu_context() }).ok_or(ENOMEM)?;
        // SAFETY: Zeroed memory of the right size and alignment (all-zero is a valid
        // `perf_event_pmu_context`), exclusively ours; the PMU outlives its events' epcs.
        unsafe { __perf_init_event_pmu_context(epc.as_ptr(), pmu) };
        // INVARIANT: Allocated by the helper and initialised above; only `Self` knows of it.
        Ok(Self(epc))
    }

    /// Gives the epc up to the context it is linked on: its last `put_pmu_ctx()` frees it.
    #[inline]
    fn into_raw(self) -> *mut bindings::perf_event_pmu_context {
        core::mem::ManuallyDrop::new(self).0.as_ptr()
    }
}

impl Drop for NewEpc {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant the epc came from `kzalloc()` and nothing else knows of
        // it, so nothing uses it after this.
        unsafe { bindings::kfree(self.0.as_ptr().cast()) };
    }
}

/// Finds the epc of `pmu` in a task context or links `new` as it, taking a reference; releases
/// `ctx->lock` and then frees `new` if it was not needed. The second half of C's
/// `find_get_pmu_context()`.
#[inline]
fn find_get_task<P: Modify>(
    locked: P,
    pmu: *mut bindings::pmu,
    new: NewEpc,
) -> *mut bindings::perf_event_pmu_context {
    let ctx = locked.ctx().as_raw();
    // SAFETY: The caller's PMU is valid.
    let new_type = unsafe { (*pmu).type_ };
    let mut pos = None;
    let mut found = None;
    for epc in epcs(&locked) {
        if epc.pmu() == pmu {
            warn_on_once!(epc.ctx_ptr(&locked) != ctx);
            epc.refcount().add(1, Relaxed);
            found = Some(epc.as_raw());
            break;
        }
        // Keep the list sorted by PMU type.
        if pos.is_none() && epc.pmu_type() > new_type {
            pos = Some(epc);
        }
    }
    let (epc, spare) = match found {
        Some(epc) => (epc, Some(new)),
        None => {
            // From here on the epc belongs to the context: the last `put_pmu_ctx()` frees it.
            let raw = new.into_raw();
            // SAFETY: Just leaked, valid.
            link_before(&locked, unsafe { Epc::from_raw(raw) }, pos);
            (raw, None)
        }
    };
    crate::lock::unlock(locked);
    // Freed after unlocking, as C's `kfree(new)`: no allocator calls under `ctx->lock`.
    drop(spare);
    epc
}

/// Takes a reference on the per-CPU epc `epc` of a CPU context, linking it on first use with the
/// PMU's extra reference. The first half of C's `find_get_pmu_context()`; cannot fail.
#[inline]
fn find_get_cpu<P: Modify>(locked: P, epc: &Epc) -> *mut bindings::perf_event_pmu_context {
    let ctx = locked.ctx().as_raw();
    if epc.ctx_ptr(&locked).is_null() {
        // One extra reference for the PMU; see perf_pmu_free().
        epc.refcount().store(2, Relaxed);
        // SAFETY: The proof allows modifying the epc; `embedded` shares its word with nothing
        // that is written concurrently.
        unsafe { bindings::perf_event_pmu_context::set_embedded_raw(epc.as_raw(), 1) };
        // SAFETY: The proof allows modifying the list; C uses list_add() (head) here.
        unsafe {
            bindings::list_add(
                &raw mut (*epc.as_raw()).pmu_ctx_entry,
                &raw mut (*ctx).pmu_ctx_list,
            );
            (*epc.as_raw()).ctx = ctx;
        }
    } else {
        warn_on_once!(epc.ctx_ptr(&locked) != ctx);
        epc.refcount().add(1, Relaxed);
    }
    crate::lock::unlock(locked);
    epc.as_raw()
}

/// The modification proof for a context whose `find_get_pmu_context()` caller we trust: either
/// it holds `ctx->mutex` (every caller but the inherit path), or the context is unpublished.
enum Access<'a> {
    Mutex(MutexHeld<'a>),
    Unpublished(Unpublished<'a>),
}

impl<'a> Access<'a> {
    /// The proof that fits the caller, or `None` if the context shows neither case (the
    /// caller's contract was broken).
    ///
    /// # Safety
    ///
    /// The caller holds `ctx->mutex`, or `ctx` is a child context being filled by
    /// `perf_event_init_task()` that nothing else can reach.
    #[inline]
    unsafe fn of_c_caller(ctx: &'a Ctx) -> Option<Self> {
        // Decided from the mutex's owner, not from whether it is locked: another task holding
        // it must not pass for us. An unpublished context's mutex is not locked by anybody,
        // and its task is still being created.
        if ctx.mutex_owned_by_current() {
            // SAFETY: The current task holds the mutex (its owner word says so).
            Some(Self::Mutex(unsafe { MutexHeld::assume(ctx) }))
        } else if Unpublished::looks_unpublished(ctx) {
            // SAFETY: Forwarded from the caller: not the first case, so the second.
            unsafe { Unpublished::assume(ctx) }.map(Self::Unpublished)
        } else {
            None
        }
    }
}

/// Returns the epc of `pmu` in `ctx` with a reference taken, creating it if needed; an
/// `ERR_PTR(-ENOMEM)` if a task context's epc cannot be allocated. C: `find_get_pmu_context()`.
///
/// # Safety
///
/// `pmu` and `ctx` must be valid; `event` must be valid if `ctx` is a CPU context (its `cpu`
/// selects the per-CPU epc). The caller holds `ctx->mutex`, except `perf_event_init_task()`'s
/// inherit path, which passes a child context that nothing else can reach yet. Interrupts are
/// enabled.
#[export]
pub(crate) unsafe extern "C" fn find_get_pmu_context(
    pmu: *mut bindings::pmu,
    ctx: *mut bindings::perf_event_context,
    event: *mut bindings::perf_event,
) -> *mut bindings::perf_event_pmu_context {
    // SAFETY: The caller guarantees that `ctx` is valid.
    let ctx = unsafe { Ctx::from_raw(ctx) };
    if ctx.task().is_null() {
        // perf_pmu_migrate_context() / __perf_pmu_install_event() relies on the fact that this
        // cannot fail for CPU contexts.
        // SAFETY: `pmu` is registered (an event of it is being created or moved) and
        // `event->cpu` of a CPU context's event is a possible CPU.
        let epc = unsafe { cpu_epc(pmu, (*event).cpu) };
        // SAFETY: CPU contexts are never unpublished: the caller holds the mutex.
        let held = unsafe { MutexHeld::assume(ctx) };
        return find_get_cpu(held.lock_irq(), epc);
    }

    let new = match NewEpc::new(pmu) {
        Ok(new) => new,
        Err(e) => return e.to_ptr(),
    };
    // SAFETY: Forwarded from the caller's contract.
    match unsafe { Access::of_c_caller(ctx) } {
        Some(Access::Mutex(held)) => find_get_task(held.lock_irq(), pmu, new),
        Some(Access::Unpublished(private)) => find_get_task(private.lock_irq(), pmu, new),
        // A caller that holds neither proof: refuse rather than modify unprotected state.
        None => {
            warn_on_once!(true);
            EINVAL.to_ptr()
        }
    }
}

/// The epc of `pmu` embedded in its per-CPU data for `cpu` (in `perf_cpu_pmu_context`), which
/// lives as long as the PMU is registered.
///
/// # Safety
///
/// `pmu` must be registered for `'a` and `cpu` a possible CPU.
pub(crate) unsafe fn cpu_epc<'a>(pmu: *mut bindings::pmu, cpu: c_int) -> &'a Epc {
    // SAFETY: `pmu->cpu_pmu_context` of a registered PMU is a per-CPU array of valid cpc
    // pointers for the possible CPUs, `cpu` is one of them; the cpc is freed only after the
    // PMU's unregistration.
    unsafe {
        let cpc = *bindings::per_cpu_ptr((*pmu).cpu_pmu_context.cast(), cpu as u32)
            .cast::<*mut bindings::perf_cpu_pmu_context>();
        Epc::from_raw(&raw mut (*cpc).epc)
    }
}

/// Takes one more reference on an epc that has one already. C: `get_pmu_ctx()`.
///
/// # Safety
///
/// `epc` must be valid and the caller must hold a reference on it (warns otherwise).
#[export]
pub(crate) unsafe extern "C" fn get_pmu_ctx(epc: *mut bindings::perf_event_pmu_context) {
    // SAFETY: `epc` is valid; `atomic_inc_not_zero()` is a plain atomic operation.
    let taken = unsafe { bindings::atomic_inc_not_zero(&raw mut (*epc).refcount) };
    warn_on_once!(!taken);
}

/// RCU callback that frees an epc allocated by [`NewEpc`]. C: `free_epc_rcu()`.
///
/// # Safety
///
/// `head` is the `rcu_head` of such an epc, queued once by its last put.
unsafe extern "C" fn free_epc_rcu(head: *mut bindings::callback_head) {
    // SAFETY: `head` is the `rcu_head` (bindgen: `callback_head`) of an epc.
    let epc =
        unsafe { kernel::container_of!(head, bindings::perf_event_pmu_context, callback_head) };
    // SAFETY: The epc came from `kzalloc()` in `NewEpc::new` and was given up when linked;
    // this is its only release.
    unsafe { bindings::kfree(epc.cast()) };
}

/// RCU callback that frees the per-CPU cpc embedding an epc. C: `free_cpc_rcu()`.
///
/// # Safety
///
/// `head` is the `rcu_head` of the epc embedded in a cpc allocated with `kmalloc`, queued once by
/// its last put.
unsafe extern "C" fn free_cpc_rcu(head: *mut bindings::callback_head) {
    // SAFETY: `head` is the `rcu_head` of `cpc->epc`.
    let cpc =
        unsafe { kernel::container_of!(head, bindings::perf_cpu_pmu_context, epc.callback_head) };
    // SAFETY: The cpc came from `kmalloc_node()` (`perf_pmu_register()`) and nothing uses it.
    unsafe { bindings::kfree(cpc.cast()) };
}

/// The RCU callbacks that release epcs, as a parameter so that tests can observe them.
#[derive(Clone, Copy)]
pub(crate) struct EpcFree {
    pub(crate) epc: unsafe extern "C" fn(*mut bindings::callback_head),
    pub(crate) cpc: unsafe extern "C" fn(*mut bindings::callback_head),
}

const EPC_FREE: EpcFree = EpcFree {
    epc: free_epc_rcu,
    cpc: free_cpc_rcu,
};

/// Drops a reference on `epc`; the last one unlinks it from its context and frees it after a
/// grace period. C: `put_pmu_ctx()`.
///
/// # Safety
///
/// `epc` must be valid and linked, and the caller must own the reference it drops and keep
/// `epc->ctx` alive. The caller need not hold `ctx->mutex` (`_free_event()`, `put_event()`), but
/// must not hold `ctx->lock`.
#[export]
pub(crate) unsafe extern "C" fn put_pmu_ctx(epc: *mut bindings::perf_event_pmu_context) {
    // SAFETY: Forwarded from the caller.
    unsafe { put_pmu_ctx_with(epc, EPC_FREE) }
}

/// [`put_pmu_ctx`] with the release callbacks as a parameter.
///
/// # Safety
///
/// As for [`put_pmu_ctx`]; `free` must release what the matching C callbacks release.
// `always`: with the KUnit suites' callers, LLVM keeps it out of line otherwise, and the exported
// `put_pmu_ctx()` becomes a jump to it.
#[inline(always)]
pub(crate) unsafe fn put_pmu_ctx_with(epc: *mut bindings::perf_event_pmu_context, free: EpcFree) {
    // SAFETY: The caller's reference keeps `epc` linked, so `epc->ctx` is set and stable, and
    // keeps the context alive.
    let ctx = unsafe { Ctx::from_raw((*epc).ctx) };
    // SAFETY: As above.
    let Some(last) = (unsafe { LastRef::put(ctx, epc) }) else {
        return;
    };
    let raw = last.epc();
    // SAFETY: `LastRef` holds `ctx->lock` and allows unlinking this epc; its list heads are
    // valid.
    let embedded = unsafe {
        let entry = &raw mut (*raw).pmu_ctx_entry;
        warn_on_once!(bindings::list_empty(entry));
        bindings::list_del_init(entry);
        (*raw).ctx = core::ptr::null_mut();
        warn_on_once!(!bindings::list_empty(&raw mut (*raw).pinned_active));
        warn_on_once!(!bindings::list_empty(&raw mut (*raw).flexible_active));
        Epc::from_raw(raw).is_embedded()
    };
    // Unlock (restoring interrupts) before queueing the callback.
    drop(last);
    let cb = if embedded { free.cpc } else { free.epc };
    // SAFETY: The count reached zero once and the epc is unlinked: nothing but RCU readers can
    // reach it, and its `rcu_head` is not queued yet.
    unsafe { rcu::call_rcu_raw(&raw mut (*raw).callback_head, cb) };
}

#[kunit_tests(perf_rust_core_epc)]
mod tests {
    use super::*;
    use crate::ctx::{alloc_perf_context, put_ctx};
    use kernel::alloc::flags;
    use kernel::sync::atomic::Atomic;

    static FREED_EPC: Atomic<usize> = Atomic::new(0);
    static FREED_CPC: Atomic<usize> = Atomic::new(0);

    /// [`free_epc_rcu`] that also counts.
    ///
    /// # Safety
    ///
    /// As for [`free_epc_rcu`].
    unsafe extern "C" fn counting_free_epc(head: *mut bindings::callback_head) {
        FREED_EPC.add(1, Relaxed);
        // SAFETY: Forwarded from `put_pmu_ctx_with`.
        unsafe { free_epc_rcu(head) };
    }

    /// [`free_cpc_rcu`] that also counts.
    ///
    /// # Safety
    ///
    /// As for [`free_cpc_rcu`].
    unsafe extern "C" fn counting_free_cpc(head: *mut bindings::callback_head) {
        FREED_CPC.add(1, Relaxed);
        // SAFETY: Forwarded from `put_pmu_ctx_with`.
        unsafe { free_cpc_rcu(head) };
    }

    const COUNTING: EpcFree = EpcFree {
        epc: counting_free_epc,
        cpc: counting_free_cpc,
    };

    /// A PMU with only a type: the epc code reads nothing else of it.
    fn fake_pmu(type_: i32) -> Result<KBox<bindings::pmu>> {
        let b = KBox::<bindings::pmu>::new_uninit(flags::GFP_KERNEL | flags::__GFP_ZERO)?;
        // SAFETY: All-zero is a valid `struct pmu` for these tests.
        let mut b = unsafe { b.assume_init() };
        b.type_ = type_;
        Ok(b)
    }

    /// A task context of the current task (not published in it), or a CPU-like context.
    struct TestCtx(*mut bindings::perf_event_context);

    impl TestCtx {
        fn new(task: bool) -> Result<Self> {
            let task = if task {
                // SAFETY: Reading `current` has no requirements.
                unsafe { bindings::get_current() }
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: `task` is NULL or the current task.
            let ctx = unsafe { alloc_perf_context(task) };
            if ctx.is_null() {
                return Err(ENOMEM);
            }
            Ok(Self(ctx))
        }

        fn ctx(&self) -> &Ctx {
            // SAFETY: The test holds the context's only reference.
            unsafe { Ctx::from_raw(self.0) }
        }

        /// `find_get_pmu_context()` as `sys_perf_event_open()` calls it: under `ctx->mutex`.
        fn find_get(&self, pmu: &mut bindings::pmu) -> *mut bindings::perf_event_pmu_context {
            let _m = self.ctx().lock_mutex();
            // SAFETY: A task context, its mutex held; `event` is unused for task contexts.
            let epc = unsafe { find_get_pmu_context(pmu, self.0, core::ptr::null_mut()) };
            assert!(!epc.is_null() && kernel::error::from_err_ptr(epc).is_ok());
            epc
        }

        /// The PMU types of the epcs on the list, in order, and their counts.
        fn list(&self) -> Result<KVec<(i32, i32)>> {
            // Allocated before taking `ctx->lock`: no allocation under it.
            let mut out = KVec::with_capacity(8, GFP_KERNEL)?;
            let (mut linked_here, mut fits) = (true, true);
            let lock = self.ctx().lock_irqsave();
            for epc in epcs(&lock) {
                linked_here &= epc.ctx_ptr(&lock) == self.0;
                let item = (epc.pmu_type(), epc.refcount().load(Relaxed));
                fits &= out.push_within_capacity(item).is_ok();
            }
            drop(lock);
            // Asserted after unlocking: nothing may panic under `ctx->lock`.
            assert!(linked_here, "an epc on the list points to another context");
            assert!(fits);
            Ok(out)
        }
    }

    impl Drop for TestCtx {
        fn drop(&mut self) {
            // SAFETY: The test's reference.
            unsafe { put_ctx(self.0) };
        }
    }

    #[test]
    fn events_of_one_pmu_share_an_epc() -> Result {
        let ctx = TestCtx::new(true)?;
        let mut pmu = fake_pmu(4)?;
        let a = ctx.find_get(&mut pmu);
        let b = ctx.find_get(&mut pmu);
        assert_eq!(a, b);
        // SAFETY: The test owns two references, so `a` is alive.
        let epc = unsafe { Epc::from_raw(a) };
        assert_eq!(epc.refcount().load(Relaxed), 2);
        // SAFETY: The test holds a reference.
        unsafe { get_pmu_ctx(a) };
        assert_eq!(epc.refcount().load(Relaxed), 3);
        for _ in 0..3 {
            // SAFETY: Each put drops one of the test's references.
            unsafe { put_pmu_ctx_with(a, COUNTING) };
        }
        assert_eq!(ctx.list()?.len(), 0);
        Ok(())
    }

    #[test]
    fn pmus_get_their_own_epcs_sorted_by_type() -> Result {
        let ctx = TestCtx::new(true)?;
        let (mut p5, mut p1, mut p3) = (fake_pmu(5)?, fake_pmu(1)?, fake_pmu(3)?);
        let e5 = ctx.find_get(&mut p5);
        let e1 = ctx.find_get(&mut p1);
        let e3 = ctx.find_get(&mut p3);
        assert!(e5 != e1 && e1 != e3 && e3 != e5);
        let l = ctx.list()?;
        assert_eq!(&l[..], &[(1, 1), (3, 1), (5, 1)]);
        for e in [e3, e1, e5] {
            // SAFETY: The test's reference.
            unsafe { put_pmu_ctx_with(e, COUNTING) };
        }
        Ok(())
    }

    /// 2016066c6619 ("perf/core: Order the PMU list to fix warning about unordered
    /// pmu_ctx_list"): a parent context gets its epcs in event creation order, a child
    /// context filled by inherit in group order (pinned groups first). Both lists must come
    /// out the same, or two cloned contexts do not match epc by epc.
    #[test]
    fn parent_and_inherited_child_lists_match() -> Result {
        let parent = TestCtx::new(true)?;
        let child = TestCtx::new(true)?;
        // A task-data holder (dynamic type), a tracepoint, a pinned software event.
        let (mut holder, mut tp, mut sw) = (fake_pmu(11)?, fake_pmu(2)?, fake_pmu(1)?);
        let mut got = KVec::new();
        for p in [&mut holder, &mut tp, &mut sw] {
            got.push(parent.find_get(p), GFP_KERNEL)?;
        }
        for p in [&mut sw, &mut holder, &mut tp] {
            got.push(child.find_get(p), GFP_KERNEL)?;
        }
        let (pl, cl) = (parent.list()?, child.list()?);
        assert_eq!(&pl[..], &[(1, 1), (2, 1), (11, 1)]);
        assert_eq!(&pl[..], &cl[..]);
        for e in got {
            // SAFETY: The test's reference on each epc.
            unsafe { put_pmu_ctx_with(e, COUNTING) };
        }
        Ok(())
    }

    #[test]
    fn last_put_unlinks_and_frees_after_a_grace_period() -> Result {
        let ctx = TestCtx::new(true)?;
        let (mut pa, mut pb) = (fake_pmu(7)?, fake_pmu(8)?);
        let a = ctx.find_get(&mut pa);
        let b = ctx.find_get(&mut pb);
        // Let callbacks queued by earlier tests run before counting.
        rcu::barrier();
        let freed = FREED_EPC.load(Relaxed);
        let reader = rcu::read_lock();
        // SAFETY: The test's only reference on `b`.
        unsafe { put_pmu_ctx_with(b, COUNTING) };
        // Unlinked at once, and `epc->ctx` cleared ...
        // SAFETY: `b` cannot be freed before the read-side section ends.
        let (unlinked, ctx_cleared) = unsafe {
            (
                bindings::list_empty(&raw mut (*b).pmu_ctx_entry),
                (*b).ctx.is_null(),
            )
        };
        // ... but freed only after a grace period.
        let freed_inside = FREED_EPC.load(Relaxed);
        drop(reader);
        assert!(unlinked && ctx_cleared);
        assert_eq!(freed_inside, freed);
        assert_eq!(&ctx.list()?[..], &[(7, 1)]);
        rcu::barrier();
        assert_eq!(FREED_EPC.load(Relaxed), freed + 1);
        // SAFETY: The test's reference on `a`.
        unsafe { put_pmu_ctx_with(a, COUNTING) };
        rcu::barrier();
        assert_eq!(FREED_EPC.load(Relaxed), freed + 2);
        Ok(())
    }

    #[test]
    fn cpu_epc_is_freed_only_by_the_pmu_reference() -> Result {
        // A CPU context (no task) and a cpc as perf_pmu_register() makes one.
        let ctx = TestCtx::new(false)?;
        let mut pmu = fake_pmu(9)?;
        let cpc = KBox::<bindings::perf_cpu_pmu_context>::new_uninit(
            flags::GFP_KERNEL | flags::__GFP_ZERO,
        )?;
        // SAFETY: All-zero is a valid cpc (C allocates it zeroed too).
        let cpc = KBox::into_raw(unsafe { cpc.assume_init() });
        // SAFETY: `cpc` is ours, `pmu` outlives it.
        let epc = unsafe {
            let epc = &raw mut (*cpc).epc;
            __perf_init_event_pmu_context(epc, &mut *pmu);
            Epc::from_raw(epc)
        };
        rcu::barrier();
        let (freed_epc, freed_cpc) = (FREED_EPC.load(Relaxed), FREED_CPC.load(Relaxed));
        {
            let m = ctx.ctx().lock_mutex();
            assert_eq!(find_get_cpu(m.lock_irq(), epc), epc.as_raw());
            assert_eq!(find_get_cpu(m.lock_irq(), epc), epc.as_raw());
        }
        // Two events plus the PMU's reference.
        assert_eq!(epc.refcount().load(Relaxed), 3);
        assert!(epc.is_embedded());
        for _ in 0..2 {
            // SAFETY: The events' references.
            unsafe { put_pmu_ctx_with(epc.as_raw(), COUNTING) };
        }
        rcu::barrier();
        assert_eq!(&ctx.list()?[..], &[(9, 1)]);
        assert_eq!(FREED_CPC.load(Relaxed), freed_cpc);
        // The PMU's put, as perf_pmu_free() does, frees the whole cpc.
        // SAFETY: The PMU's reference.
        unsafe { put_pmu_ctx_with(epc.as_raw(), COUNTING) };
        rcu::barrier();
        assert_eq!(FREED_CPC.load(Relaxed), freed_cpc + 1);
        assert_eq!(FREED_EPC.load(Relaxed), freed_epc);
        assert_eq!(ctx.list()?.len(), 0);
        Ok(())
    }

    /// What the racing kthreads share.
    struct Race {
        ctx: *mut bindings::perf_event_context,
        pmu: *mut bindings::pmu,
        rounds: usize,
        done: Atomic<bool>,
    }

    /// One racer: opens and closes "events" of one PMU, like `perf record` on a short program:
    /// find_get under `ctx->mutex`, put without it (`_free_event()`).
    ///
    /// # Safety
    ///
    /// `data` must point to a [`Race`] that outlives the thread.
    unsafe extern "C" fn racer(data: *mut c_void) -> c_int {
        // SAFETY: `data` is a `Race` that outlives the thread (the test stops it first).
        let race = unsafe { &*data.cast::<Race>() };
        // SAFETY: The test keeps the context alive.
        let ctx = unsafe { Ctx::from_raw(race.ctx) };
        for _ in 0..race.rounds {
            let epc = {
                let _m = ctx.lock_mutex();
                // SAFETY: Task context, mutex held.
                unsafe { find_get_pmu_context(race.pmu, race.ctx, core::ptr::null_mut()) }
            };
            if kernel::error::from_err_ptr(epc).is_err() {
                continue;
            }
            // SAFETY: The reference just taken.
            unsafe { put_pmu_ctx_with(epc, COUNTING) };
        }
        race.done.store(true, kernel::sync::atomic::Release);
        crate::testing::wait_to_be_stopped();
        0
    }

    #[test]
    fn concurrent_find_get_and_put_keep_the_list_consistent() -> Result {
        // The race fixed by upstream commit 4f64a6c9f6f1: a put dropping the last reference
        // without ctx->mutex while another task finds the same epc under ctx->lock. One PMU's
        // epc is held by the test throughout and must stay; the other's comes and goes.
        let ctx = TestCtx::new(true)?;
        let (mut held, mut churn) = (fake_pmu(2)?, fake_pmu(6)?);
        let kept = ctx.find_get(&mut held);
        let (churn, held): (*mut bindings::pmu, *mut bindings::pmu) = (&mut *churn, &mut *held);
        let race = |pmu| Race {
            ctx: ctx.0,
            pmu,
            rounds: 300,
            done: Atomic::new(false),
        };
        let races = [race(churn), race(churn), race(held)];
        let mut threads = KVec::new();
        for race in &races {
            // SAFETY: `racer` takes a `Race`; `race` outlives the thread (stopped below).
            let t = unsafe { crate::testing::kthread_run(racer, race, c"perf-epc-race") }?;
            threads.push(t, GFP_KERNEL)?;
        }
        // Let every racer finish its rounds (kthread_stop() on a thread that has not started
        // would keep it from running at all).
        while !races
            .iter()
            .all(|r| r.done.load(kernel::sync::atomic::Acquire))
        {
            // SAFETY: The test runs in a sleepable KUnit thread.
            unsafe { bindings::schedule_timeout_interruptible(1) };
        }
        for t in threads {
            // SAFETY: Our kthreads, done with their rounds and waiting to be stopped.
            assert_eq!(unsafe { bindings::kthread_stop(t) }, 0);
        }
        assert_eq!(&ctx.list()?[..], &[(2, 1)]);
        // SAFETY: The test's reference.
        unsafe { put_pmu_ctx_with(kept, COUNTING) };
        assert_eq!(ctx.list()?.len(), 0);
        rcu::barrier();
        Ok(())
    }

    /// What the mutex holder kthread shares with the test.
    struct Holder {
        ctx: *mut bindings::perf_event_context,
        holding: Atomic<bool>,
        release: Atomic<bool>,
    }

    /// Takes the context's mutex, says so, holds it until told to release it, then waits to
    /// be stopped.
    ///
    /// # Safety
    ///
    /// `data` must point to a [`Holder`] whose context outlives the thread.
    unsafe extern "C" fn holder(data: *mut c_void) -> c_int {
        // SAFETY: `data` is a `Holder` that outlives the thread.
        let h = unsafe { &*data.cast::<Holder>() };
        // SAFETY: The test keeps the context alive.
        let m = unsafe { Ctx::from_raw(h.ctx) }.lock_mutex();
        h.holding.store(true, kernel::sync::atomic::Release);
        let _ = crate::testing::wait_until(|| h.release.load(kernel::sync::atomic::Acquire));
        drop(m);
        crate::testing::wait_to_be_stopped();
        0
    }

    #[test]
    fn another_tasks_mutex_is_no_proof() -> Result {
        // find_get_pmu_context() tells its two callers apart by the context's mutex: held by
        // the caller (sys_perf_event_open() and friends) or by nobody (the inherit path's
        // unpublished child). A mutex that another task holds is neither: locked, but no proof
        // for us, and the context (of a running task) is not unpublished either.
        let ctx = TestCtx::new(true)?;
        assert!(!ctx.ctx().mutex_owned_by_current());
        {
            let _m = ctx.ctx().lock_mutex();
            assert!(ctx.ctx().mutex_owned_by_current());
            // SAFETY: We hold the mutex.
            let access = unsafe { Access::of_c_caller(ctx.ctx()) };
            assert!(matches!(access, Some(Access::Mutex(_))));
        }
        let h = Holder {
            ctx: ctx.0,
            holding: Atomic::new(false),
            release: Atomic::new(false),
        };
        // SAFETY: `holder` takes a `Holder`; `h` and the context outlive the thread.
        let t = unsafe { crate::testing::kthread_run(holder, &h, c"perf-epc-holder") }?;
        let holding = crate::testing::wait_until(|| h.holding.load(kernel::sync::atomic::Acquire));
        let (locked, ours) = (
            ctx.ctx().mutex_is_locked(),
            ctx.ctx().mutex_owned_by_current(),
        );
        // SAFETY: Deliberately a broken contract: the holder, not we, has the mutex. The
        // function only reads the context to refuse.
        let refused = unsafe { Access::of_c_caller(ctx.ctx()) }.is_none();
        h.release.store(true, kernel::sync::atomic::Release);
        // SAFETY: Our kthread; it releases the mutex and waits to be stopped.
        assert_eq!(unsafe { bindings::kthread_stop(t) }, 0);
        holding?;
        // The holder thread took the mutex: locked, but not by us.
        assert!(locked);
        assert!(!ours);
        assert!(refused);
        Ok(())
    }
}
