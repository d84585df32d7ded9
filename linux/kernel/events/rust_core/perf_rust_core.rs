// SPDX-License-Identifier: GPL-2.0

//! The Rust perf core: lifecycles of `struct perf_event_context` and
//! `struct perf_event_pmu_context`.
//!
//! Built with `CONFIG_PERF_EVENTS_RUST_CORE=y`, it replaces the C functions of
//! `kernel/events/core.c` that are listed in `kernel/events/rust_core.h`, under the same names
//! and with the same semantics. The structures keep their C layout (bindgen), because the rest
//! of `core.c` and the PMU drivers keep reading and writing them.
//!
//! # Ownership
//!
//! ```text
//!      ,-----------------------[1:n]------------------------.
//!      V                                                    V
//! perf_event_context <-[1:n]-> perf_event_pmu_context <--- perf_event
//!      |    ^                          |                    |
//!      |    `---------[1:n]------------'   `-[n:1]-> pmu <-[1:n]-'
//!      |
//!      `--(task ctx only)--> task_struct      (one reference, dropped by the last put_ctx())
//! ```
//!
//! - A context is reference counted (`ctx->refcount`, a `refcount_t`). Every event holds one
//!   reference; so do a task's `perf_event_ctxp` pointer, a child context on its parent
//!   (`ctx->parent_ctx`) and short-lived lookups. The last [`put_ctx`](ctx::put_ctx) drops the
//!   parent's reference and the task's, and frees the context after an RCU grace period, because
//!   lookups (`perf_lock_task_context()`) find it under `rcu_read_lock()` only.
//! - A task context whose task has exited has `ctx->task == TASK_TOMBSTONE`; it holds no task
//!   reference any more, and `perf_event_exit_task_context()` may be waiting (`wait_var_event()`)
//!   for the references of the remaining events to go; every put on such a context wakes it.
//! - The per-CPU contexts are static, start with one reference that is never dropped, and are
//!   never freed.
//!
//! - A PMU context (epc) joins a context and a PMU; each event of that PMU in that context holds
//!   a reference. It sits on `ctx->pmu_ctx_list` (sorted by `pmu->type` for task contexts) while
//!   referenced, and is freed after an RCU grace period by its last put. A CPU context's epc is
//!   embedded in the PMU's per-CPU `perf_cpu_pmu_context` and carries one extra reference, the
//!   PMU's ([`epc`]).
//!
//! # Locking
//!
//! Each context has a mutex (`ctx->mutex`) and a raw spinlock (`ctx->lock`, taken with IRQs off,
//! nesting inside `rq->lock`); the lock order is `ctx->mutex` then `ctx->lock`. Context and
//! PMU-context state is **modified with both held and read with either held**. Two C paths are
//! exceptions: the inherit path fills a child context that nobody can see yet without its mutex,
//! and `put_pmu_ctx()` runs without the mutex. The rule and both exceptions are types in [`lock`]:
//! a function that modifies takes a [`lock::Modify`] proof, a reader a [`lock::Read`] proof.
//!
//! Reference counting needs no lock, but `put_ctx()` must not be called with `ctx->lock` held (it
//! may free a parent and drop a task reference), and nothing is allocated or freed under
//! `ctx->lock`.
//!
//! `pin_count`, `parent_ctx`, `parent_gen` and `generation` are protected by `ctx->lock` alone
//! (`context_equiv()` reads them at context switch under the spinlocks only): their accessors
//! take a [`lock::SpinHeld`] proof. Finding a task's context ([`lookup`]) and an event's
//! ([`event_lock`]) are RCU lookups with retry loops, because the clone optimisation swaps task
//! contexts and `move_group` moves events while nothing but RCU keeps the old context alive.
//!
//! Moving all events of a PMU from one CPU context to another ([`migrate`], for drivers whose
//! CPU goes offline) needs both contexts' mutexes: a [`lock::MutexPair`], which takes them in
//! address order.
//!
//! # The C boundary
//!
//! C calls into the crate only through the `#[export]` functions of `rust_core.h`, and no C
//! caller can inline them (Rust objects are not part of the C build's LTO). So each entry point
//! is one function, as the C function it replaces was in its callers: the Rust helpers behind it
//! are `#[inline]` (the lock loop, the lookups, the proofs, the fast path of the puts), and only
//! what C also keeps out of line stays a call: the release of a last reference
//! ([`ctx::put_ctx`]'s free, parent and task puts), the allocators, the lock slow paths.
//! `make crossings` counts the calls and instructions per operation of both cores.

mod ctx;
mod epc;
mod event_lock;
mod list;
mod lock;
mod lookup;
mod migrate;
#[cfg(CONFIG_KUNIT = "y")]
mod testing;
