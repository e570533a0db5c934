//! Rows as the engine sees them, and the params of queries that take more than an id.

use stint_types::{
    BatchId, BatchStatus, EnvId, EnvironmentType, ExecutionStatus, KeyId, OrgId, ProjectId, QueueId, RetryOptions,
    RunId, RunStatus, SnapshotId, TaskRunError, Timestamp, TokenId, WorkerId,
};

/// An organization: the top of the tenancy tree.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationRow {
    /// Its id.
    pub id: OrgId,
    /// Display name.
    pub title: String,
    /// URL-safe name.
    pub slug: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A project of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRow {
    /// Its id.
    pub id: ProjectId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// Display name.
    pub name: String,
    /// The public reference (`proj_…`), as Trigger.dev's `ref`.
    pub reference: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// An environment of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentRow {
    /// Its id.
    pub id: EnvId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// Its kind.
    pub kind: EnvironmentType,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A secret key, stored as the SHA-256 of its text.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    /// Its id.
    pub id: KeyId,
    /// Hex SHA-256 of the key; unique.
    pub key_hash: String,
    /// The first characters of the key, to tell keys apart without revealing them.
    pub key_prefix: String,
    /// The environment the key opens.
    pub env_id: EnvId,
    /// A name given by its creator.
    pub name: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it was revoked: from then on it opens nothing.
    pub revoked_at: Option<Timestamp>,
}

/// A personal access token of a project, stored as the SHA-256 of its text. It opens the
/// project-level endpoints of its project.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenRow {
    /// Its id.
    pub id: TokenId,
    /// Hex SHA-256 of the token; unique.
    pub token_hash: String,
    /// The first characters of the token, to tell tokens apart without revealing them.
    pub token_prefix: String,
    /// The project it opens.
    pub project_id: ProjectId,
    /// A name given by its creator.
    pub name: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it was revoked: from then on it opens nothing.
    pub revoked_at: Option<Timestamp>,
}

/// The instance's admin token, stored as the SHA-256 of its text. There is at most one.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminTokenRow {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A queue of an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    /// Its id.
    pub id: QueueId,
    /// The environment it belongs to.
    pub env_id: EnvId,
    /// Its name, unique in the environment.
    pub name: String,
    /// Most runs executing at once as the tasks declare it; unlimited when `None`.
    pub concurrency_limit: Option<u32>,
    /// A limit set through the API, in force instead of the declared one until it is reset.
    pub limit_override: Option<LimitOverride>,
    /// Most runs of all its concurrency keys together executing at once; unlimited when `None`.
    /// The limit in force applies to each key on its own, as Trigger.dev's does.
    pub combined_limit: Option<u32>,
    /// Whether the queue is paused: it starts no run until resumed.
    pub paused: bool,
    /// Runs holding a slot now: taken by a worker and not yet finished or requeued.
    pub running: u32,
    /// How many of the running runs have a concurrency key.
    pub keyed_running: u32,
    /// Creation time.
    pub created_at: Timestamp,
    /// The rate limit on its starts as the tasks declare it; none when `None`.
    pub rate_limit: Option<RateLimit>,
    /// A rate limit set through the API, in force instead of the declared one until it is reset.
    pub rate_override: Option<RateOverride>,
}

impl QueueRow {
    /// The limit in force: the override when there is one, else the declared limit.
    pub fn limit(&self) -> Option<u32> {
        self.limit_override.map_or(self.concurrency_limit, |o| Some(o.limit))
    }

    /// The rate limit in force: the override when there is one, else the declared one.
    pub fn rate(&self) -> Option<RateLimit> {
        self.rate_override.map_or(self.rate_limit, |o| Some(o.rate))
    }
}

/// A limit on how often a queue's runs start: at most `limit` starts per `period_ms`, for the
/// whole queue or, with `per_key`, for each of its concurrency keys (and for its runs without a
/// key) on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Most starts per period.
    pub limit: u32,
    /// The period, in ms.
    pub period_ms: u64,
    /// Whether each concurrency key has the limit on its own.
    pub per_key: bool,
}

