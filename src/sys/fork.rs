//! Fork detection: a process-wide generation that a `pthread_atfork` child handler bumps, so
//! a pool can tell in one relaxed load that it now lives in a forked child, whose sessions
//! belong to the parent (writing to them, or even closing them politely, would corrupt the
//! parent's conversation with the server).

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn in_child() {
    // Only an atomic add: async-signal-safe, as a fork handler in a threaded parent must be.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current fork generation: 0 in the original process, +1 in each forked child (and in
/// the child's children). The first call registers the fork handler; call it when a pool
/// is created, before anything can fork.
pub(crate) fn generation() -> u64 {
    REGISTER.call_once(|| {
        // SAFETY: `in_child` is a plain `extern "C" fn()` that lives for the whole program
        // and does only an atomic add; registering it has no other precondition. A failure
        // (ENOMEM) leaves fork detection off, reported by the log.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        if rc != 0 {
            log::warn!(target: "pgpool", "pthread_atfork failed ({rc}): fork detection is off");
        }
    });
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
