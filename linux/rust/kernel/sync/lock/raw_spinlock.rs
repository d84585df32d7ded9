// SPDX-License-Identifier: GPL-2.0

//! Raw spinlocks (`raw_spinlock_t`).
//!
//! A raw spinlock spins even on PREEMPT_RT, so it may be taken in hard interrupt context and
//! nested inside the scheduler's locks. Three backends share the C `raw_spinlock_t` state and
//! differ in what they do with local interrupts, like C's `raw_spin_lock()`,
//! `raw_spin_lock_irq()` and `raw_spin_lock_irqsave()`:
//!
//! - [`RawSpinLock`]: leaves interrupts alone (the caller has them off already, or the lock is
//!   never taken from interrupt context);
//! - [`RawSpinLockIrq`]: disables interrupts while held and enables them when released;
//! - [`RawSpinLockIrqSave`]: disables interrupts while held and restores the previous state when
//!   released; the saved flags live in the guard.
//!
//! A lock that C owns (embedded in a C structure) is used through [`Lock::from_raw`] with the
//! backend that matches the call site; a lock that C code already took can be adopted with
//! [`Guard::new`](super::Guard::new). Lockdep sees one lock object either way.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)

use super::{Backend, Guard, Lock};
use crate::{bindings, ffi::c_ulong};

/// Creates a [`RawSpinLock`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_raw_spinlock {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::sync::RawSpinLock::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_raw_spinlock;

/// A raw spinlock that leaves local interrupts as they are. C: `raw_spin_lock()`.
///
/// # Examples
///
/// ```
/// use kernel::sync::{new_raw_spinlock, RawSpinLock};
///
/// let lock = KBox::pin_init(new_raw_spinlock!(0u32), GFP_KERNEL)?;
/// {
///     let mut guard = lock.lock();
///     *guard += 1;
///     lock.assert_is_held();
/// }
/// // A second lock of the same class, taken while the first is held, needs a subclass.
/// let other = KBox::pin_init(RawSpinLock::new(0u32, c"other", kernel::static_lock_class!()),
///                            GFP_KERNEL)?;
/// let outer = lock.lock();
/// let inner = other.lock_nested(1);
/// assert_eq!(*outer + *inner, 1);
/// # Ok::<(), Error>(())
/// ```
pub type RawSpinLock<T> = Lock<T, RawSpinLockBackend>;

/// A raw spinlock that disables local interrupts while held. C: `raw_spin_lock_irq()`.
///
/// For code that runs with interrupts enabled: unlocking enables them again. C's
/// `raw_spin_unlock_irq()` enables them unconditionally, so C code that takes such a lock
/// with interrupts already off turns them on behind its own back; here that cannot happen from
/// safe code: the guard records whether interrupts were enabled when the lock was taken and
/// only then enables them (a check of the CPU's interrupt flag, in every configuration). Code
/// that may run with interrupts off should still use [`RawSpinLockIrqSave`], which says so.
///
/// # Examples
///
/// ```
/// use kernel::sync::{lock::raw_spinlock::{irqs_disabled, LocalIrqSave}, RawSpinLockIrq};
///
/// let lock = KBox::pin_init(
///     RawSpinLockIrq::new(0u32, c"irq", kernel::static_lock_class!()),
///     GFP_KERNEL,
/// )?;
/// assert!(!irqs_disabled());
/// {
///     let mut guard = lock.lock();
///     assert!(irqs_disabled());
///     *guard += 1;
/// }
/// assert!(!irqs_disabled());
/// // A failed `try_lock()` leaves interrupts as it found them (C's `raw_spin_trylock_irq()`
/// // enables them when it fails).
/// {
///     let _held = lock.lock();
///     assert!(lock.try_lock().is_none());
///     assert!(irqs_disabled());
/// }
/// // Taken inside a section that has interrupts off, it leaves them off.
/// let irqs = LocalIrqSave::new();
/// drop(lock.lock());
/// assert!(irqs_disabled());
/// drop(lock.try_lock());
/// assert!(irqs_disabled());
/// drop(irqs);
/// assert!(!irqs_disabled());
/// # Ok::<(), Error>(())
/// ```
pub type RawSpinLockIrq<T> = Lock<T, RawSpinLockIrqBackend>;