/// A queue's rate limit as set through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateOverride {
    /// The rate limit.
    pub rate: RateLimit,
    /// When it was set.
    pub at: Timestamp,
}

/// An environment's limits: Trigger.dev's environment concurrency limit and burst factor, and
/// whether it is paused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvLimits {
    /// The base limit: no queue of the environment runs more than this many runs at once;
    /// unlimited when `None`.
    pub concurrency_limit: Option<u32>,
    /// The environment's queues together may run `concurrency_limit × burst_factor` runs.
    pub burst_factor: f64,
    /// Whether the environment is paused: none of its queues starts a run until resumed.
    pub paused: bool,
}

impl Default for EnvLimits {
    fn default() -> Self {
        EnvLimits { concurrency_limit: None, burst_factor: 2.0, paused: false }
    }
}

impl EnvLimits {
    /// Most runs of the environment executing at once: the limit times the burst factor,
    /// rounded down, as Trigger.dev admits them.
    pub fn burst_limit(&self) -> Option<u32> {
        self.concurrency_limit.map(|limit| (f64::from(limit) * self.burst_factor).floor() as u32)
    }
}

/// A queue's concurrency limit as set through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitOverride {
    /// The limit.
    pub limit: u32,
    /// When it was set.
    pub at: Timestamp,
}

/// A task as a worker last declared it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The environment.
    pub env_id: EnvId,
    /// The task's identifier.
    pub task_id: String,
    /// The queue the task runs in by default.
    pub queue_name: String,
    /// How failed attempts are retried.
    pub retry: RetryOptions,
    /// Seconds an attempt may run.
    pub max_duration: Option<u32>,
    /// Seconds a run may wait for its first attempt once queued, when its trigger sets none.
    pub ttl_secs: Option<u32>,
    /// When it was last declared.
    pub updated_at: Timestamp,
}

/// A registered worker process.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    /// Its id.
    pub id: WorkerId,
    /// The environment it serves, the first of `env_ids`.
    pub env_id: EnvId,
    /// Every environment it serves: `env_id` alone, or the environments of a worker pool, which
    /// takes runs of all of them in turn.
    pub env_ids: Vec<EnvId>,
    /// The build label it registered with, free text.
    pub version: String,
    /// Its version in each of `env_ids`, in the same order (see [`WorkerVersionRow`]); empty for a
    /// worker registered before versions existed, which takes only runs not locked to a version.
    pub versions: Vec<String>,
    /// The tasks it runs.
    pub task_ids: Vec<String>,
    /// Registration time.
    pub created_at: Timestamp,
}

impl WorkerRow {
    /// Whether the worker serves the environment.
    pub fn serves(&self, env_id: &EnvId) -> bool {
        self.env_ids.contains(env_id)
    }

    /// The environments of a worker pool, as stores keep them: `None` for a worker of `env_id`
    /// alone.
    pub fn pool(&self) -> Option<Vec<&str>> {
        (self.env_ids.len() != 1 || self.env_ids[0] != self.env_id)
            .then(|| self.env_ids.iter().map(EnvId::as_str).collect())
    }

    /// The environments a stored worker of `env_id` serves, from what [`WorkerRow::pool`] kept.
    pub fn env_ids_of(env_id: &EnvId, pool: Option<Vec<String>>) -> Vec<EnvId> {
        pool.map_or_else(|| vec![env_id.clone()], |ids| ids.into_iter().map(EnvId::from_stored).collect())
    }

    /// The worker's version in an environment it serves: the only runs of that environment it
    /// takes are those not locked to a version and those locked to this one.
    pub fn version_in(&self, env_id: &EnvId) -> Option<&str> {
        let at = self.env_ids.iter().position(|e| e == env_id)?;
        self.versions.get(at).map(String::as_str)
    }
}

/// A version of an environment's workers: every registration with the same content (tasks, their
/// settings and the build label) has the same version, `YYYYMMDD.N`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerVersionRow {
    /// The environment.
    pub env_id: EnvId,
    /// The version, `YYYYMMDD.N`; unique in the environment.
    pub version: String,
    /// The SHA-256 of the registration's content, hex; unique in the environment.
    pub fingerprint: String,
    /// Its place among the environment's versions, 1, 2, … in the order they were made; unique in
    /// the environment. The highest is the environment's current version.
    pub seq: i64,
    /// When it was made.
    pub created_at: Timestamp,
}

