//! Stint's default store: one SQLite file.
//!
//! The file runs in WAL mode. There is one writing connection; whoever holds it commits every
//! write job waiting at that moment together (group commit, see `writer`); read jobs run on a
//! pool of read-only connections. With [`Durability::Full`] (the default) every commit is synced to disk before
//! its jobs are answered, so an acknowledged write survives power loss; [`Durability::Normal`]
//! survives a crash of the process but may lose the last commits on power loss.

mod checkpointer;
mod codec;
mod readers;
mod tables;
mod tx;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};
use stint_store::{BoxFuture, Error, Job, Store};

use crate::checkpointer::{Checkpointer, Commits};
use crate::readers::Readers;
use crate::writer::Writer;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: each commit is synced; survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, not of the machine.
    Normal,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            _ => Err(format!("unknown durability '{text}': expected full or normal")),
        }
    }
}

/// Settings of a SQLite store.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database file.
    pub path: PathBuf,
    /// Commit durability.
    pub durability: Durability,
    /// Read-only connections in the pool.
    pub readers: usize,
}

impl Options {
    /// Defaults for a file: full durability, four readers.
    pub fn new(path: impl Into<PathBuf>) -> Options {
        Options { path: path.into(), durability: Durability::Full, readers: 4 }
    }
}

/// A store on one SQLite file.
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: Readers,
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens or creates the database, brings its schema up to date and starts the writer.
    pub fn open(options: &Options) -> Result<SqliteStore, Error> {
        let mut writer = open_connection(&options.path, OpenFlags::default())?;
        let synchronous = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON;"
            ))
            .map_err(codec::map_error)?;
        migrations()
            .to_latest(&mut writer)
            .map_err(|e| Error::Unavailable(format!("migrating {}: {e}", options.path.display())))?;
        let readers = (0..options.readers.max(1))
            .map(|_| open_connection(&options.path, OpenFlags::SQLITE_OPEN_READ_ONLY))
            .collect::<Result<Vec<_>, _>>()?;
        // Checkpoints run on a thread of their own (see `checkpointer`), once the schema is there.
        checkpointer::install(&writer);
        let commits = Arc::new(Commits::default());
        let checkpointer = Checkpointer::start(&options.path, commits.clone())?;
        Ok(SqliteStore {
            writer: Writer::new(writer, commits),
            readers: Readers::new(readers),
            _checkpointer: checkpointer,
        })
    }
}

impl Store for SqliteStore {
    fn write_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.writer.submit(job))
    }

    fn read_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.readers.run(job))
    }
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let connection = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::Unavailable(format!("opening {}: {e}", path.display())))?;
    connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA temp_store = MEMORY;").map_err(codec::map_error)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_init.sql")),
        M::up(include_str!("../migrations/0002_leases.sql")),
        M::up(include_str!("../migrations/0003_idempotency.sql")),
        M::up(include_str!("../migrations/0004_queue_order.sql")),
        M::up(include_str!("../migrations/0005_queue_controls.sql")),
        M::up(include_str!("../migrations/0006_queue_lanes.sql")),
        M::up(include_str!("../migrations/0007_tenancy_admin.sql")),
        M::up(include_str!("../migrations/0008_limits.sql")),
        M::up(include_str!("../migrations/0009_rate_limits.sql")),
        M::up(include_str!("../migrations/0010_worker_pools.sql")),
        M::up(include_str!("../migrations/0011_trigger_options.sql")),
        M::up(include_str!("../migrations/0012_worker_versions.sql")),
        M::up(include_str!("../migrations/0013_batches.sql")),
        M::up(include_str!("../migrations/0014_task_ttl.sql")),
        M::up(include_str!("../migrations/0015_waitpoints.sql")),
        M::up(include_str!("../migrations/0016_schedules.sql")),
        M::up(include_str!("../migrations/0017_schedules_due_at.sql")),
    ])
}
