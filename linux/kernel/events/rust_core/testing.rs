// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the KUnit suites of the Rust perf core (built with `CONFIG_KUNIT=y` only).

use crate::ctx::alloc_perf_context;
use kernel::{bindings, prelude::*};

/// Allocates a context for `task` (NULL: a context without a task); the caller owns its
/// reference.
pub(crate) fn alloc(task: *mut bindings::task_struct) -> Result<*mut bindings::perf_event_context> {
    // SAFETY: The tests pass NULL or a task they keep alive.
    let ctx = unsafe { alloc_perf_context(task) };
    if ctx.is_null() {
        Err(ENOMEM)
    } else {
        Ok(ctx)
    }
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