/// A run and its current state. The engine reads a row, builds the next one and writes it back
/// with [`crate::RunTable::run_transition`], fenced by `snapshot_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Its id.
    pub id: RunId,
    /// The environment it belongs to.
    pub env_id: EnvId,
    /// The task it runs.
    pub task_id: String,
    /// The queue it runs in.
    pub queue_id: QueueId,
    /// The queue's name.
    pub queue_name: String,
    /// Public status.
    pub status: RunStatus,
    /// Current snapshot: the fencing token.
    pub snapshot_id: SnapshotId,
    /// Current snapshot's execution status.
    pub execution_status: ExecutionStatus,
    /// Attempts started so far.
    pub attempt_number: u32,
    /// Attempt limit from the trigger options, overriding the task's.
    pub max_attempts: Option<u32>,
    /// Retry settings, frozen when the first attempt starts.
    pub retry: Option<RetryOptions>,
    /// Seconds an attempt may run, frozen when the first attempt starts.
    pub max_duration: Option<u32>,
    /// The payload as stored text.
    pub payload: String,
    /// The payload's content type.
    pub payload_type: String,
    /// The output as stored text.
    pub output: Option<String>,
    /// The output's content type.
    pub output_type: Option<String>,
    /// The error of the last failed attempt.
    pub error: Option<TaskRunError>,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata as JSON text. Written by [`crate::RunTable::run_insert`] and
    /// [`crate::RunTable::run_set_metadata`] only: a transition leaves it as it is.
    pub metadata: Option<String>,
    /// Concurrency key.
    pub concurrency_key: Option<String>,
    /// Priority in ms: the run is ordered as if queued this much earlier.
    pub priority_ms: i64,
    /// The run's place in its queue: set exactly while it waits there (queued time minus
    /// priority, or the time its retry is due). It is eligible once this is not after now.
    pub queue_score: Option<i64>,
    /// Whether this is a test run.
    pub is_test: bool,
    /// Machine preset asked for.
    pub machine: Option<String>,
    /// The worker holding the run.
    pub worker_id: Option<WorkerId>,
    /// Version of the worker that ran the latest attempt.
    pub version: Option<String>,
    /// When the holder is considered lost if it has not sent a heartbeat; set exactly while a
    /// worker holds the run.
    pub heartbeat_deadline: Option<Timestamp>,
    /// When the current attempt started.
    pub attempt_started_at: Option<Timestamp>,
    /// Milliseconds spent executing, summed over finished attempts.
    pub duration_ms: i64,
    /// The run this one replays.
    pub replayed_from: Option<RunId>,
    /// The idempotency key: no other run of the environment and task holds the same one.
    pub idempotency_key: Option<String>,
    /// When the idempotency key stops applying: a trigger with it after this time makes a new run.
    pub idempotency_key_expires_at: Option<Timestamp>,
    /// When a delayed run is due to be queued; kept after it is, for the record.
    pub delay_until: Option<Timestamp>,
    /// Seconds the run may wait in its queue before its first attempt starts.
    pub ttl_secs: Option<u32>,
    /// When the run expires if its first attempt has not started: set exactly while a run with a
    /// TTL waits in its queue for its first attempt.
    pub ttl_expires_at: Option<Timestamp>,
    /// The debounce key: set exactly while the run is delayed by a debounced trigger, and unique
    /// per environment and task among such runs.
    pub debounce_key: Option<String>,
    /// The run that triggered this one from inside a task.
    pub parent_run_id: Option<RunId>,
    /// The first run of the chain of parents; `None` for a run triggered from outside a task.
    pub root_run_id: Option<RunId>,
    /// How many parents the run has.
    pub depth: u32,
    /// The batch the run was triggered in.
    pub batch_id: Option<BatchId>,
    /// The run's place in its batch, from 0.
    pub batch_index: Option<u32>,
    /// Set while the run is queued to go on with an attempt that was suspended on waitpoints: its
    /// next start resumes that attempt (same attempt number) instead of starting a new one.
    pub resuming: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When the first attempt started.
    pub started_at: Option<Timestamp>,
    /// When the run ended.
    pub finished_at: Option<Timestamp>,
}