/// A raw spinlock that disables local interrupts while held and restores their previous state
/// when released. C: `raw_spin_lock_irqsave()`.
///
/// # Examples
///
/// ```
/// use kernel::sync::{lock::raw_spinlock::irqs_disabled, RawSpinLockIrqSave};
///
/// let lock = KBox::pin_init(
///     RawSpinLockIrqSave::new(5u32, c"irqsave", kernel::static_lock_class!()),
///     GFP_KERNEL,
/// )?;
/// let second = KBox::pin_init(
///     RawSpinLockIrqSave::new((), c"irqsave2", kernel::static_lock_class!()),
///     GFP_KERNEL,
/// )?;
/// assert!(!irqs_disabled());
/// {
///     let guard = lock.lock();
///     assert!(irqs_disabled());
///     assert_eq!(*guard, 5);
///     // Nested irqsave sections restore what they found (and nothing may sleep in here,
///     // allocations included).
///     drop(second.lock());
///     assert!(irqs_disabled());
/// }
/// assert!(!irqs_disabled());
/// # Ok::<(), Error>(())
/// ```
///
/// A lock that C already took can be adopted, here one that C's `raw_spin_lock_irqsave()` took;
/// dropping the guard releases it:
///
/// ```
/// use kernel::{bindings, sync::{lock::Guard, RawSpinLockIrqSave}};
///
/// let lock = KBox::pin_init(
///     RawSpinLockIrqSave::new((), c"adopted", kernel::static_lock_class!()),
///     GFP_KERNEL,
/// )?;
/// // SAFETY: `lock` is a valid, initialised raw spinlock, not held.
/// let flags = unsafe { bindings::raw_spin_lock_irqsave(lock.as_raw()) };
/// // SAFETY: The lock was just taken with `raw_spin_lock_irqsave()`, which returned `flags`.
/// let guard = unsafe { Guard::new(&*lock, flags) };
/// drop(guard);
/// assert!(lock.try_lock().is_some());
/// # Ok::<(), Error>(())
/// ```
pub type RawSpinLockIrqSave<T> = Lock<T, RawSpinLockIrqSaveBackend>;

/// A [`Guard`] of a [`RawSpinLock`].
pub type RawSpinLockGuard<'a, T> = Guard<'a, T, RawSpinLockBackend>;

/// A [`Guard`] of a [`RawSpinLockIrq`].
pub type RawSpinLockIrqGuard<'a, T> = Guard<'a, T, RawSpinLockIrqBackend>;

/// A [`Guard`] of a [`RawSpinLockIrqSave`]; it holds the saved interrupt flags.
pub type RawSpinLockIrqSaveGuard<'a, T> = Guard<'a, T, RawSpinLockIrqSaveBackend>;

/// The backends whose state is a C `raw_spinlock_t`.
///
/// # Safety
///
/// Implementers must have `State = bindings::raw_spinlock_t`, initialised by
/// [`Backend::init`] as a raw spinlock.
pub unsafe trait RawSpinLockState: Backend<State = bindings::raw_spinlock_t> {}

/// Whether local interrupts are disabled on this CPU. C: `irqs_disabled()`.
#[inline]
pub fn irqs_disabled() -> bool {
    // SAFETY: No requirements.
    unsafe { bindings::irqs_disabled() }
}

/// Asserts (with lockdep) that local interrupts are disabled. C: `lockdep_assert_irqs_disabled()`.
#[inline]
pub fn lockdep_assert_irqs_disabled() {
    // SAFETY: No requirements.
    unsafe { bindings::lockdep_assert_irqs_disabled() }
}

