//! A bounded, least-recently-used cache of prepared statements, one per connection.
//!
//! Keyed by the SQL text. A hit costs one hash lookup; eviction scans the (small) map for the
//! oldest entry, which only happens when a new statement arrives at a full cache. The caller
//! closes an evicted statement on the server.

use std::collections::HashMap;

use crate::client::Statement;

struct Entry {
    statement: Statement,
    last_used: u64,
}

/// The per-connection statement cache. Capacity 0 caches nothing.
pub(crate) struct StatementCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, Entry>,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize) -> StatementCache {
        StatementCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
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