/// A run to add, with its first snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// The run.
    pub run: RunRow,
    /// Its first snapshot; `snapshot.id` is `run.snapshot_id`.
    pub snapshot: SnapshotRow,
}

/// A batch of runs triggered together: made with a count of items, then given its items (each
/// becoming a run, or naming the run its idempotency key found), and sealed once every item has
/// arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    /// Its id.
    pub id: BatchId,
    /// The environment it belongs to.
    pub env_id: EnvId,
    /// How many items it has: its items' indexes are `0..run_count`.
    pub run_count: u32,
    /// How many distinct items have arrived.
    pub items_received: u32,
    /// The key a create with the same key is answered this batch by; unique per environment.
    pub idempotency_key: Option<String>,
    /// `Pending` until sealed, `Processing` after; `Completed` is worked out when read, from its
    /// runs.
    pub status: BatchStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When its last item arrived.
    pub sealed_at: Option<Timestamp>,
}

impl BatchRow {
    /// Whether every item has arrived.
    pub fn sealed(&self) -> bool {
        self.sealed_at.is_some()
    }
}

/// One item of a batch as it stands: its run, and how that run is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItemRow {
    /// The item's index in its batch.
    pub index: u32,
    /// The run the item made, or the existing run its idempotency key named.
    pub run_id: RunId,
    /// The run's task.
    pub task_id: String,
    /// The run's status.
    pub status: RunStatus,
    /// When the run ended, if it has.
    pub finished_at: Option<Timestamp>,
}

/// A fenced move of a run: to `run`'s state with `snapshot` appended, if its current snapshot
/// is `expected`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The snapshot the run must be at.
    pub expected: SnapshotId,
    /// The run's next state; its `snapshot_id` is `snapshot.id`.
    pub run: RunRow,
    /// The snapshot to append.
    pub snapshot: SnapshotRow,
}

/// One entry of a run's append-only history.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRow {
    /// Its id.
    pub id: SnapshotId,
    /// The run.
    pub run_id: RunId,
    /// Execution status.
    pub status: ExecutionStatus,
    /// The run's public status at this point.
    pub run_status: RunStatus,
    /// Attempt number at this point.
    pub attempt_number: u32,
    /// Why the run got here, in words.
    pub description: String,
    /// The worker holding the run, if any.
    pub worker_id: Option<WorkerId>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// Which runs of a queue a take looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane<'a> {
    /// Every run.
    All,
    /// The runs without a concurrency key.
    Unkeyed,
    /// The runs with this concurrency key.
    Key(&'a str),
}

/// A queue with waiting runs of some tasks, and its earliest score among them.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueHead {
    /// The queue.
    pub queue: QueueRow,
    /// The lowest score among its waiting runs of the asked tasks.
    pub head_score: i64,
}

/// Filters and page of a run listing, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunListParams {
    /// The environment.
    pub env_id: Option<EnvId>,
    /// Any of these statuses; all when empty.
    pub statuses: Vec<RunStatus>,
    /// Any of these tasks; all when empty.
    pub task_ids: Vec<String>,
    /// Runs with any of these tags; all when empty.
    pub tags: Vec<String>,
    /// Only runs of this batch.
    pub batch_id: Option<BatchId>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created at or before.
    pub created_to: Option<Timestamp>,
    /// Only runs older than this id (the next page).
    pub after: Option<RunId>,
    /// Only runs newer than this id (the previous page).
    pub before: Option<RunId>,
    /// Most rows to return.
    pub limit: u32,
}

/// The answer to a trigger request sent with a request idempotency key: the same request sent
/// again before `expires_at` answers the same run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKeyRow {
    /// The environment.
    pub env_id: EnvId,
    /// The key the client sent.
    pub key: String,
    /// The run the request answered.
    pub run_id: RunId,
    /// Whether the answer was a run that existed already.
    pub cached: bool,
    /// When the answer is forgotten.
    pub expires_at: Timestamp,
}
