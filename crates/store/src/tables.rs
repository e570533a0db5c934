//! The table traits a transaction offers. Each backend implements them with its own SQL.

use async_trait::async_trait;
use stint_types::{
    BatchId, EnvId, KeyId, OrgId, ProjectId, QueueId, RunId, ScheduleId, SnapshotId, Timestamp, TokenId, WaitpointId,
    WorkerId,
};

use crate::signal::Signal;

use crate::rows::RequestKeyRow;
use crate::rows::{AccessTokenRow, AdminTokenRow};
use crate::rows::{RateLimit, RateOverride};

use crate::Error;
use crate::rows::WorkerVersionRow;
use crate::rows::{
    ApiKeyRow, EnvLimits, EnvironmentRow, Lane, LimitOverride, OrganizationRow, ProjectRow, QueueHead, QueueRow,
    RunListParams, RunRow, SnapshotRow, TaskRow, Transition, WorkerRow,
};
use crate::rows::{BatchItemRow, BatchRow, NewRun};
use crate::schedules::{ScheduleFireRow, ScheduleRow};
use crate::waits::{JournalRow, WaitpointListParams, WaitpointRow};

/// A transaction: every table, used through `&mut dyn Tx`.
pub trait Tx:
    TenancyTable
    + QueueTable
    + LimitTable
    + RateTable
    + WorkerTable
    + RunTable
    + OptionTable
    + BatchTable
    + WaitpointTable
    + ScheduleTable
    + LeaseTable
    + Signals
    + Send
{
}

impl<
    T: TenancyTable
        + QueueTable
        + LimitTable
        + RateTable
        + WorkerTable
        + RunTable
        + OptionTable
        + BatchTable
        + WaitpointTable
        + ScheduleTable
        + LeaseTable
        + Signals
        + Send,
> Tx for T
{
}

