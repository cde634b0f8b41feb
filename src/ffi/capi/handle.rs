//! Generation-checked handle tables.
//!
//! A handle given to C is not a pointer to memory: it is a number that encodes a type tag, a
//! slot index and the slot's generation. The library never dereferences it; it looks the
//! number up in a table. A released handle's slot gets a new generation, so using it again
//! (double release, use after release, a handle of the wrong type, a made-up value) is
//! detected and reported instead of being undefined behaviour.

use std::sync::Arc;

use parking_lot::Mutex;

use super::error::FfiError;

const TAG_SHIFT: u32 = 56;
const INDEX_SHIFT: u32 = 32;
const INDEX_MASK: u64 = 0x00FF_FFFF;
const GENERATION_MASK: u64 = 0xFFFF_FFFF;

struct Entry<T> {
    generation: u32,
    value: Option<Arc<T>>,
}

struct Slots<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
}

/// A table of live objects of one type, addressed by handles.
pub(crate) struct Registry<T> {
    tag: u8,
    what: &'static str,
    slots: Mutex<Slots<T>>,
}

impl<T> Registry<T> {
    /// An empty table; `tag` distinguishes handle types, `what` names them in messages.
    pub(crate) const fn new(tag: u8, what: &'static str) -> Registry<T> {
        Registry {
            tag,
            what,
            slots: parking_lot::const_mutex(Slots {
                entries: Vec::new(),
                free: Vec::new(),
            }),
        }
    }

    /// Stores `value` and returns its handle (never zero).
    pub(crate) fn insert(&self, value: T) -> Result<usize, FfiError> {
        let mut slots = self.slots.lock();
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
                    value: None,
                });
                index as u32
            }
        };
        let entry = &mut slots.entries[index as usize];
        entry.value = Some(Arc::new(value));
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

    /// The live object behind `handle`.
    pub(crate) fn get(&self, handle: usize) -> Result<Arc<T>, FfiError> {
        let (index, generation) = self.decode(handle)?;
        let slots = self.slots.lock();
        match slots.entries.get(index) {
            Some(Entry {
                generation: g,
                value: Some(value),
            }) if *g == generation => Ok(Arc::clone(value)),
            Some(_) => Err(self.invalid("already released (or freed)")),
            None => Err(self.invalid("unknown handle")),
        }
    }

    /// Takes the object out of the table: the handle is dead from now on.
    pub(crate) fn remove(&self, handle: usize) -> Result<Arc<T>, FfiError> {
        let (index, generation) = self.decode(handle)?;
        let mut slots = self.slots.lock();
        let entry = match slots.entries.get_mut(index) {
            Some(entry) if entry.generation == generation && entry.value.is_some() => entry,
            Some(_) => return Err(self.invalid("already released (or freed)")),
            None => return Err(self.invalid("unknown handle")),
        };
        let value = entry.value.take();
        entry.generation = entry.generation.wrapping_add(1).max(1);
        slots.free.push(index as u32);
        value.ok_or_else(|| self.invalid("already released (or freed)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_foreign_handles_are_rejected() {
        let a: Registry<u32> = Registry::new(1, "test");
        let b: Registry<u32> = Registry::new(2, "other");
        let h = a.insert(7).unwrap();
        assert_eq!(*a.get(h).unwrap(), 7);
        assert!(b.get(h).is_err());
        assert_eq!(*a.remove(h).unwrap(), 7);
        assert!(a.get(h).is_err());
        assert!(a.remove(h).is_err());
        let h2 = a.insert(8).unwrap();
        assert_ne!(h, h2);
        assert!(a.get(h).is_err());
        assert_eq!(*a.get(h2).unwrap(), 8);
        assert!(a.get(12345).is_err());
    }
}
