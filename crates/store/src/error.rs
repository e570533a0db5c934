use stint_types::{RunId, SnapshotId};

/// What can go wrong in a store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A run transition named a snapshot that is no longer the run's current one.
    #[error("run {run_id} has moved on: its current snapshot is {current}")]
    Stale {
        /// The run.
        run_id: RunId,
        /// Its current snapshot id.
        current: SnapshotId,
    },
    /// A row that was expected does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule rejected a write.
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The database cannot serve the request now; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The job asked for its transaction to be rolled back.
    #[error("transaction rolled back")]
    Rollback,
    /// The store was shut down.
    #[error("store is closed")]
    Closed,
}
