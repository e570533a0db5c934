//! A transaction on a SQLite connection. Its table methods live in `tables/`.

use rusqlite::Connection;

/// A transaction in progress. The writer or a reader has begun it and will end it; the methods
/// only run statements, each prepared once per connection and cached.
pub(crate) struct SqliteTx<'c> {
    pub(crate) connection: &'c mut Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(connection: &'c mut Connection) -> SqliteTx<'c> {
        SqliteTx { connection }
    }
}

/// `?, ?, …` with `n` placeholders, for `IN` lists.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}