/// Local interrupts disabled on this CPU, with the state to restore. C: `local_irq_save()`;
/// dropping it is `local_irq_restore()`.
///
/// For sections that must have interrupts off before a lock is taken, e.g. an RCU read-side
/// section that ends while a lock nested inside the scheduler's locks is held (see
/// `rcu_read_unlock_special()`): the lock is then taken with [`RawSpinLock`], and the guard is
/// dropped before this value, which together are `raw_spin_unlock_irqrestore()`.
///
/// # Invariants
///
/// Interrupts are disabled on this CPU since `flags` were saved, and the value stays on that CPU.
///
/// # Examples
///
/// ```
/// use kernel::sync::{lock::raw_spinlock::{irqs_disabled, LocalIrqSave}, RawSpinLock};
///
/// let lock = KBox::pin_init(
///     RawSpinLock::new(1u32, c"under_irqsave", kernel::static_lock_class!()),
///     GFP_KERNEL,
/// )?;
/// assert!(!irqs_disabled());
/// {
///     let irqs = LocalIrqSave::new();
///     assert!(irqs_disabled());
///     let guard = lock.lock();
///     assert_eq!(*guard, 1);
///     // Nested saves restore what they found.
///     drop(LocalIrqSave::new());
///     assert!(irqs_disabled());
///     drop(guard);
///     drop(irqs);
/// }
/// assert!(!irqs_disabled());
/// # Ok::<(), Error>(())
/// ```
pub struct LocalIrqSave {
    flags: c_ulong,
    _not_send: crate::types::NotThreadSafe,
}

impl LocalIrqSave {
    /// Saves the interrupt state and disables interrupts.
    #[inline]
    pub fn new() -> Self {
        // SAFETY: No requirements.
        let flags = unsafe { bindings::local_irq_save() };
        // INVARIANT: Interrupts were just disabled, and `NotThreadSafe` keeps the value here.
        Self {
            flags,
            _not_send: crate::types::NotThreadSafe,
        }
    }
}

impl Default for LocalIrqSave {
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for LocalIrqSave {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant, `flags` were saved on this CPU by `local_irq_save()`.
        unsafe { bindings::local_irq_restore(self.flags) };
    }
}

impl<T: ?Sized, B: RawSpinLockState> Lock<T, B> {
    /// Returns the C `raw_spinlock_t`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::raw_spinlock_t {
        self.state.get()
    }

    /// Asserts (with lockdep) that the current context holds this lock.
    /// C: `lockdep_assert_held()`.
    #[inline]
    pub fn assert_is_held(&self) {
        // SAFETY: The lock is initialised, as the existence of `self` proves.
        unsafe { B::assert_is_held(self.state.get()) }
    }
}

impl<T: ?Sized> Lock<T, RawSpinLockBackend> {
    /// Acquires the lock with a lockdep subclass, for nesting two locks of the same class.
    /// C: `raw_spin_lock_nested()`.
    #[inline]
    pub fn lock_nested(&self, subclass: i32) -> Guard<'_, T, RawSpinLockBackend> {
        // SAFETY: The lock is initialised, as the existence of `self` proves.
        unsafe { bindings::raw_spin_lock_nested(self.state.get(), subclass) };
        // SAFETY: The lock was just acquired.
        unsafe { Guard::new(self, ()) }
    }
}

impl<T: ?Sized> Lock<T, RawSpinLockIrqSaveBackend> {
    /// Acquires the lock with a lockdep subclass, saving and disabling interrupts.
    /// C: `raw_spin_lock_irqsave_nested()`.
    #[inline]
    pub fn lock_nested(&self, subclass: i32) -> Guard<'_, T, RawSpinLockIrqSaveBackend> {
        // SAFETY: The lock is initialised, as the existence of `self` proves.
        let flags = unsafe { bindings::raw_spin_lock_irqsave_nested(self.state.get(), subclass) };
        // SAFETY: The lock was just acquired with these flags.
        unsafe { Guard::new(self, flags) }
    }
}

/// Initialises a `raw_spinlock_t`.
///
/// # Safety
///
/// `ptr` must be valid for writes; `name` and `key` must be valid for reads indefinitely.
#[inline]
unsafe fn raw_init(
    ptr: *mut bindings::raw_spinlock_t,
    name: *const crate::ffi::c_char,
    key: *mut bindings::lock_class_key,
) {
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::raw_spin_lock_init(ptr, name, key) }
}

/// The [`RawSpinLock`] backend: `raw_spin_lock()`/`raw_spin_unlock()`.
pub struct RawSpinLockBackend;

