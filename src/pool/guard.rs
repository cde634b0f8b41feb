//! [`PooledConnection`]: the RAII guard a caller holds while using a connection.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Tick;

use crate::manager::Manager;
use crate::pg::PgManager;
use crate::pool::shared::Shared;
use crate::pool::state::Conn;

/// A connection checked out of a [`Pool`](crate::Pool). Dereferences to the connection;
/// dropping it gives the connection back (rolled back first if it may be inside a
/// transaction). A guard dropped while its thread panics discards the connection instead.
///
/// A guard may be sent to another thread; it is used by one thread at a time.
pub struct PooledConnection<M: Manager = PgManager> {
    shared: Arc<Shared<M>>,
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> PooledConnection<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, conn: Conn<M::Connection>) -> Self {
        PooledConnection {
            shared,
            conn: Some(conn),
        }
    }

    fn conn(&self) -> &Conn<M::Connection> {
        self.conn
            .as_ref()
            .expect("a guard holds its connection until dropped")
    }

    /// The connection's id, unique within its pool (as in [`Event`](crate::Event)s).
    pub fn id(&self) -> u64 {
        self.conn().id
    }

    /// How long ago the connection was opened (to the kernel tick, 1–4 ms).
    pub fn age(&self) -> Duration {
        Tick::now().since(self.conn().created)
    }

    /// How many times the connection was checked out and returned before this checkout.
    pub fn uses(&self) -> u64 {
        self.conn().uses
    }

    /// Closes the connection instead of returning it to the pool (for example after a
    /// session-level change the next user must not inherit). The pool opens a replacement
    /// if it needs one.
    pub fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.discard(conn);
        }
    }
}

impl<M: Manager> Deref for PooledConnection<M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        &self.conn().raw
    }
}

impl<M: Manager> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .conn
            .as_mut()
            .expect("a guard holds its connection until dropped")
            .raw
    }
}

impl<M: Manager> Drop for PooledConnection<M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.release(conn, std::thread::panicking());
        }
    }
}

impl<M: Manager> std::fmt::Debug for PooledConnection<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConnection")
            .field("id", &self.conn.as_ref().map(|c| c.id))
            .finish_non_exhaustive()
    }
}
