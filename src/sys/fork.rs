//! Fork handling: a process-wide generation that a `pthread_atfork` child handler bumps, so
//! a pool can tell in one relaxed load that it now lives in a forked child, whose sessions
//! belong to the parent (writing to them, or even closing them politely, would corrupt the
//! parent's conversation with the server); and a few locks the fork handlers hold across
//! `fork()`, so that the child's copies of them are consistent and free.
//!
//! # Why the handlers hold locks across fork()
//!
//! `fork()` copies memory but only the calling thread. A lock another thread held at that
//! instant stays locked forever in the child, and the data it guards may be half-updated.
//! The C ABI's handle tables (and its log sink) are process-wide: a child that creates a
//! fresh pool or frees an inherited handle must take them. So the prepare handler takes
//! every one of them (waiting for the short critical sections other threads are in; none of
//! them blocks on anything else or calls out), `fork()` happens with all of them held by
//! the forking thread, and the parent and child handlers give them back: in the child each
//! table is unlocked and consistent. The other approaches fail: checking the fork
//! generation cannot avoid the table lock itself (the handle must be looked up first); and
//! forcing a lock open in the child could expose a half-made change.
//!
//! These locks are `std::sync` locks, like every lock in the crate (see `crate::sync`):
//! unlocking a `parking_lot` lock that has (ghost) waiters goes through `parking_lot_core`'s
//! process-wide table of parked threads, whose bucket locks a parent thread may have held at
//! the fork (parking_lot issue #515); a `std` lock wakes waiters with one `futex` call (on
//! Linux) or a `pthread_mutex_unlock` (elsewhere, which POSIX allows in a child handler for
//! a mutex the prepare handler locked).
//!
//! Everything else the C ABI keeps per object (a pool's lock, a connection's lock, a
//! result's or parameter list's lock) is never taken in the child for an object made before
//! the fork: the handle tables refuse such objects with `PGPOOL_ERR_FORKED` before their
//! locks are touched, and freeing them forgets them.
//!
//! Threads blocked in the library at the fork (waiting for a connection, in a close or
//! `wait_ready`, a connector sleeping out its backoff, or waiting for a contended lock) are
//! no concern of the child either: a `std` lock or condvar keeps its waiters in itself (a
//! futex word, or a `pthread` object), never in a process-wide record that the child would
//! inherit, so the child's copies of those threads' locks are simply never used again, and
//! the locks of the pools it makes are new. The engine used `parking_lot` once, whose table
//! of parked threads the child did inherit (with the parked threads' records, pointing into
//! stacks the child's new threads may reuse): a child whose parent had a thread parked in
//! the library could hang or crash once its own pool's threads parked. `tests/c/fork.c`
//! forks with a parent thread blocked in an acquire and has the child use a new pool.
//!
//! # When the handlers are registered
//!
//! At load time where the platform has constructors (ELF `.init_array`, Mach-O
//! `__mod_init_func`), else at the first use: registering lazily inside a `Once` would
//! leave a window in which a fork copies a `Once` that is half-run (the child's next call
//! would wait for it forever).

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

