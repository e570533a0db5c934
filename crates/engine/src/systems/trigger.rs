//! Creating runs: trigger and replay.

use std::collections::HashMap;
use std::time::Duration;

use stint_store::{
    EnvironmentRow, NewRun, QueueRow, RateLimit, RequestKeyRow, RunRow, SnapshotRow, TaskRow, Tx, WorkerRow,
};
use stint_types::{EnvironmentType, ExecutionStatus, RunId, RunStatus, Timestamp, names};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::state::Changes;
use crate::systems::dequeue::plan_start;
use crate::systems::{limits, versions};

/// A validated trigger request.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerParams {
    /// The task to run.
    pub task_id: String,
    /// The payload as stored text.
    pub payload: String,
    /// The payload's content type.
    pub payload_type: String,
    /// The queue to run in, instead of the task's.
    pub queue: Option<String>,
    /// The concurrency key.
    pub concurrency_key: Option<String>,
    /// Attempt limit, overriding the task's retry settings.
    pub max_attempts: Option<u32>,
    /// Normalised tags.
    pub tags: Vec<String>,
    /// Metadata as JSON text.
    pub metadata: Option<String>,
    /// Priority in ms.
    pub priority_ms: i64,
    /// Marks a test run.
    pub is_test: bool,
    /// Machine preset asked for.
    pub machine: Option<String>,
    /// Seconds an attempt may run, overriding the task's.
    pub max_duration: Option<u32>,
    /// The run this one replays.
    pub replayed_from: Option<RunId>,
    /// An idempotency key: a trigger with a key a live run holds returns that run.
    pub idempotency: Option<Idempotency>,
    /// When the run is queued, if not at once.
    pub delay: Option<Delay>,
    /// Seconds the run may wait for its first attempt once queued; `Some(0)` turns off the
    /// development environment's default.
    pub ttl_secs: Option<u32>,
    /// Debounce settings: triggers with one key while its run is delayed push it back instead of
    /// making runs.
    pub debounce: Option<Debounce>,
    /// The client's key for this request: the same request sent again within a day answers
    /// what the first one did.
    pub request_key: Option<String>,
    /// The version of the environment's workers the run is locked to (`lockToVersion`): only
    /// workers of that version take it. Unlocked, it locks to the version that first starts it.
    pub lock_to_version: Option<String>,
    /// The run that triggered this one from inside a task; it must be a run of the environment.
    pub parent_run_id: Option<RunId>,
}

/// When a delayed run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// This long after the trigger.
    For(Duration),
    /// At this time; a time already past means no delay.
    Until(Timestamp),
}

/// A debounced trigger's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    /// The key: per environment and task, one delayed run at a time holds it.
    pub key: String,
    /// How long after the latest trigger the run is queued.
    pub delay: Duration,
    /// Whether later triggers replace the run's input.
    pub mode: DebounceMode,
    /// The latest the run may be queued, counted from its creation; a trigger that would push it
    /// past this makes a new run instead.
    pub max_delay: Option<Duration>,
}

/// Which trigger's input a debounced run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebounceMode {
    /// The first trigger's.
    Leading,
    /// The latest trigger's: payload, metadata, tags, attempts, maximum duration and machine.
    Trailing,
}

/// How long a request key's answer is kept (Trigger.dev's 24 hours).
pub const REQUEST_KEY_TTL: Duration = Duration::from_secs(86_400);
/// The TTL of runs of development environments whose trigger and task set none (Trigger.dev's).
pub const DEV_DEFAULT_TTL_SECS: u32 = 600;
/// A debounced run's new due time is rounded up to this, as Trigger.dev does.
const DEBOUNCE_QUANTUM_MS: i64 = 1_000;

/// An idempotency key and how long it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key, unique per environment and task.
    pub key: String,
    /// How long after the trigger the key applies.
    pub ttl: std::time::Duration,
}

/// What a trigger made.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    /// The run.
    pub run: RunRow,
    /// True when the run existed already (its idempotency key matched) and nothing was made.
    pub cached: bool,
}

