//! Generation-checked handle tables.
//!
//! A handle given to C is not a pointer to memory: it is a number that encodes a type tag, a
//! slot index and the slot's generation. The library never dereferences it; it looks the
//! number up in a table. A released handle's slot gets a new generation, so using it again
//! (double release, use after release, a handle of the wrong type, a made-up value) is
//! detected and reported instead of being undefined behaviour.
//!
//! After `fork()`: every entry remembers the fork generation it was made in. A table of
//! objects that belong to the process that made them ([`Inherit::Refuse`]: pools,
//! connections, results, parameter lists) answers a child's lookup of a parent's entry with
//! `PGPOOL_ERR_FORKED`, before the object (or any lock inside it) is touched, and a child's
//! removal of one forgets the object instead of dropping it (no reset, no close, no lock).
//! The table locks themselves are held across `fork()` by the fork handlers (see
//! `sys::fork`), so a child finds them free and consistent.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::sys::fork::{self, HeldAcrossFork, HeldGuard};

use super::error::FfiError;

const TAG_SHIFT: u32 = 56;
const INDEX_SHIFT: u32 = 32;
const INDEX_MASK: u64 = 0x00FF_FFFF;
const GENERATION_MASK: u64 = 0xFFFF_FFFF;

/// What a forked child may do with the entries its parent made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inherit {
    /// Immutable data (or data guarded only by the table lock): usable in the child.
    Share,
    /// The parent's: refused with `PGPOOL_ERR_FORKED`; removing one forgets it.
    Refuse,
}

struct Entry<T> {
    generation: u32,
    /// The fork generation of the process that made the value.
    born: u64,
    value: Option<Arc<T>>,
}

struct Slots<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
}

/// A table of live objects of one type, addressed by handles.
pub(crate) struct Registry<T: 'static> {
    tag: u8,
    what: &'static str,
    inherit: Inherit,
    /// A `std` mutex, not a `parking_lot` one: see `sys::fork` for why. Critical sections
    /// are a few loads and stores (never a call out, never a second lock), so they never
    /// poison in practice; a poisoned lock is used anyway, its data is consistent.
    slots: Mutex<Slots<T>>,
    /// The guard of `slots` while the fork handlers hold it.
    held: HeldGuard<MutexGuard<'static, Slots<T>>>,
}