// SAFETY: The C `raw_spinlock_t` ensures mutual exclusion; `relock` uses the default, which
// takes the lock the same way again.
unsafe impl Backend for RawSpinLockBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = ();

    #[inline]
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: Guaranteed by the caller.
        unsafe { raw_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
        unsafe { bindings::raw_spin_lock(ptr) }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
        (unsafe { bindings::raw_spin_trylock(ptr) } != 0).then_some(())
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The caller owns the lock.
        unsafe { bindings::raw_spin_unlock(ptr) }
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
        unsafe { bindings::raw_spin_assert_is_held(ptr) }
    }
}

// SAFETY: `State` is `raw_spinlock_t`, initialised by `raw_init`.
unsafe impl RawSpinLockState for RawSpinLockBackend {}

/// The [`RawSpinLockIrq`] backend: `raw_spin_lock_irq()`/`raw_spin_unlock_irq()`, or
/// `raw_spin_unlock()` if interrupts were already disabled at lock time (the guard state says
/// which).
pub struct RawSpinLockIrqBackend;

// SAFETY: The C `raw_spinlock_t` ensures mutual exclusion; `relock` uses the default, which
// takes the lock the same way again and records the interrupt state anew. Unlocking enables
// interrupts only if they were enabled when the lock was taken, so the interrupt state after
// the guard is the one before it.
unsafe impl Backend for RawSpinLockIrqBackend {
    type State = bindings::raw_spinlock_t;
    /// Whether interrupts were enabled when the lock was taken.
    type GuardState = bool;

    #[inline]
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: Guaranteed by the caller.
        unsafe { raw_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        let enabled = !irqs_disabled();
        if enabled {
            // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
            unsafe { bindings::raw_spin_lock_irq(ptr) }
        } else {
            // SAFETY: As above; interrupts are disabled already.
            unsafe { bindings::raw_spin_lock(ptr) }
        }
        enabled
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let enabled = !irqs_disabled();
        // C's `raw_spin_trylock_irq()` enables interrupts when it fails: only where they were.
        let taken = if enabled {
            // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
            unsafe { bindings::raw_spin_trylock_irq(ptr) }
        } else {
            // SAFETY: As above; interrupts are disabled already.
            unsafe { bindings::raw_spin_trylock(ptr) }
        };
        (taken != 0).then_some(enabled)
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, enabled: &Self::GuardState) {
        if *enabled {
            // SAFETY: The caller owns the lock; interrupts were enabled before it was taken.
            unsafe { bindings::raw_spin_unlock_irq(ptr) }
        } else {
            // SAFETY: The caller owns the lock; interrupts were disabled before it was taken
            // and stay so.
            unsafe { bindings::raw_spin_unlock(ptr) }
        }
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
        unsafe { bindings::raw_spin_assert_is_held(ptr) }
    }
}

// SAFETY: `State` is `raw_spinlock_t`, initialised by `raw_init`.
unsafe impl RawSpinLockState for RawSpinLockIrqBackend {}

/// The [`RawSpinLockIrqSave`] backend: `raw_spin_lock_irqsave()`/
/// `raw_spin_unlock_irqrestore()`, with the flags kept in the guard.
pub struct RawSpinLockIrqSaveBackend;

// SAFETY: The C `raw_spinlock_t` ensures mutual exclusion; `relock` uses the default, which
// takes the lock again and stores the new flags in the guard.
unsafe impl Backend for RawSpinLockIrqSaveBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = c_ulong;

    #[inline]
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: Guaranteed by the caller.
        unsafe { raw_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
        unsafe { bindings::raw_spin_lock_irqsave(ptr) }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags: c_ulong = 0;
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock; `flags` is a
        // valid place for the saved flags.
        (unsafe { bindings::raw_spin_trylock_irqsave(ptr, &mut flags) } != 0).then_some(flags)
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: The caller owns the lock, taken with these flags.
        unsafe { bindings::raw_spin_unlock_irqrestore(ptr, *guard_state) }
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The caller guarantees that `ptr` is a valid, initialised lock.
        unsafe { bindings::raw_spin_assert_is_held(ptr) }
    }
}

// SAFETY: `State` is `raw_spinlock_t`, initialised by `raw_init`.
unsafe impl RawSpinLockState for RawSpinLockIrqSaveBackend {}
