//! One job, one transaction: taking a pooled connection, beginning, running the job on a
//! [`PgTx`], and committing or rolling back. The table methods of [`PgTx`] live in `tables/`.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use stint_store::{Error, Job};

use crate::codec::map_error;

/// What a transaction may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// READ COMMITTED, read-write. Concurrent writers are kept apart by row locks: the fencing
    /// `UPDATE … WHERE snapshot_id = …` waits for a competing writer of the run and then finds the
    /// snapshot moved on; queue claims skip rows others hold; `queue_lock` waits for the queue.
    Write,
    /// REPEATABLE READ, read-only: every statement of the job sees the same snapshot, as a read
    /// transaction does in SQLite. Read-only snapshots never fail to serialise.
    Read,
}

/// A transaction in progress on a pooled connection. [`run`] has begun it and will end it; the
/// table methods only run statements, each prepared once per connection and cached by sqlx.
pub(crate) struct PgTx<'c> {
    pub(crate) connection: &'c mut PgConnection,
    /// Whether claims lock what they read (`FOR UPDATE`). Not in a read-only transaction, which
    /// PostgreSQL refuses to lock rows in, and which cannot change the rows it reads anyway.
    pub(crate) locking: bool,
}

/// Runs `job` in a transaction of its own and resolves once its COMMIT succeeded, or with the
/// error that stopped it. A job that fails (or panics) is rolled back.
pub(crate) async fn run(pool: &PgPool, mode: Mode, job: Job) -> Result<(), Error> {
    let begin = match mode {
        Mode::Write => pool.begin().await,
        Mode::Read => pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await,
    };
    let mut transaction = begin.map_err(map_error)?;
    let outcome = {
        let mut tx = PgTx { connection: &mut transaction, locking: mode == Mode::Write };
        AssertUnwindSafe(job(&mut tx))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(Error::Unavailable("a store job panicked".into())))
    };
    match outcome {
        Ok(()) => transaction.commit().await.map_err(map_error),
        Err(error) => {
            // A rollback that fails leaves nothing behind either: the server ends a transaction
            // whose connection is lost, and sqlx rolls back a connection returned mid-transaction.
            let _ = transaction.rollback().await;
            Err(error)
        }
    }
}