impl<T: 'static> Registry<T> {
    /// An empty table; `tag` distinguishes handle types, `what` names them in messages.
    pub(crate) const fn new(tag: u8, what: &'static str, inherit: Inherit) -> Registry<T> {
        Registry {
            tag,
            what,
            inherit,
            slots: Mutex::new(Slots {
                entries: Vec::new(),
                free: Vec::new(),
            }),
            held: HeldGuard::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots<T>> {
        // Where the platform has no load-time hook, the fork handlers are registered before
        // a table is first locked.
        fork::register();
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` and returns its handle (never zero).
    pub(crate) fn insert(&self, value: T) -> Result<usize, FfiError> {
        let value = Arc::new(value);
        let born = fork::generation();
        let mut slots = self.lock();
        let index = match slots.free.pop() {
            Some(index) => index,
            None => {
                let index = slots.entries.len() as u64;
                if index > INDEX_MASK {
                    return Err(FfiError::usage(format!(
                        "too many live {} handles",
                        self.what
                    )));
                }
                slots.entries.push(Entry {
                    generation: 1,
                    born,
                    value: None,
                });
                index as u32
            }
        };
        let entry = &mut slots.entries[index as usize];
        entry.value = Some(value);
        entry.born = born;
        Ok(self.encode(index, entry.generation))
    }

    fn encode(&self, index: u32, generation: u32) -> usize {
        let bits = (u64::from(self.tag) << TAG_SHIFT)
            | (u64::from(index) << INDEX_SHIFT)
            | u64::from(generation);
        bits as usize
    }

    fn decode(&self, handle: usize) -> Result<(usize, u32), FfiError> {
        let bits = handle as u64;
        let tag = (bits >> TAG_SHIFT) as u8;
        if tag != self.tag {
            return Err(self.invalid("not a handle of this type"));
        }
        let index = ((bits >> INDEX_SHIFT) & INDEX_MASK) as usize;
        let generation = (bits & GENERATION_MASK) as u32;
        Ok((index, generation))
    }

    fn invalid(&self, why: &str) -> FfiError {
        FfiError::invalid_handle(format!("invalid {} handle: {why}", self.what))
    }

    /// True when the entry was made by a process this one was forked from, and the table
    /// refuses such entries.
    fn refused(&self, entry: &Entry<T>) -> bool {
        self.inherit == Inherit::Refuse && fork::forked_since(entry.born)
    }

    /// The live object behind `handle`; `PGPOOL_ERR_FORKED` for a parent's object in a
    /// [`Inherit::Refuse`] table.
    pub(crate) fn get(&self, handle: usize) -> Result<Arc<T>, FfiError> {
        let (index, generation) = self.decode(handle)?;
        let slots = self.lock();
        match slots.entries.get(index) {
            Some(
                entry @ Entry {
                    generation: g,
                    value: Some(value),
                    ..
                },
            ) if *g == generation => {
                if self.refused(entry) {
                    Err(FfiError::forked(self.what))
                } else {
                    Ok(Arc::clone(value))
                }
            }
            Some(_) => Err(self.invalid("already released (or freed)")),
            None => Err(self.invalid("unknown handle")),
        }
    }

    /// Takes the object out of the table: the handle is dead from now on. `None` for a
    /// parent's object in a [`Inherit::Refuse`] table: it is forgotten (never dropped, so
    /// nothing of the parent's is reset, closed or locked).
    pub(crate) fn remove(&self, handle: usize) -> Result<Option<Arc<T>>, FfiError> {
        let (index, generation) = self.decode(handle)?;
        let mut slots = self.lock();
        let entry = match slots.entries.get_mut(index) {
            Some(entry) if entry.generation == generation && entry.value.is_some() => entry,
            Some(_) => return Err(self.invalid("already released (or freed)")),
            None => return Err(self.invalid("unknown handle")),
        };
        let refused = self.refused(entry);
        let value = entry.value.take();
        entry.generation = entry.generation.wrapping_add(1).max(1);
        slots.free.push(index as u32);
        drop(slots);
        if refused {
            std::mem::forget(value);
            return Ok(None);
        }
        Ok(value)
    }

    /// Replaces the object behind `handle` with `f(current)`, unless another thread replaced
    /// it meanwhile (then `f` runs again on the newer one): copy-on-write updates that need no
    /// lock inside the object and run no code under the table lock.
    pub(crate) fn update(
        &self,
        handle: usize,
        f: impl Fn(&T) -> Result<T, FfiError>,
    ) -> Result<(), FfiError> {
        loop {
            let current = self.get(handle)?;
            let updated = Arc::new(f(&current)?);
            let (index, generation) = self.decode(handle)?;
            let mut slots = self.lock();
            match slots.entries.get_mut(index) {
                Some(Entry {
                    generation: g,
                    value: Some(value),
                    ..
                }) if *g == generation => {
                    if Arc::ptr_eq(value, &current) {
                        let old = std::mem::replace(value, updated);
                        drop(slots);
                        drop(old);
                        return Ok(());
                    }
                }
                Some(_) => return Err(self.invalid("already released (or freed)")),
                None => return Err(self.invalid("unknown handle")),
            }
        }
    }

    /// Holds the table lock for `duration` (the fork test's way to have another thread in
    /// a table's critical section when `fork()` is called).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn hold_lock_for(&self, duration: std::time::Duration) {
        let slots = self.lock();
        std::thread::sleep(duration);
        drop(slots);
    }
}

impl<T: Send + Sync + 'static> HeldAcrossFork for Registry<T> {
    fn hold(&'static self) {
        let guard = self.lock();
        // SAFETY: the guard of this table's lock, just taken by the prepare handler.
        unsafe { self.held.keep(guard) };
    }

    fn release(&'static self) {
        // SAFETY: called by the parent or child handler on the thread whose prepare handler
        // took the lock (fork runs all three on the forking thread).
        unsafe { self.held.give_back() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_foreign_handles_are_rejected() {
        let a: Registry<u32> = Registry::new(1, "test", Inherit::Share);
        let b: Registry<u32> = Registry::new(2, "other", Inherit::Share);
        let h = a.insert(7).unwrap();
        assert_eq!(*a.get(h).unwrap(), 7);
        assert!(b.get(h).is_err());
        assert_eq!(*a.remove(h).unwrap().unwrap(), 7);
        assert!(a.get(h).is_err());
        assert!(a.remove(h).is_err());
        let h2 = a.insert(8).unwrap();
        assert_ne!(h, h2);
        assert!(a.get(h).is_err());
        assert_eq!(*a.get(h2).unwrap(), 8);
        assert!(a.get(12345).is_err());
    }

    #[test]
    fn update_replaces_the_object_and_keeps_the_handle() {
        let a: Registry<String> = Registry::new(3, "text", Inherit::Share);
        let h = a.insert("a".to_string()).unwrap();
        let before = a.get(h).unwrap();
        a.update(h, |s| Ok(format!("{s}b"))).unwrap();
        assert_eq!(*a.get(h).unwrap(), "ab");
        assert_eq!(*before, "a", "readers keep the version they got");
        a.remove(h).unwrap();
        assert!(a.update(h, |s| Ok(s.clone())).is_err());
    }

    static REFUSING: Registry<u32> = Registry::new(4, "refusing", Inherit::Refuse);
    static SHARING: Registry<u32> = Registry::new(5, "sharing", Inherit::Share);

    #[test]
    fn a_forked_child_is_refused_the_parents_objects_and_forgets_them() {
        use super::super::error::pgpool_code::PGPOOL_ERR_FORKED;
        let refused = REFUSING.insert(1).unwrap();
        let shared = SHARING.insert(2).unwrap();
        // SAFETY: a test: the child only uses the tables (whose locks the fork handlers keep
        // usable) and ends with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = REFUSING.get(refused).err().map(|e| e.code) == Some(PGPOOL_ERR_FORKED)
                && REFUSING.remove(refused).is_ok_and(|v| v.is_none())
                && REFUSING.get(refused).is_err()
                && REFUSING
                    .insert(3)
                    .is_ok_and(|h| REFUSING.get(h).is_ok_and(|v| *v == 3))
                && SHARING.get(shared).is_ok_and(|v| *v == 2)
                && SHARING.remove(shared).is_ok_and(|v| v.is_some());
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: `status` is a valid, writable int; `pid` is our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        // The parent's objects are unaffected.
        assert_eq!(*REFUSING.get(refused).unwrap(), 1);
        assert_eq!(*SHARING.get(shared).unwrap(), 2);
    }
}
