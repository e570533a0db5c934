//! Stint's domain types: ids, statuses, retry maths and errors.
//!
//! This crate does no IO: everything here is a value or a pure function, so every other crate can
//! share it, the worker SDK included.

pub mod batch;
pub mod cron;
pub mod duration;
pub mod env;
pub mod error;
pub mod ids;
pub mod metadata;
pub mod names;
pub mod retry;
pub mod status;
pub mod time;
pub mod version;
pub mod waitpoint;

pub use batch::BatchStatus;
pub use env::EnvironmentType;
pub use error::{ErrorCode, SerializedError, TaskRunError};
pub use ids::{
    BatchId, EnvId, IdError, KeyId, OrgId, ProjectId, QueueId, RunId, ScheduleId, SnapshotId, TokenId, WaitpointId,
    WorkerId,
};
pub use retry::RetryOptions;
pub use status::{ExecutionStatus, RunStatus};
pub use time::{Clock, Timestamp};
pub use version::{Version, check_version};
pub use waitpoint::{JournalKind, WaitpointKind, WaitpointStatus};
