//! Rows of schedules and of the runs they fired.

use stint_types::{EnvId, RunId, ScheduleId, Timestamp};

/// A schedule of a task in one environment: a cron expression in a time zone, and where its chain
/// of fire times stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    /// Its id.
    pub id: ScheduleId,
    /// The environment whose runs it makes.
    pub env_id: EnvId,
    /// `DECLARATIVE` (declared by a task in the SDK, kept in step with the environment's current
    /// version) or `IMPERATIVE` (made through the API).
    pub kind: String,
    /// The task it triggers.
    pub task_id: String,
    /// The cron expression, 5 fields.
    pub cron: String,
    /// The IANA time zone the expression is read in (`UTC` by default).
    pub timezone: String,
    /// The creator's id for it, free text.
    pub external_id: Option<String>,
    /// Unique in the environment when set: a create with a key the environment has updates that
    /// schedule instead.
    pub dedup_key: Option<String>,
    /// Whether it triggers runs; an inactive schedule keeps its chain of fire times.
    pub active: bool,
    /// The next nominal fire time; `None` when the expression has none left.
    pub next_run: Option<Timestamp>,
    /// When the run of `next_run` is made: at or shortly before it, so that many schedules of
    /// one time are spread out; the run waits in its queue until `next_run`.
    pub due_at: Option<Timestamp>,
    /// The nominal time it last fired at.
    pub last_run: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A run a schedule fired, at a nominal fire time: one per schedule and time.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFireRow {
    /// The schedule.
    pub schedule_id: ScheduleId,
    /// The nominal fire time.
    pub fire_time: Timestamp,
    /// The run it made.
    pub run_id: RunId,
}
