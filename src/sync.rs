//! The library's lock helpers over `std::sync`: every lock in the crate is a `std` lock.
//!
//! `parking_lot` (which the first design used) keeps a process-wide table of parked
//! threads; a process forked while a thread was parked in it inherits that record, and a
//! child whose own locks then hash to the same bucket can hang or crash (parking_lot issue
//! #515). A `std` lock keeps its waiters in the lock itself (a futex word on Linux, a
//! `pthread` object elsewhere), so a child that makes new objects only ever touches new
//! locks: see `sys::fork`.
//!
//! A panic while a lock is held poisons a `std` lock; these helpers ignore the poison. Every
//! critical section in the crate leaves its data consistent before anything in it can panic
//! (the pool's state only panics in the debug `check_invariants`, after the change is made),
//! so a pool, a connection handle or a result stays usable after a caught panic, as it did
//! with `parking_lot`, which has no poisoning.
//!
//! Two things keep a contended pool close to its speed with `parking_lot`: [`lock`] spins and
//! yields before it sleeps, and a hand-off wakes its waiter only once the pool lock is free
//! (`pool::state::StateGuard`).

use std::sync::{
    Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    TryLockError,
};
use std::time::Instant;

/// Locks `mutex`, waiting as long as it takes; a poisoned lock is taken all the same.
#[inline]
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match try_lock(mutex) {
        Some(guard) => guard,
        None => lock_contended(mutex),
    }
}

/// The lock is held by another thread: spin a little, then yield the CPU a few times (the
/// holder may be waiting for one), and only then sleep in the kernel, as `parking_lot`
/// does. A `std` mutex goes to sleep after a short spin, or at once when another thread
/// already sleeps on it: with more threads than cores, a thread that sleeps there while it
/// holds a connection (on its way to give it back) keeps it from everyone for a whole
/// wake-up, and a busy pool's critical sections, a few hundred nanoseconds each, turn into
/// a queue of sleeping threads (twice the time per acquire and release with 4 threads on 2
/// cores in the overhead benchmark).
#[cold]
fn lock_contended<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    for round in 0..10u32 {
        if round < 3 {
            for _ in 0..(2u32 << round) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        if let Some(guard) = try_lock(mutex) {
            return guard;
        }
    }
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Locks `mutex` if no other thread holds it (a poisoned lock is taken all the same).
#[inline]
pub(crate) fn try_lock<T: ?Sized>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Takes `lock` shared (a poisoned lock is taken all the same).
#[inline]
pub(crate) fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Takes `lock` exclusively (a poisoned lock is taken all the same).
#[inline]
pub(crate) fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Takes `lock` exclusively if no other thread holds it in any way (a poisoned lock is taken
/// all the same).
#[inline]
pub(crate) fn try_write<T: ?Sized>(lock: &RwLock<T>) -> Option<RwLockWriteGuard<'_, T>> {
    match lock.try_write() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Waits on `cv` (releasing `guard`'s lock) until notified; may wake spuriously, so callers
/// check their condition in a loop.
#[inline]
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `cv` (releasing `guard`'s lock) until notified or `deadline`; true when it timed
/// out (at once when `deadline` has passed). May return false before the deadline without a
/// notification (a spurious wakeup): callers check their condition and call it again with
/// the same deadline.
pub(crate) fn wait_until<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Instant,
) -> (MutexGuard<'a, T>, bool) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return (guard, true);
    }
    let (guard, result) = cv
        .wait_timeout(guard, left)
        .unwrap_or_else(PoisonError::into_inner);
    // Woken (even at the deadline): false, so the caller looks at its condition again; its
    // next call, with the deadline passed, returns true at once.
    (guard, result.timed_out())
}
