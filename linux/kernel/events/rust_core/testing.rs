// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the KUnit suites of the Rust perf core (built with `CONFIG_KUNIT=y` only).

use crate::{ctx::alloc_ctx, lock::CtxRef};
use kernel::{bindings, prelude::*};

/// Allocates a context for `task` (NULL: a context without a task); the caller owns its
/// reference.
pub(crate) fn alloc(task: *mut bindings::task_struct) -> Result<*mut bindings::perf_event_context> {
    // SAFETY: The tests pass NULL or a task they keep alive.
    unsafe { alloc_ctx(task) }.map(CtxRef::into_raw)
}

/// Sleeps until `cond` holds; fails after about 10 s.
pub(crate) fn wait_until(mut cond: impl FnMut() -> bool) -> Result {
    for _ in 0..10_000 {
        if cond() {
            return Ok(());
        }
        // SAFETY: KUnit tests run in a sleepable thread.
        unsafe { bindings::msleep(1) };
    }
    Err(ETIMEDOUT)
}

/// The end of a test kthread's function: sleeps until `kthread_stop()`.
pub(crate) fn wait_to_be_stopped() {
    // SAFETY: Called from a kthread; plain kthread API.
    while !unsafe { bindings::kthread_should_stop() } {
        // SAFETY: Sleeping in a kthread is fine.
        unsafe { bindings::schedule_timeout_interruptible(1) };
    }
}

/// The function a test kthread runs.
pub(crate) type ThreadFn = unsafe extern "C" fn(*mut c_void) -> c_int;

/// Creates a kthread named `name` that will run `f(data)` once woken (`kthread_create()`).
///
/// # Safety
///
/// `f` must be sound to call with `data` from another thread for as long as the thread may run
/// (the test stops it before `data` goes away).
pub(crate) unsafe fn kthread_create<T>(
    f: ThreadFn,
    data: *const T,
    name: &CStr,
) -> Result<*mut bindings::task_struct> {
    // SAFETY: `f` and `data` are sound together (guaranteed by the caller); the name is passed
    // as the argument of a "%s" format, so it may contain anything.
    let t = unsafe {
        bindings::kthread_create_on_node(
            Some(f),
            data.cast_mut().cast(),
            bindings::NUMA_NO_NODE,
            c"%s".as_char_ptr(),
            name.as_char_ptr(),
        )
    };
    kernel::error::from_err_ptr(t)
}

/// [`kthread_create`], then wakes the thread (`kthread_run()`).
///
/// # Safety
///
/// As for [`kthread_create`].
pub(crate) unsafe fn kthread_run<T>(
    f: ThreadFn,
    data: *const T,
    name: &CStr,
) -> Result<*mut bindings::task_struct> {
    // SAFETY: Forwarded from the caller.
    let t = unsafe { kthread_create(f, data, name) }?;
    // SAFETY: A new kthread, not woken yet.
    unsafe { bindings::wake_up_process(t) };
    Ok(t)
}