impl TriggerParams {
    /// Parameters with defaults for everything but the task and payload.
    pub fn new(task_id: impl Into<String>, payload: impl Into<String>) -> TriggerParams {
        TriggerParams {
            task_id: task_id.into(),
            payload: payload.into(),
            payload_type: "application/json".into(),
            queue: None,
            concurrency_key: None,
            max_attempts: None,
            tags: Vec::new(),
            metadata: None,
            priority_ms: 0,
            is_test: false,
            machine: None,
            max_duration: None,
            replayed_from: None,
            idempotency: None,
            delay: None,
            ttl_secs: None,
            debounce: None,
            request_key: None,
            lock_to_version: None,
            parent_run_id: None,
        }
    }
}

/// A worker waiting for a run of a task, asked for by task identifier; see `handoff`.
pub(crate) type Idle<'a> = &'a mut (dyn FnMut(&str) -> Option<(u64, WorkerRow)> + Send);

/// Creates a run, or answers with one that exists: the run a request with the same request key
/// made, the live run holding the idempotency key (as Trigger.dev does: a key whose run failed or
/// expired, or whose time has passed, is taken off that run and a new run made), or the delayed
/// run holding the debounce key, pushed back. A run with a delay waits as `DELAYED` until
/// [`crate::systems::timing`] queues it. When a worker of its task is waiting, its queue has a
/// free slot and nothing in the queue is ready ahead of it, a run's attempt starts for that worker
/// in this transaction and the run is handed to it after the commit; otherwise the run goes into
/// its queue. A run locked to a version (`lock_to_version`, which must name a version of the
/// environment) always goes into its queue, where only workers of that version take it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn trigger(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    config: &Config,
    env: &EnvironmentRow,
    params: TriggerParams,
    idle: Idle<'_>,
    changes: &mut Changes,
) -> Result<Triggered, Error> {
    let Some(request_key) = params.request_key.clone() else {
        return create(tx, ids, now, config, env, params, idle, changes).await;
    };
    if let Some(answer) = tx.request_key_get(&env.id, &request_key).await?
        && answer.expires_at > now
        && let Some(run) = tx.run_get(&answer.run_id).await?
    {
        return Ok(Triggered { run, cached: answer.cached });
    }
    let triggered = create(tx, ids, now, config, env, params, idle, changes).await?;
    let answer = RequestKeyRow {
        env_id: env.id.clone(),
        key: request_key,
        run_id: triggered.run.id.clone(),
        cached: triggered.cached,
        expires_at: now.plus(REQUEST_KEY_TTL),
    };
    tx.request_key_put(&answer, now).await?;
    Ok(triggered)
}

#[allow(clippy::too_many_arguments)]
async fn create(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    config: &Config,
    env: &EnvironmentRow,
    params: TriggerParams,
    idle: Idle<'_>,
    changes: &mut Changes,
) -> Result<Triggered, Error> {
    let lineage = lineage_of(tx, env, &params).await?;
    if let Some(idempotency) = &params.idempotency
        && let Some(run) = reusable(tx, env, &params.task_id, &idempotency.key, now).await?
    {
        return Ok(Triggered { run, cached: true });
    }
    let debounce = params.debounce.clone();
    if let Some(debounce) = &debounce
        && let Some(run) = debounced(tx, ids, now, env, debounce, Input::of_params(&params), changes).await?
    {
        return Ok(Triggered { run, cached: true });
    }
    let task = tx.task_get(&env.id, &params.task_id).await?;
    let mut queue = queue_for(tx, ids, now, env, &queue_name(&params, task.as_ref()), None).await?;
    // Handing the run to a waiting worker takes a slot: a limited queue that seems to have one is
    // read again under its lock, so the limit holds across nodes.
    let keyed = params.concurrency_key.as_deref().is_some_and(|key| !key.is_empty());
    if handoff_room(&queue, keyed) > 0 && limits::is_limited(&queue, None) {
        queue = tx.queue_lock(&queue.id).await?.unwrap_or(queue);
    }
    let taker = if due_time(&params, now).is_none()
        && params.lock_to_version.is_none()
        && handoff_room(&queue, keyed) > 0
        && !tx.queue_ready(&queue.id, now.millis()).await?
        && tx.env_limits(&env.id).await?.is_none_or(|env| env.concurrency_limit.is_none() && !env.paused)
    {
        idle(&params.task_id)
    } else {
        None
    };
    let NewRun { run, snapshot } = new_run(ids, now, env, params, task.as_ref(), &queue, lineage, taker.is_none());
    match tx.run_insert(&run, &snapshot).await {
        Ok(()) => {}
        // Another node made a run with this idempotency or debounce key at the same moment: that
        // run is the answer.
        Err(stint_store::Error::Duplicate(conflict)) => {
            if let Some(key) = &run.idempotency_key
                && let Some(existing) = tx.run_by_idempotency_key(&env.id, &run.task_id, key).await?
            {
                return Ok(Triggered { run: existing, cached: true });
            }
            if let Some(debounce) = &debounce
                && let Some(existing) = debounced(tx, ids, now, env, debounce, Input::of_run(&run), changes).await?
            {
                return Ok(Triggered { run: existing, cached: true });
            }
            return Err(stint_store::Error::Duplicate(conflict).into());
        }
        Err(error) => return Err(error.into()),
    }
    if let Some((ticket, worker)) = taker {
        let start = plan_start(ids, now, config, &worker, run, task.as_ref());
        changes.apply(tx, &start.from, &start.next, &start.description).await?;
        changes.handoffs.push((ticket, start.next.clone()));
        return Ok(Triggered { run: start.next, cached: false });
    }
    if run.delay_until.is_none() {
        changes.wake.insert(env.id.clone());
    }
    Ok(Triggered { run, cached: false })
}

