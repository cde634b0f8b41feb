//! pgpool's own synchronous PostgreSQL client: one struct owns the socket, the protocol state
//! and the buffers; no async runtime anywhere.
//!
//! Files: [`conninfo`] (libpq-compatible settings), `connect` (hosts, deadline, TLS
//! negotiation, `target_session_attrs`), `lag` (a standby's replay lag), `resolve` (host names, bounded by the connect
//! deadline), `auth` (startup and authentication), `tls`
//! (rustls), `stream` (the owned socket), `session` (wire state, buffers, deadlines,
//! transaction status), `query` (the extended and simple protocols), `types` (user-defined
//! types), `statement`, `row`, `copy`, `cancel`, `db_error`.

pub(crate) mod auth;
pub(crate) mod cancel;
pub(crate) mod connect;
pub mod conninfo;
pub(crate) mod copy;
pub(crate) mod db_error;
pub(crate) mod lag;
pub(crate) mod query;
pub(crate) mod resolve;
pub(crate) mod row;
pub(crate) mod session;
pub(crate) mod statement;
pub(crate) mod stream;
pub(crate) mod tls;
pub(crate) mod types;

pub use cancel::CancelToken;
pub use copy::{CopyIn, CopyOut};
pub use db_error::DbError;
pub use query::Params;
pub use row::{Row, RowIndex, SimpleQueryMessage, SimpleRow};
pub use session::{NoticeHandler, Notification, TransactionStatus};
pub use statement::{Column, Statement};
