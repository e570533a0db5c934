//! Stint's PostgreSQL store, for running several server nodes on one database.
//!
//! # Design
//!
//! - **One transaction per job.** [`Store::write_job`] takes a pooled connection, begins a READ
//!   COMMITTED transaction, runs the job on it and commits if the job succeeded, rolling back
//!   otherwise; it resolves only after the COMMIT returned. There is no group commit in the store:
//!   PostgreSQL groups the WAL flushes of concurrent commits itself. [`Store::read_job`] runs in a
//!   REPEATABLE READ, READ ONLY transaction, so a job's reads share one snapshot.
//! - **Fencing by row locks.** Every change of a run is `UPDATE runs … WHERE id = $1 AND
//!   snapshot_id = $2`. Two transactions changing one run serialise on its row lock; the second
//!   re-reads the row once the first commits, finds the snapshot moved on and returns
//!   [`Error::Stale`].
//! - **Claims with `SKIP LOCKED`.** [`QueueTable::queue_take`](stint_store::QueueTable::queue_take)
//!   selects `… FOR UPDATE SKIP LOCKED`: nodes dequeuing from one queue at once each get runs no
//!   other transaction holds, without waiting for one another; `run_stalled` claims stalled runs
//!   the same way, so sweepers on several nodes share them. `queue_lock` is `SELECT … FOR UPDATE`
//!   on the queue row, so concurrency limits hold across nodes; `waitpoint_lock_many` locks
//!   waitpoints the same way, in id order, so blocking a run on a waitpoint and completing it
//!   take turns. Read-only transactions take no locks (PostgreSQL refuses them there, and such a
//!   transaction changes nothing).
//! - **Advisory-locked migrations.** [`PostgresStore::open`] first runs [`migrate`]: the embedded
//!   migrations, applied by sqlx's migrator under a PostgreSQL advisory lock, so nodes starting
//!   together apply each migration once.
//! - **Error mapping.** Integrity violations are [`Error::Duplicate`]
//!   (inserts use `ON CONFLICT DO NOTHING` and report no row written as one, which keeps the
//!   transaction usable); undecodable values are `Corrupt`; connection, pool, IO, timeout and
//!   server errors are `Unavailable`, which the server answers with a 503.
//!
//! The schema mirrors the SQLite store's: the same tables, columns and indexes (including the
//! partial indexes holding the queued runs and the held runs' heartbeat deadlines), BIGINT
//! milliseconds, TEXT ids and TEXT JSON in the same encodings.

pub mod admin;
mod codec;
mod connect;
mod listen;
mod migrate;
mod tables;
mod tx;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use stint_store::{BoxFuture, Error, Job, SignalStream, Store};

pub use crate::connect::Options;
pub use crate::migrate::migrate;
use crate::tx::Mode;

/// Longest wait for a pooled connection before a job fails as unavailable. While the database
/// cannot be reached, every job waits this long before its caller hears so (a 503), so it is
/// kept short; a pool busy for longer than this is also worth a 503 and a retry.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A store on a PostgreSQL database: a pool of connections, each job a transaction on one.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects, brings the schema up to date (creating the schema when one is named) and opens
    /// the pool. An unreachable server, a bad URL or refused credentials are
    /// [`Error::Unavailable`], naming the problem and the URL without its password.
    pub async fn open(options: &Options) -> Result<PostgresStore, Error> {
        migrate(options).await?;
        let connect = connect::connect_options(options)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A broken connection fails its job's BEGIN as unavailable and is replaced; pinging
            // every connection before use would add a round trip to every job.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|e| connect::cannot_connect(options, &e))?;
        Ok(PostgresStore { pool })
    }

    /// Closes the pool: running jobs finish, new ones fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store for PostgresStore {
    fn write_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(tx::run(&self.pool, Mode::Write, job))
    }

    fn read_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(tx::run(&self.pool, Mode::Read, job))
    }

    fn subscribe(&self) -> Option<SignalStream> {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        tokio::spawn(listen::listen(self.pool.clone(), sender));
        Some(Box::pin(receiver))
    }
}