/// When a run of `params` is due to be queued, if it is delayed: a debounce's delay from now,
/// else the `delay` option's time when it is still to come.
fn due_time(params: &TriggerParams, now: Timestamp) -> Option<Timestamp> {
    match (&params.debounce, params.delay) {
        (Some(debounce), _) => Some(now.plus(debounce.delay)),
        (None, Some(Delay::For(delay))) => (!delay.is_zero()).then(|| now.plus(delay)),
        (None, Some(Delay::Until(at))) => (at > now).then_some(at),
        (None, None) => None,
    }
}

/// A new run of `params` in `queue` with its first snapshot: delayed when it has a delay, else
/// waiting in the queue when `queued`, else to be started at once by the caller. Its TTL is the
/// trigger's, else its task's, else (in a development environment) [`DEV_DEFAULT_TTL_SECS`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_run(
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    params: TriggerParams,
    task: Option<&TaskRow>,
    queue: &QueueRow,
    lineage: Lineage,
    queued: bool,
) -> NewRun {
    let delay_until = due_time(&params, now);
    let ttl_secs = match params.ttl_secs {
        Some(0) => None,
        Some(secs) => Some(secs),
        None => task
            .and_then(|t| t.ttl_secs)
            .or_else(|| (env.kind == EnvironmentType::Development).then_some(DEV_DEFAULT_TTL_SECS)),
    };
    let id = ids.run(now);
    let (status, execution_status) = match delay_until {
        Some(_) => (RunStatus::Delayed, ExecutionStatus::Delayed),
        None => (RunStatus::Queued, ExecutionStatus::Queued),
    };
    let run = RunRow {
        id: id.clone(),
        env_id: env.id.clone(),
        task_id: params.task_id,
        queue_id: queue.id.clone(),
        queue_name: queue.name.clone(),
        status,
        snapshot_id: ids.snapshot(now),
        execution_status,
        attempt_number: 0,
        max_attempts: params.max_attempts,
        retry: None,
        max_duration: params.max_duration,
        payload: params.payload,
        payload_type: params.payload_type,
        output: None,
        output_type: None,
        error: None,
        tags: params.tags,
        metadata: params.metadata,
        concurrency_key: params.concurrency_key.filter(|key| !key.is_empty()),
        priority_ms: params.priority_ms,
        queue_score: (queued && delay_until.is_none()).then(|| now.millis() - params.priority_ms),
        is_test: params.is_test,
        machine: params.machine,
        worker_id: None,
        version: params.lock_to_version,
        heartbeat_deadline: None,
        attempt_started_at: None,
        duration_ms: 0,
        replayed_from: params.replayed_from,
        idempotency_key: params.idempotency.as_ref().map(|i| i.key.clone()),
        idempotency_key_expires_at: params.idempotency.as_ref().map(|i| now.plus(i.ttl)),
        delay_until,
        ttl_secs,
        ttl_expires_at: ttl_secs
            .filter(|_| delay_until.is_none())
            .map(|secs| now.plus(Duration::from_secs(secs.into()))),
        debounce_key: params.debounce.map(|d| d.key),
        parent_run_id: lineage.parent,
        root_run_id: lineage.root,
        depth: lineage.depth,
        batch_id: None,
        batch_index: None,
        resuming: false,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    let snapshot = SnapshotRow {
        id: run.snapshot_id.clone(),
        run_id: id,
        status: execution_status,
        run_status: status,
        attempt_number: 0,
        description: match delay_until {
            Some(at) => format!("Run was delayed until {}", at.to_rfc3339()),
            None => "Run was queued".into(),
        },
        worker_id: None,
        created_at: now,
    };
    NewRun { run, snapshot }
}

/// The queue a run of `params` goes into: the one it names, else its task's, else the task's
/// default queue.
pub(crate) fn queue_name(params: &TriggerParams, task: Option<&TaskRow>) -> String {
    match (&params.queue, task) {
        (Some(name), _) => name.clone(),
        (None, Some(task)) => task.queue_name.clone(),
        (None, None) => names::default_queue_name(&params.task_id),
    }
}

/// Checks what a trigger names beyond itself, the version it locks to (which must be a version of
/// the environment) and its parent run, and returns where the new run sits among its parents.
pub(crate) async fn lineage_of(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    params: &TriggerParams,
) -> Result<Lineage, Error> {
    if let Some(version) = &params.lock_to_version {
        versions::check_lock(tx, &env.id, version).await?;
    }
    match &params.parent_run_id {
        None => Ok(Lineage::default()),
        Some(parent) => lineage(tx, env, parent).await,
    }
}

/// What a trailing debounce copies from the latest trigger onto the run.
pub(crate) struct Input<'a> {
    task_id: &'a str,
    payload: &'a str,
    payload_type: &'a str,
    metadata: Option<&'a str>,
    tags: &'a [String],
    max_attempts: Option<u32>,
    max_duration: Option<u32>,
    machine: Option<&'a str>,
}

