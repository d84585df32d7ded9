// SPDX-License-Identifier: GPL-2.0

//! Walking C's `struct list_head` lists: the one loop behind `list_for_each_safe()` here.

use kernel::bindings;

/// The entries of the C list at `head`, as pointers to their `list_head` links, in list order.
///
/// Each entry's successor is read before the entry is handed out, so the caller may unlink the
/// entry it was handed (C's `list_for_each_safe()`), but no other.
///
/// # Safety
///
/// `head` must be a valid, initialised list head, and while the iterator is used the list may
/// change only by the caller unlinking the entry it was handed last.
pub(crate) unsafe fn links(
    head: *mut bindings::list_head,
) -> impl Iterator<Item = *mut bindings::list_head> {
    // SAFETY: The caller guarantees that `head` is valid.
    let mut pos = unsafe { (*head).next };
    core::iter::from_fn(move || {
        if pos == head {
            return None;
        }
        let link = pos;
        // SAFETY: `link` is linked (the caller's contract); its successor is read before the
        // caller may unlink it.
        pos = unsafe { (*link).next };
        Some(link)
    })
}
