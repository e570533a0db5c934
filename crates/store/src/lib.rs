//! The storage seam between the engine and a database.
//!
//! A [`Store`] runs jobs inside transactions: [`StoreExt::write`] for changes, [`StoreExt::read`]
//! for queries. A job is handed a [`Tx`], whose table methods each backend implements with its own
//! SQL; no SQL exists outside the `store-*` crates. Every change of a run's state goes through
//! [`RunTable::run_transition`], a compare-and-set on the run's snapshot id.

mod error;
mod rows;
mod schedules;
mod signal;
mod store;
mod tables;
mod waits;

pub use error::Error;
pub use rows::{AccessTokenRow, AdminTokenRow, RequestKeyRow, WorkerVersionRow};
pub use rows::{
    ApiKeyRow, EnvLimits, EnvironmentRow, Lane, LimitOverride, OrganizationRow, ProjectRow, QueueHead, QueueRow,
    RunListParams, RunRow, SnapshotRow, TaskRow, Transition, WorkerRow,
};
pub use rows::{BatchItemRow, BatchRow, NewRun};
pub use rows::{RateLimit, RateOverride};
pub use schedules::{ScheduleFireRow, ScheduleRow};
pub use signal::Signal;
pub use store::{BoxFuture, Job, SignalStream, Store, StoreExt};
pub use tables::{BatchTable, OptionTable, RateTable, ScheduleTable, WaitpointTable};
pub use tables::{LeaseTable, LimitTable, QueueTable, RunTable, Signals, TenancyTable, Tx, WorkerTable};
pub use waits::{JournalRow, WaitpointListParams, WaitpointRow};