impl Input<'_> {
    pub(crate) fn of_params(params: &TriggerParams) -> Input<'_> {
        Input {
            task_id: &params.task_id,
            payload: &params.payload,
            payload_type: &params.payload_type,
            metadata: params.metadata.as_deref(),
            tags: &params.tags,
            max_attempts: params.max_attempts,
            max_duration: params.max_duration,
            machine: params.machine.as_deref(),
        }
    }

    fn of_run(run: &RunRow) -> Input<'_> {
        Input {
            task_id: &run.task_id,
            payload: &run.payload,
            payload_type: &run.payload_type,
            metadata: run.metadata.as_deref(),
            tags: &run.tags,
            max_attempts: run.max_attempts,
            max_duration: run.max_duration,
            machine: run.machine.as_deref(),
        }
    }
}

/// The delayed run holding the trigger's debounce key, pushed back to `delay` from now (rounded
/// up to a whole second) and, in trailing mode, given this trigger's input; `None` when no run
/// holds the key, or when pushing it would pass its `max_delay`: that run is then left to be
/// queued when due and gives the key up, and the trigger makes a new run.
pub(crate) async fn debounced(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    debounce: &Debounce,
    input: Input<'_>,
    changes: &mut Changes,
) -> Result<Option<RunRow>, Error> {
    let Some(existing) = tx.run_by_debounce_key(&env.id, input.task_id, &debounce.key).await? else {
        return Ok(None);
    };
    let due = now.plus(debounce.delay).millis();
    let due = Timestamp((due + DEBOUNCE_QUANTUM_MS - 1).div_euclid(DEBOUNCE_QUANTUM_MS) * DEBOUNCE_QUANTUM_MS);
    let past_max = debounce.max_delay.is_some_and(|max| due > existing.created_at.plus(max));
    if existing.execution_status != ExecutionStatus::Delayed || past_max {
        tx.run_forget_debounce_key(&existing.id).await?;
        return Ok(None);
    }
    let mut next = Changes::next(&existing, ids, now, ExecutionStatus::Delayed, RunStatus::Delayed);
    next.delay_until = Some(due);
    next.debounce_key = existing.debounce_key.clone();
    let trailing = debounce.mode == DebounceMode::Trailing;
    if trailing {
        next.payload = input.payload.to_string();
        next.payload_type = input.payload_type.to_string();
        next.metadata = input.metadata.map(str::to_string);
        next.tags = input.tags.to_vec();
        next.max_attempts = input.max_attempts;
        next.max_duration = input.max_duration;
        next.machine = input.machine.map(str::to_string);
    }
    let description = format!("Run was debounced until {}", due.to_rfc3339());
    changes.apply(tx, &existing, &next, &description).await?;
    if trailing {
        tx.run_set_input(&next).await?;
        tx.run_set_metadata(&next.id, next.metadata.as_deref(), now).await?;
    }
    Ok(Some(next))
}