/// Named leases: which node of several sharing a database does a piece of work.
#[async_trait]
pub trait LeaseTable {
    /// Takes the lease `name` for `holder` until `until`, or extends it, when it is free, has
    /// expired (its end is at or before `now`) or is `holder`'s already. Returns the lease's epoch
    /// when `holder` holds it, `None` when another holder does. The epoch grows each time the
    /// lease changes hands.
    async fn lease_acquire(
        &mut self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<i64>, Error>;
    /// Gives the lease up, if `holder` holds it.
    async fn lease_release(&mut self, name: &str, holder: &str) -> Result<(), Error>;
}

/// Telling the other nodes sharing the database about a change, once the transaction commits.
/// A store with only one node (SQLite) has no one to tell and does nothing.
#[async_trait]
pub trait Signals {
    /// Sends `signal` to every node subscribed to the store ([`crate::Store::subscribe`]) if and
    /// when this transaction commits.
    async fn signal(&mut self, signal: &Signal) -> Result<(), Error>;
}

/// Organizations, projects, environments and their keys.
#[async_trait]
pub trait TenancyTable {
    /// Adds an organization.
    async fn organization_insert(&mut self, row: &OrganizationRow) -> Result<(), Error>;
    /// Adds a project.
    async fn project_insert(&mut self, row: &ProjectRow) -> Result<(), Error>;
    /// Adds an environment.
    async fn environment_insert(&mut self, row: &EnvironmentRow) -> Result<(), Error>;
    /// Adds a secret key; a key whose hash exists already is a [`Error::Duplicate`].
    async fn api_key_insert(&mut self, row: &ApiKeyRow) -> Result<(), Error>;
    /// Every organization.
    async fn organization_list(&mut self) -> Result<Vec<OrganizationRow>, Error>;
    /// Every project.
    async fn project_list(&mut self) -> Result<Vec<ProjectRow>, Error>;
    /// Every environment.
    async fn environment_list(&mut self) -> Result<Vec<EnvironmentRow>, Error>;
    /// Every secret key.
    async fn api_key_list(&mut self) -> Result<Vec<ApiKeyRow>, Error>;
    /// An organization.
    async fn organization_get(&mut self, id: &OrgId) -> Result<Option<OrganizationRow>, Error>;
    /// The organization with this slug.
    async fn organization_by_slug(&mut self, slug: &str) -> Result<Option<OrganizationRow>, Error>;
    /// A project.
    async fn project_get(&mut self, id: &ProjectId) -> Result<Option<ProjectRow>, Error>;
    /// The project with this public reference.
    async fn project_by_ref(&mut self, reference: &str) -> Result<Option<ProjectRow>, Error>;
    /// An environment.
    async fn environment_get(&mut self, id: &EnvId) -> Result<Option<EnvironmentRow>, Error>;
    /// A project's environments, by id.
    async fn environment_list_by_project(&mut self, project_id: &ProjectId) -> Result<Vec<EnvironmentRow>, Error>;
    /// The secret key whose hash this is, revoked or not.
    async fn api_key_by_hash(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, Error>;
    /// A secret key.
    async fn api_key_get(&mut self, id: &KeyId) -> Result<Option<ApiKeyRow>, Error>;
    /// An environment's secret keys, revoked ones included, by id; only those whose prefix starts
    /// with `prefix` when it is given.
    async fn api_key_list_by_env(&mut self, env_id: &EnvId, prefix: Option<&str>) -> Result<Vec<ApiKeyRow>, Error>;
    /// Marks a secret key revoked at `at`, unless it is revoked already.
    async fn api_key_revoke(&mut self, id: &KeyId, at: Timestamp) -> Result<(), Error>;
    /// Adds a personal access token; a token whose id or hash exists already is a
    /// [`Error::Duplicate`].
    async fn access_token_insert(&mut self, row: &AccessTokenRow) -> Result<(), Error>;
    /// The personal access token whose hash this is, revoked or not.
    async fn access_token_by_hash(&mut self, token_hash: &str) -> Result<Option<AccessTokenRow>, Error>;
    /// A personal access token.
    async fn access_token_get(&mut self, id: &TokenId) -> Result<Option<AccessTokenRow>, Error>;
    /// A project's personal access tokens, revoked ones included, by id.
    async fn access_token_list(&mut self, project_id: &ProjectId) -> Result<Vec<AccessTokenRow>, Error>;
    /// Marks a personal access token revoked at `at`, unless it is revoked already.
    async fn access_token_revoke(&mut self, id: &TokenId, at: Timestamp) -> Result<(), Error>;
    /// Stores the instance's admin token; when there is one already, a [`Error::Duplicate`].
    async fn admin_token_insert(&mut self, row: &AdminTokenRow) -> Result<(), Error>;
    /// The instance's admin token, if it has one.
    async fn admin_token_get(&mut self) -> Result<Option<AdminTokenRow>, Error>;
}

/// Queues, and the runs waiting in them: runs whose `queue_score` is set.
#[async_trait]
pub trait QueueTable {
    /// The queue with this name in the environment.
    async fn queue_by_name(&mut self, env_id: &EnvId, name: &str) -> Result<Option<QueueRow>, Error>;
    /// The queue, locked until the transaction ends, so that its running count can be checked
    /// against its limit and changed without another transaction doing the same in between.
    async fn queue_lock(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error>;
    /// Adds a queue; a name taken in the environment is a [`Error::Duplicate`].
    async fn queue_insert(&mut self, row: &QueueRow) -> Result<(), Error>;
    /// A queue.
    async fn queue_get(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error>;
    /// The environment's queues by name, `offset` of them skipped, at most `limit`.
    async fn queue_list(&mut self, env_id: &EnvId, offset: u64, limit: u32) -> Result<Vec<QueueRow>, Error>;
    /// How many queues the environment has.
    async fn queue_count(&mut self, env_id: &EnvId) -> Result<u64, Error>;
    /// How many runs wait in a queue, ready or not.
    async fn queue_waiting(&mut self, id: &QueueId) -> Result<u64, Error>;
    /// Sets a queue's declared concurrency limit and its cap on all keys together.
    async fn queue_set_limit(&mut self, id: &QueueId, limit: Option<u32>, combined: Option<u32>) -> Result<(), Error>;
    /// Sets or clears a queue's limit override.
    async fn queue_set_override(&mut self, id: &QueueId, limit: Option<LimitOverride>) -> Result<(), Error>;
    /// Pauses or resumes a queue.
    async fn queue_set_paused(&mut self, id: &QueueId, paused: bool) -> Result<(), Error>;
    /// Adds `delta` to a queue's running count, `keyed_delta` of it to the count of its running
    /// runs with a concurrency key.
    async fn queue_add_running(&mut self, id: &QueueId, delta: i64, keyed_delta: i64) -> Result<(), Error>;
    /// The environment's queues holding waiting runs of any of `task_ids` that a worker of
    /// `version` may take, with the lowest score among those runs. A worker of a version takes
    /// the runs not locked to one (`runs.version` is NULL) and those locked to its own; `None`
    /// takes only the runs not locked.
    async fn queue_heads(
        &mut self,
        env_id: &EnvId,
        task_ids: &[String],
        version: Option<&str>,
    ) -> Result<Vec<QueueHead>, Error>;
    /// Whether a queue holds a run whose score is at most `max_score`.
    async fn queue_ready(&mut self, queue_id: &QueueId, max_score: i64) -> Result<bool, Error>;
    /// Up to `limit` concurrency keys of runs waiting in a queue with a score of at most
    /// `max_score` that a worker of `version` may take (as for [`QueueTable::queue_heads`]), in
    /// the store's order of keys, each after `after` when it is given. Keys are never empty: a run
    /// without one has none.
    async fn queue_lanes(
        &mut self,
        queue_id: &QueueId,
        after: Option<&str>,
        version: Option<&str>,
        max_score: i64,
        limit: u32,
    ) -> Result<Vec<String>, Error>;
    /// Up to `limit` runs of `task_ids` in `lane` of a queue with a score of at most
    /// `max_score` that a worker of `version` may take (as for [`QueueTable::queue_heads`]),
    /// lowest score first. They stay queued until a transition clears their score.
    async fn queue_take(
        &mut self,
        queue_id: &QueueId,
        lane: Lane<'_>,
        task_ids: &[String],
        version: Option<&str>,
        max_score: i64,
        limit: u32,
    ) -> Result<Vec<RunRow>, Error>;
}

/// Limits beyond a queue's own: an environment's limits and the running count of each concurrency
/// key of a queue.
#[async_trait]
pub trait LimitTable {
    /// An environment's limits.
    async fn env_limits(&mut self, env_id: &EnvId) -> Result<Option<EnvLimits>, Error>;
    /// An environment's limits, its row locked until the transaction ends, so its running count
    /// can be checked against its limit without another transaction taking slots in between.
    async fn env_lock(&mut self, env_id: &EnvId) -> Result<Option<EnvLimits>, Error>;
    /// Sets an environment's limits.
    async fn env_set_limits(&mut self, env_id: &EnvId, limits: &EnvLimits) -> Result<(), Error>;
    /// Runs of the environment holding a slot: its queues' running counts summed.
    async fn env_running(&mut self, env_id: &EnvId) -> Result<u64, Error>;
    /// The running count of each concurrency key of a queue that has a running run.
    async fn lane_running(&mut self, queue_id: &QueueId) -> Result<Vec<(String, u32)>, Error>;
    /// Adds `delta` to the running count of a concurrency key of a queue.
    async fn lane_add_running(&mut self, queue_id: &QueueId, key: &str, delta: i64) -> Result<(), Error>;
}

/// Rate limits of queues and the state they keep: a theoretical arrival time (GCRA), in µs since
/// the epoch, per queue and lane. The lane `""` is the whole queue when its rate limit is not per
/// key, and its runs without a concurrency key when it is (keys are never empty). A lane without a
/// row, or whose time has passed, has its whole burst to start.
#[async_trait]
pub trait RateTable {
    /// Sets a queue's declared rate limit.
    async fn rate_set_declared(&mut self, queue_id: &QueueId, rate: Option<RateLimit>) -> Result<(), Error>;
    /// Sets or clears a queue's rate limit override.
    async fn rate_set_override(&mut self, queue_id: &QueueId, rate: Option<RateOverride>) -> Result<(), Error>;
    /// The theoretical arrival times of those of `lanes` of a queue that have one, in any order.
    async fn rate_tats(&mut self, queue_id: &QueueId, lanes: &[&str]) -> Result<Vec<(String, i64)>, Error>;
    /// Sets the theoretical arrival times of lanes of a queue, adding rows as needed.
    async fn rate_set_tats(&mut self, queue_id: &QueueId, tats: &[(&str, i64)]) -> Result<(), Error>;
    /// Deletes up to `limit` of a queue's rows whose time is at or before `before`; returns how many.
    async fn rate_prune(&mut self, queue_id: &QueueId, before: i64, limit: u32) -> Result<u64, Error>;
}

/// Tasks and worker processes.
#[async_trait]
pub trait WorkerTable {
    /// Adds or replaces a task's declaration.
    async fn task_upsert(&mut self, row: &TaskRow) -> Result<(), Error>;
    /// A task's declaration.
    async fn task_get(&mut self, env_id: &EnvId, task_id: &str) -> Result<Option<TaskRow>, Error>;
    /// Adds a worker.
    async fn worker_insert(&mut self, row: &WorkerRow) -> Result<(), Error>;
    /// A worker.
    async fn worker_get(&mut self, id: &WorkerId) -> Result<Option<WorkerRow>, Error>;
    /// Adds a version of an environment's workers; a version, fingerprint or place the environment
    /// has already is a [`Error::Duplicate`], and adds nothing.
    async fn worker_version_insert(&mut self, row: &WorkerVersionRow) -> Result<(), Error>;
    /// The environment's version with this name.
    async fn worker_version_get(&mut self, env_id: &EnvId, version: &str) -> Result<Option<WorkerVersionRow>, Error>;
    /// The environment's version with this fingerprint.
    async fn worker_version_by_fingerprint(
        &mut self,
        env_id: &EnvId,
        fingerprint: &str,
    ) -> Result<Option<WorkerVersionRow>, Error>;
    /// The environment's current version: the one made last (the highest `seq`).
    async fn worker_version_current(&mut self, env_id: &EnvId) -> Result<Option<WorkerVersionRow>, Error>;
}

/// Runs and their snapshots.
#[async_trait]
pub trait RunTable {
    /// Adds a run together with its first snapshot.
    async fn run_insert(&mut self, run: &RunRow, snapshot: &SnapshotRow) -> Result<(), Error>;
    /// Adds runs, each with its first snapshot, and answers for each whether it was added. A run
    /// a uniqueness rule refuses (its id, its idempotency key, or its place in its batch is taken)
    /// is answered `false` and nothing of it is written; the others are added all the same. A
    /// store may add them in fewer statements than one per run.
    async fn run_insert_many(&mut self, runs: &[NewRun]) -> Result<Vec<bool>, Error> {
        let mut added = Vec::with_capacity(runs.len());
        for new in runs {
            added.push(match self.run_insert(&new.run, &new.snapshot).await {
                Ok(()) => true,
                Err(Error::Duplicate(_)) => false,
                Err(error) => return Err(error),
            });
        }
        Ok(added)
    }
    /// A run.
    async fn run_get(&mut self, id: &RunId) -> Result<Option<RunRow>, Error>;
    /// The run of the environment and task holding the idempotency key, if any. Two runs never
    /// hold one key: inserting a second is a [`Error::Duplicate`].
    async fn run_by_idempotency_key(
        &mut self,
        env_id: &EnvId,
        task_id: &str,
        key: &str,
    ) -> Result<Option<RunRow>, Error>;
    /// Takes the idempotency key off a run (whatever its state), so a new run can hold it.
    async fn run_forget_idempotency_key(&mut self, id: &RunId) -> Result<(), Error>;
    /// Runs matching the filters, newest first.
    async fn run_list(&mut self, params: &RunListParams) -> Result<Vec<RunRow>, Error>;
    /// Moves a run to `run`'s state and appends `snapshot`, if and only if the run's current
    /// snapshot is `expected`; otherwise changes nothing and returns [`Error::Stale`].
    /// `run.snapshot_id` must equal `snapshot.id`.
    async fn run_transition(
        &mut self,
        expected: &SnapshotId,
        run: &RunRow,
        snapshot: &SnapshotRow,
    ) -> Result<(), Error>;
    /// Several [`RunTable::run_transition`]s, each judged on its own: the answers are in the
    /// order of `moves`, whose runs must be distinct. A store may make them in fewer statements;
    /// runs are changed in id order.
    async fn run_transition_many(&mut self, moves: &[Transition]) -> Result<Vec<Result<(), Error>>, Error> {
        let mut order: Vec<usize> = (0..moves.len()).collect();
        order.sort_by(|a, b| moves[*a].run.id.cmp(&moves[*b].run.id));
        let mut answers: Vec<Option<Result<(), Error>>> = vec![None; moves.len()];
        for at in order {
            let one = &moves[at];
            answers[at] = Some(match self.run_transition(&one.expected, &one.run, &one.snapshot).await {
                Ok(()) => Ok(()),
                Err(error @ (Error::Stale { .. } | Error::NotFound(_))) => Err(error),
                Err(error) => return Err(error),
            });
        }
        Ok(answers.into_iter().flatten().collect())
    }
    /// The runs with these ids that exist, in any order.
    async fn run_get_many(&mut self, ids: &[RunId]) -> Result<Vec<RunRow>, Error> {
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            runs.extend(self.run_get(id).await?);
        }
        Ok(runs)
    }
    /// A run, locked until the transaction ends (on a store with several writers), so that what
    /// is read from it can be changed and written back without another transaction changing it
    /// in between. Transactions locking several runs lock them in id order.
    async fn run_lock(&mut self, id: &RunId) -> Result<Option<RunRow>, Error>;
    /// Sets a run's metadata (JSON text), whatever its state: metadata is written only here,
    /// never by [`RunTable::run_transition`], so a transition made from a run read earlier
    /// cannot undo a change made meanwhile. Read-modify-write callers lock the run first
    /// ([`RunTable::run_lock`]).
    async fn run_set_metadata(&mut self, id: &RunId, metadata: Option<&str>, at: Timestamp) -> Result<(), Error>;
    /// Sets a run's tags, whatever its state, and indexes them for [`RunTable::run_list`]. Tags
    /// are only ever added: `tags` holds the run's current tags and the new ones.
    async fn run_set_tags(&mut self, id: &RunId, tags: &[String], at: Timestamp) -> Result<(), Error>;
    /// Up to `limit` runs whose parent is `parent`, oldest first.
    async fn run_children(&mut self, parent: &RunId, limit: u32) -> Result<Vec<RunRow>, Error>;
    /// Moves a held run's heartbeat deadline, if its current snapshot is `snapshot_id`; false
    /// otherwise.
    async fn run_heartbeat(&mut self, id: &RunId, snapshot_id: &SnapshotId, deadline: Timestamp)
    -> Result<bool, Error>;
    /// Runs whose heartbeat deadline is at or before `now`, earliest first.
    async fn run_stalled(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error>;
    /// A run's snapshots, oldest first.
    async fn snapshot_list(&mut self, run_id: &RunId) -> Result<Vec<SnapshotRow>, Error>;
}

/// What trigger options keep on runs and beside them: delayed runs coming due, time-to-live
/// deadlines, debounce keys and the answers of requests sent with a request idempotency key.
#[async_trait]
pub trait OptionTable {
    /// Delayed runs due at `now` or earlier, earliest first.
    async fn run_delayed_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error>;
    /// Runs whose TTL passed at `now` or earlier while they waited for their first attempt,
    /// earliest first.
    async fn run_ttl_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<RunRow>, Error>;
    /// The earliest time a delayed run comes due or a TTL passes.
    async fn run_next_due(&mut self) -> Result<Option<Timestamp>, Error>;
    /// The delayed run of an environment and task holding a debounce key.
    async fn run_by_debounce_key(&mut self, env_id: &EnvId, task_id: &str, key: &str) -> Result<Option<RunRow>, Error>;
    /// Takes a run's debounce key away, so a new run can hold it.
    async fn run_forget_debounce_key(&mut self, id: &RunId) -> Result<(), Error>;
    /// Writes a run's input (payload and its type, tags, machine), which transitions do not
    /// write; the caller has moved the run in this transaction, so it holds it.
    async fn run_set_input(&mut self, run: &RunRow) -> Result<(), Error>;
    /// The answer recorded for a request key of an environment, whether or not it has expired.
    async fn request_key_get(&mut self, env_id: &EnvId, key: &str) -> Result<Option<RequestKeyRow>, Error>;
    /// Records the answer for a request key, replacing one that expired by `now`; `Duplicate`
    /// when the key has an answer that has not.
    async fn request_key_put(&mut self, row: &RequestKeyRow, now: Timestamp) -> Result<(), Error>;
    /// Deletes up to `limit` answers that expired before `before`; returns how many.
    async fn request_key_purge(&mut self, before: Timestamp, limit: u32) -> Result<u64, Error>;
}

/// Batches of runs triggered together. A batch's runs carry its id and their item's index
/// (`RunRow::batch_id`, `RunRow::batch_index`), and no two runs share a batch and index; an item
/// answered by an existing run (its idempotency key matched) is recorded on its own.
#[async_trait]
pub trait BatchTable {
    /// Adds a batch; an idempotency key its environment has given another batch is a
    /// [`Error::Duplicate`].
    async fn batch_insert(&mut self, row: &BatchRow) -> Result<(), Error>;
    /// A batch.
    async fn batch_get(&mut self, id: &BatchId) -> Result<Option<BatchRow>, Error>;
    /// A batch, locked until the transaction ends, so items added to it are counted by one
    /// transaction at a time.
    async fn batch_lock(&mut self, id: &BatchId) -> Result<Option<BatchRow>, Error>;
    /// The environment's batch holding the idempotency key, if any.
    async fn batch_by_idempotency_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<BatchRow>, Error>;
    /// Writes a batch's count of items received, status, last change and seal time.
    async fn batch_update(&mut self, row: &BatchRow) -> Result<(), Error>;
    /// Records that the item `index` of a batch is answered by the existing run `run_id`; an
    /// index recorded already is a [`Error::Duplicate`].
    async fn batch_item_insert(&mut self, batch_id: &BatchId, index: u32, run_id: &RunId) -> Result<(), Error>;
    /// The indexes of a batch's items that have arrived, in any order.
    async fn batch_indexes(&mut self, batch_id: &BatchId) -> Result<Vec<u32>, Error>;
    /// A batch's items that have arrived, by index.
    async fn batch_items(&mut self, batch_id: &BatchId) -> Result<Vec<BatchItemRow>, Error>;
}

/// Waitpoints, the edges blocking runs on them (`run_waitpoints`), runs' journals, and the
/// instance's named secrets.
///
/// On a store with several writers, callers make blocking and completing safe against each other
/// by locking: a run is blocked only after [`WaitpointTable::waitpoint_lock_many`] locked its
/// waitpoints, and a completion re-counts a run's pending waitpoints only after locking the run
/// ([`RunTable::run_lock`]).
#[async_trait]
pub trait WaitpointTable {
    /// Adds a waitpoint; an id or an idempotency key the environment has already is a
    /// [`Error::Duplicate`], and adds nothing.
    async fn waitpoint_insert(&mut self, row: &WaitpointRow) -> Result<(), Error>;
    /// A waitpoint.
    async fn waitpoint_get(&mut self, id: &WaitpointId) -> Result<Option<WaitpointRow>, Error>;
    /// The waitpoints with these ids that exist, in any order.
    async fn waitpoint_get_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error>;
    /// The waitpoints with these ids that exist, locked until the transaction ends (in id order),
    /// so that blocking a run on them and completing them exclude each other.
    async fn waitpoint_lock_many(&mut self, ids: &[WaitpointId]) -> Result<Vec<WaitpointRow>, Error>;
    /// The environment's waitpoint holding this idempotency key, if any.
    async fn waitpoint_by_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<WaitpointRow>, Error>;
    /// Gives a waitpoint's idempotency key up: it moves to `inactive_idempotency_key` and
    /// `replacement` (random) takes its place, so a new waitpoint can hold the key. Nothing else
    /// changes: `user_key` stays, and then tells whether the inactive key was its creator's.
    async fn waitpoint_retire_key(&mut self, id: &WaitpointId, replacement: &str) -> Result<(), Error>;
    /// Completes a pending waitpoint with its output; true if it was pending, false (and nothing
    /// changes) if it was completed already or does not exist.
    async fn waitpoint_complete(
        &mut self,
        id: &WaitpointId,
        output: Option<&str>,
        output_type: Option<&str>,
        is_error: bool,
        at: Timestamp,
    ) -> Result<bool, Error>;
    /// An environment's `MANUAL` waitpoints matching the filters, newest first.
    async fn waitpoint_list(&mut self, params: &WaitpointListParams) -> Result<Vec<WaitpointRow>, Error>;
    /// Pending `DATETIME` and `MANUAL` waitpoints whose `completed_after` is at or before `now`,
    /// earliest first.
    async fn waitpoint_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<WaitpointRow>, Error>;
    /// The earliest `completed_after` of the waitpoints [`WaitpointTable::waitpoint_due`] finds
    /// (pending `DATETIME` and `MANUAL` ones).
    async fn waitpoint_next_due(&mut self) -> Result<Option<Timestamp>, Error>;
    /// The pending `RUN` waitpoints completed by any of these runs.
    async fn waitpoint_pending_for_runs(&mut self, run_ids: &[RunId]) -> Result<Vec<WaitpointRow>, Error>;
    /// The pending `BATCH` waitpoints completed by any of these batches.
    async fn waitpoint_pending_for_batches(&mut self, batch_ids: &[BatchId]) -> Result<Vec<WaitpointRow>, Error>;
    /// The `RUN` waitpoint of a run, pending or not.
    async fn waitpoint_of_run(&mut self, run_id: &RunId) -> Result<Option<WaitpointRow>, Error>;
    /// Blocks a run on waitpoints: adds the edges that do not exist yet.
    async fn waitpoint_block(
        &mut self,
        run_id: &RunId,
        waitpoint_ids: &[WaitpointId],
        at: Timestamp,
    ) -> Result<(), Error>;
    /// The runs blocked on any of these waitpoints, distinct, in id order.
    async fn waitpoint_blocked_runs(&mut self, waitpoint_ids: &[WaitpointId]) -> Result<Vec<RunId>, Error>;
    /// How many of the waitpoints blocking a run are still pending.
    async fn waitpoint_pending_count(&mut self, run_id: &RunId) -> Result<u32, Error>;
    /// Removes every edge blocking a run.
    async fn waitpoint_unblock(&mut self, run_id: &RunId) -> Result<(), Error>;
    /// How many runs of a batch (runs carrying its id) have not finished.
    async fn batch_unfinished(&mut self, batch_id: &BatchId) -> Result<u32, Error>;
    /// Records a durable call of a run; a place the run's journal has already is a
    /// [`Error::Duplicate`], and records nothing.
    async fn journal_insert(&mut self, row: &JournalRow) -> Result<(), Error>;
    /// A run's journal, in call order.
    async fn journal_list(&mut self, run_id: &RunId) -> Result<Vec<JournalRow>, Error>;
    /// The instance's secret named `name`: the one stored, or `value`, stored now, when there is
    /// none. Nodes racing to store one all get the one stored first.
    async fn secret_get_or_insert(&mut self, name: &str, value: &str) -> Result<String, Error>;
}

/// Schedules of tasks, and the runs they fired (`schedule_fires`: one per schedule and nominal
/// fire time, so a time never fires twice, whichever node fires it).
#[async_trait]
pub trait ScheduleTable {
    /// Adds a schedule; a dedup key the environment has already, or a second `DECLARATIVE`
    /// schedule of one task in one environment, is a [`Error::Duplicate`] and adds nothing.
    async fn schedule_insert(&mut self, row: &ScheduleRow) -> Result<(), Error>;
    /// Writes every field of a schedule but its id, environment, kind and creation time.
    async fn schedule_update(&mut self, row: &ScheduleRow) -> Result<(), Error>;
    /// A schedule.
    async fn schedule_get(&mut self, id: &ScheduleId) -> Result<Option<ScheduleRow>, Error>;
    /// The environment's schedule with this dedup key.
    async fn schedule_by_dedup_key(&mut self, env_id: &EnvId, key: &str) -> Result<Option<ScheduleRow>, Error>;
    /// Deletes a schedule (its fired runs stay, and keep naming it); true if it existed.
    async fn schedule_delete(&mut self, id: &ScheduleId) -> Result<bool, Error>;
    /// The environment's schedules, of one task when `task_id` is given, oldest first (by id),
    /// `offset` of them skipped, at most `limit`.
    async fn schedule_list(
        &mut self,
        env_id: &EnvId,
        task_id: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<ScheduleRow>, Error>;
    /// How many schedules the environment has, of one task when `task_id` is given.
    async fn schedule_count(&mut self, env_id: &EnvId, task_id: Option<&str>) -> Result<u64, Error>;
    /// The environment's `DECLARATIVE` schedules.
    async fn schedule_declarative(&mut self, env_id: &EnvId) -> Result<Vec<ScheduleRow>, Error>;
    /// Schedules (active or not) whose `due_at` is at or before `now`, earliest first; on a
    /// store several nodes share, those another transaction is firing are left out.
    async fn schedule_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<ScheduleRow>, Error>;
    /// The earliest `due_at` of any schedule.
    async fn schedule_next_due(&mut self) -> Result<Option<Timestamp>, Error>;
    /// Moves a schedule along its chain if its `next_run` is still `from`, writing `next_run`,
    /// `due_at`, `last_run` and `updated_at` from `to`; false, changing nothing, when another
    /// writer moved it first.
    async fn schedule_advance(&mut self, from: Timestamp, to: &ScheduleRow) -> Result<bool, Error>;
    /// The run the schedule fired at its nominal time `at`, if it did.
    async fn schedule_fire_at(&mut self, id: &ScheduleId, at: Timestamp) -> Result<Option<ScheduleFireRow>, Error>;
    /// Forgets that the schedule fired at `at` (its run was withdrawn before its time), so the
    /// time can fire again; true if it had.
    async fn schedule_fire_delete(&mut self, id: &ScheduleId, at: Timestamp) -> Result<bool, Error>;
    /// Records the run a schedule fired at a nominal time; a time recorded already for the
    /// schedule is a [`Error::Duplicate`] and records nothing.
    async fn schedule_fire_insert(&mut self, row: &ScheduleFireRow) -> Result<(), Error>;
    /// The schedule fire that made a run, if a schedule made it.
    async fn schedule_fire_of_run(&mut self, run_id: &RunId) -> Result<Option<ScheduleFireRow>, Error>;
}
