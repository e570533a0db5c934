use stint_types::{RunId, SnapshotId};

/// What can go wrong in the engine. Each kind maps onto one HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The thing asked for does not exist in the caller's environment.
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but cannot be accepted; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The caller's snapshot id is not the run's current one: the run has moved on.
    #[error("run {run_id} has moved on: its current snapshot is {current}")]
    Stale {
        /// The run.
        run_id: RunId,
        /// Its current snapshot.
        current: SnapshotId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] stint_store::Error),
}