/// Slots a new run could take in its queue straight away. A run with a concurrency key in a
/// limited queue, any run of a rate-limited queue, and any run of a limited or paused environment,
/// waits for a dequeue instead, which reads those counts (and the rate's state) under their locks
/// in the one lock order (environment, then queues).
fn handoff_room(queue: &QueueRow, keyed: bool) -> u32 {
    if queue.rate().is_some() {
        return 0;
    }
    let room = limits::queue_room(queue);
    match (keyed, queue.limit()) {
        (_, None) => room,
        (false, limit) => room.min(limits::unkeyed_room(queue, limit)),
        (true, Some(_)) => 0,
    }
}

/// The run holding an idempotency key, if the key still applies to it. A key that has passed
/// its time, or whose run failed or expired, is taken off that run.
pub(crate) async fn reusable(
    tx: &mut dyn Tx,
    env: &EnvironmentRow,
    task_id: &str,
    key: &str,
    now: Timestamp,
) -> Result<Option<RunRow>, Error> {
    let Some(existing) = tx.run_by_idempotency_key(&env.id, task_id, key).await? else { return Ok(None) };
    let lapsed = existing.idempotency_key_expires_at.is_some_and(|at| at <= now);
    let failed = matches!(
        existing.status,
        RunStatus::Failed | RunStatus::Crashed | RunStatus::SystemFailure | RunStatus::TimedOut | RunStatus::Expired
    );
    if lapsed || failed {
        tx.run_forget_idempotency_key(&existing.id).await?;
        return Ok(None);
    }
    Ok(Some(existing))
}

/// The parameters that replay `original`: the same task, payload, tags, metadata, queue,
/// concurrency key and machine, locked to `current`, the environment's current version (a replay
/// runs the code deployed now, not the original's version); unlocked when there is none.
pub(crate) fn replay_params(original: &RunRow, current: Option<String>) -> TriggerParams {
    TriggerParams {
        task_id: original.task_id.clone(),
        payload: original.payload.clone(),
        payload_type: original.payload_type.clone(),
        queue: Some(original.queue_name.clone()),
        concurrency_key: original.concurrency_key.clone(),
        max_attempts: original.max_attempts,
        tags: original.tags.clone(),
        metadata: original.metadata.clone(),
        priority_ms: original.priority_ms,
        is_test: original.is_test,
        machine: original.machine.clone(),
        max_duration: None,
        replayed_from: Some(original.id.clone()),
        idempotency: None,
        delay: None,
        ttl_secs: original.ttl_secs.or(Some(0)),
        debounce: None,
        request_key: None,
        lock_to_version: current,
        parent_run_id: None,
    }
}

/// The tasks and queues of one environment's new runs, each looked up (or made) once: for
/// requests and passes that make many runs.
#[derive(Default)]
pub(crate) struct Places {
    tasks: HashMap<String, Option<TaskRow>>,
    queues: HashMap<String, QueueRow>,
}

