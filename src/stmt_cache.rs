//! A bounded, least-recently-used cache of prepared statements, one per connection.
//!
//! Keyed by the SQL text. A hit costs one hash lookup; eviction scans the (small) map for the
//! oldest entry, which only happens when a new statement arrives at a full cache. The caller
//! closes an evicted statement on the server.
//!
//! The map hashes the SQL text eight bytes at a time (the multiply-rotate hash of rustc's
//! `FxHasher`) instead of with SipHash: a lookup runs on every cached query, and SQL text comes
//! from the application, not from the network, with at most `capacity` keys per map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::client::Statement;

/// A fast, non-cryptographic hasher for the cache's SQL keys.
#[derive(Default)]
struct SqlHasher(u64);

impl SqlHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for SqlHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type SqlMap<V> = HashMap<String, V, BuildHasherDefault<SqlHasher>>;

struct Entry {
    statement: Statement,
    last_used: u64,
}

/// The per-connection statement cache. Capacity 0 caches nothing.
pub(crate) struct StatementCache {
    capacity: usize,
    tick: u64,
    entries: SqlMap<Entry>,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize) -> StatementCache {
        StatementCache {
            capacity,
            tick: 0,
            entries: SqlMap::default(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The cached statement for `sql`.
    pub(crate) fn get(&mut self, sql: &str) -> Option<Statement> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(sql).map(|e| {
            e.last_used = tick;
            e.statement.clone()
        })
    }

    /// Caches `statement`; returns the statement evicted to make room, if any.
    pub(crate) fn insert(&mut self, sql: &str, statement: Statement) -> Option<Statement> {
        if self.capacity == 0 {
            return None;
        }
        let mut evicted = None;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(sql) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(key) = oldest {
                evicted = self.entries.remove(&key).map(|e| e.statement);
            }
        }
        self.tick += 1;
        self.entries.insert(
            sql.to_string(),
            Entry {
                statement,
                last_used: self.tick,
            },
        );
        evicted
    }

    pub(crate) fn remove(&mut self, sql: &str) -> Option<Statement> {
        self.entries.remove(sql).map(|e| e.statement)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher;

    use super::SqlHasher;

    fn hash(s: &str) -> u64 {
        let mut h = SqlHasher::default();
        std::hash::Hash::hash(s, &mut h);
        h.finish()
    }

    #[test]
    fn sql_hash_separates_similar_texts() {
        let texts: Vec<String> = (0..2000)
            .map(|i| format!("SELECT $1::int4 + {i}"))
            .chain((0..64).map(|i| "x".repeat(i)))
            .collect();
        let mut hashes: Vec<u64> = texts.iter().map(|t| hash(t)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), texts.len());
        assert_eq!(hash("SELECT 1"), hash("SELECT 1"));
    }
}
