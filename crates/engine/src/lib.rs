//! Stint's run engine.
//!
//! The engine is a set of systems (`systems`), each a function over a store transaction that is
//! handed the time and an id maker; it never reads the wall clock, so tests drive it with a
//! manual clock. [`Engine`] is the thin async shell that runs a system in a transaction and,
//! after the commit, wakes the workers waiting for work.
//!
//! Every change of a run's state is a compare-and-set on its snapshot id (`state`), so a caller
//! holding an old snapshot changes nothing, and terminal states never move.

mod batches;
mod config;
mod error;
mod handoff;
mod ids;
mod local;
mod notify;
mod queue_control;
mod rundata;
mod schedules;
mod shell;
mod state;
pub mod systems;
mod tenancy_admin;
mod waits;

pub use config::{Config, Timeouts};
pub use error::Error;
pub use ids::Ids;
pub use rundata::Related;
pub use schedules::{ScheduleParams, ScheduleView};
pub use shell::{Engine, Maintained};
pub use systems::attempt::{Completed, Completion, HeartbeatVerdict, Outcome};
pub use systems::batch::{
    BatchCreated, BatchItem, BatchParams, BatchRun, BatchTriggered, BatchView, ItemsAdded, MAX_BATCH_ITEMS,
};
pub use systems::cancel::Cancelled;
pub use systems::limits::{EnvUsage, MAX_BURST_FACTOR};
pub use systems::metadata::{HeldUpdate, MetadataChange, UPDATABLE_AFTER_FINISH};
pub use systems::queues::{MAX_LIMIT_OVERRIDE, QueueRef, QueueView};
pub use systems::rates::{RATE_LIMITS, RATE_PERIODS_MS};
pub use systems::tenancy::{Bootstrapped, KeyView, NewKey, NewToken, PROJECT_ENVIRONMENTS, ProjectView};
pub use systems::timing::Due;
pub use systems::trigger::{Debounce, DebounceMode, Delay, Idempotency, TriggerParams, Triggered};
pub use systems::workers::{DeclaredSchedule, TaskSpec};
pub use waits::{CallAnswer, Continuation, JournalView, TokenCreated, TokenParams, Wait};

/// The system clock.
pub struct SystemClock;

impl stint_types::Clock for SystemClock {
    fn now(&self) -> stint_types::Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        stint_types::Timestamp(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }
}