impl Places {
    /// The task, if the environment has it.
    pub(crate) async fn task(
        &mut self,
        tx: &mut dyn Tx,
        env: &EnvironmentRow,
        task_id: &str,
    ) -> Result<Option<&TaskRow>, Error> {
        if !self.tasks.contains_key(task_id) {
            let task = tx.task_get(&env.id, task_id).await?;
            self.tasks.insert(task_id.to_string(), task);
        }
        Ok(self.tasks[task_id].as_ref())
    }

    /// The task of `params` and the queue its run goes into.
    pub(crate) async fn queue(
        &mut self,
        tx: &mut dyn Tx,
        ids: &Ids,
        now: Timestamp,
        env: &EnvironmentRow,
        params: &TriggerParams,
    ) -> Result<(Option<&TaskRow>, &QueueRow), Error> {
        self.task(tx, env, &params.task_id).await?;
        let name = queue_name(params, self.tasks[&params.task_id].as_ref());
        if !self.queues.contains_key(&name) {
            let queue = queue_for(tx, ids, now, env, &name, None).await?;
            self.queues.insert(name.clone(), queue);
        }
        Ok((self.tasks[&params.task_id].as_ref(), &self.queues[&name]))
    }
}

/// Where a new run sits among the runs that triggered it.
#[derive(Debug, Default)]
pub(crate) struct Lineage {
    parent: Option<RunId>,
    root: Option<RunId>,
    depth: u32,
}

/// The lineage of a run triggered by `parent`, which must be a run of `env`: its root is the
/// parent's root, or the parent when that has none.
async fn lineage(tx: &mut dyn Tx, env: &EnvironmentRow, parent: &RunId) -> Result<Lineage, Error> {
    match tx.run_get(parent).await? {
        Some(run) if run.env_id == env.id => Ok(Lineage {
            root: Some(run.root_run_id.unwrap_or_else(|| run.id.clone())),
            parent: Some(run.id),
            depth: run.depth.saturating_add(1),
        }),
        _ => Err(Error::Invalid(format!("parentRunId: run {parent} not found in this environment"))),
    }
}

/// A queue's limits as its tasks declare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Declared {
    /// Most runs of each concurrency key (and of the runs without one) executing at once.
    pub(crate) limit: Option<u32>,
    /// Most runs of all keys together executing at once.
    pub(crate) combined: Option<u32>,
    /// Most runs starting per period.
    pub(crate) rate: Option<RateLimit>,
}

/// The environment's queue with this name, created when missing. Declared limits replace the
/// stored ones; `None` leaves them as they are.
pub(crate) async fn queue_for(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    name: &str,
    declared: Option<Declared>,
) -> Result<QueueRow, Error> {
    if let Some(mut queue) = tx.queue_by_name(&env.id, name).await? {
        if let Some(declared) = declared
            && (queue.concurrency_limit, queue.combined_limit) != (declared.limit, declared.combined)
        {
            tx.queue_set_limit(&queue.id, declared.limit, declared.combined).await?;
            queue.concurrency_limit = declared.limit;
            queue.combined_limit = declared.combined;
        }
        if let Some(declared) = declared
            && queue.rate_limit != declared.rate
        {
            tx.rate_set_declared(&queue.id, declared.rate).await?;
            queue.rate_limit = declared.rate;
        }
        return Ok(queue);
    }
    let declared = declared.unwrap_or_default();
    let queue = QueueRow {
        id: ids.queue(now),
        env_id: env.id.clone(),
        name: name.to_string(),
        concurrency_limit: declared.limit,
        limit_override: None,
        combined_limit: declared.combined,
        paused: false,
        running: 0,
        keyed_running: 0,
        created_at: now,
        rate_limit: declared.rate,
        rate_override: None,
    };
    match tx.queue_insert(&queue).await {
        Ok(()) => Ok(queue),
        // Another node created it at the same moment: use theirs.
        Err(stint_store::Error::Duplicate(_)) => tx
            .queue_by_name(&env.id, name)
            .await?
            .ok_or_else(|| Error::Store(stint_store::Error::NotFound(format!("queue {name}")))),
        Err(error) => Err(error.into()),
    }
}