/// A lock the fork handlers take before `fork()` and give back after it, in the parent and
/// in the child (on the forking thread, which is the child's only thread).
pub(crate) trait HeldAcrossFork: Sync {
    /// Takes the lock and keeps it (the prepare handler).
    fn hold(&'static self);
    /// Gives back what [`hold`](Self::hold) took (the parent and child handlers).
    fn release(&'static self);
}

/// Where a lock's guard waits while the fork handlers hold the lock: taken by
/// [`HeldAcrossFork::hold`], dropped (unlocking) by [`HeldAcrossFork::release`].
pub(crate) struct HeldGuard<G> {
    guard: UnsafeCell<Option<G>>,
}

// SAFETY: the cell is only read or written through `keep` and `give_back`, whose callers
// guarantee that they hold the lock the guard belongs to, so at most one thread touches it at
// a time; the guard is made and dropped on that one thread (the forking thread, or its copy
// in the child), so a guard type that must not change threads never does.
unsafe impl<G> Sync for HeldGuard<G> {}

// SAFETY: a cell holds a guard only between a fork's prepare handler and its parent or child
// handler, on the forking thread; the cells live in statics, which never move, so no guard
// is ever sent to another thread (this is only needed for statics whose type must be Send).
unsafe impl<G> Send for HeldGuard<G> {}

impl<G> HeldGuard<G> {
    pub(crate) const fn new() -> HeldGuard<G> {
        HeldGuard {
            guard: UnsafeCell::new(None),
        }
    }

    /// Keeps `guard` until [`give_back`](Self::give_back).
    ///
    /// # Safety
    /// `guard` must be the guard of the lock this cell belongs to, just taken by the calling
    /// fork handler.
    pub(crate) unsafe fn keep(&self, guard: G) {
        // SAFETY: the caller holds the lock, so no other thread is in `keep` or `give_back`.
        unsafe { *self.guard.get() = Some(guard) };
    }

    /// Drops the kept guard (unlocking its lock); nothing when none is kept.
    ///
    /// # Safety
    /// Only a parent or child fork handler on the thread whose prepare handler called
    /// [`keep`](Self::keep) may call it: that thread holds the lock until the guard drops.
    pub(crate) unsafe fn give_back(&self) {
        // SAFETY: as above, the calling thread holds the lock.
        let guard = unsafe { (*self.guard.get()).take() };
        drop(guard);
    }
}

extern "C" fn prepare() {
    for lock in crate::ffi::capi::held_across_fork() {
        lock.hold();
    }
}

extern "C" fn in_parent() {
    for lock in crate::ffi::capi::held_across_fork().iter().rev() {
        lock.release();
    }
}

extern "C" fn in_child() {
    // An atomic add, then unlocks of locks this thread holds: nothing here waits, allocates
    // or takes a lock another thread could have held.
    GENERATION.fetch_add(1, Ordering::Relaxed);
    // The parent's lookup threads do not exist here: they must not count against the cap.
    crate::client::resolve::forget_lookups();
    crate::pool::forget_cancels();
    for lock in crate::ffi::capi::held_across_fork().iter().rev() {
        lock.release();
    }
}

/// Registers the fork handlers once.
pub(crate) fn register() {
    REGISTER.call_once(|| {
        // SAFETY: the three handlers are plain `extern "C" fn()` items that live for the whole
        // program; registering them has no other precondition. A failure (ENOMEM) leaves fork
        // handling off, reported by the log.
        let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(in_parent), Some(in_child)) };
        if rc != 0 {
            log::warn!(target: "pgpool", "pthread_atfork failed ({rc}): fork handling is off");
        }
    });
}

/// Registers the handlers when the library is loaded, before any thread can use it.
extern "C" fn register_at_load() {
    register();
}

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
))]
#[used]
#[link_section = ".init_array"]
static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

#[cfg(target_vendor = "apple")]
#[used]
#[link_section = "__DATA,__mod_init_func"]
static REGISTER_AT_LOAD: extern "C" fn() = register_at_load;

/// The current fork generation: 0 in the original process, +1 in each forked child (and in
/// the child's children). Registers the fork handlers if the platform has no load-time hook;
/// call it when a pool is created, before anything can fork.
pub(crate) fn generation() -> u64 {
    register();
    GENERATION.load(Ordering::Relaxed)
}

/// True when the process forked since `generation` was read.
#[inline]
pub(crate) fn forked_since(generation: u64) -> bool {
    GENERATION.load(Ordering::Relaxed) != generation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_sees_a_new_generation() {
        let before = generation();
        assert!(!forked_since(before));
        // SAFETY (test): the child only reads an atomic and calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = if forked_since(before) { 0 } else { 1 };
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `status` is a valid, writable int; `pid` is our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert!(!forked_since(before));
    }
}
