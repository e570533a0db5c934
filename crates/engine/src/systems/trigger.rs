//! Creating runs: trigger and replay.

use stint_store::{EnvironmentRow, NewRun, QueueRow, RateLimit, RunRow, SnapshotRow, TaskRow, Tx, WorkerRow};
use stint_types::{ExecutionStatus, RunId, RunStatus, Timestamp, names};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::state::Changes;
use crate::systems::dequeue::plan_start;
use crate::systems::limits;

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
}

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
        }
    }
}

/// A worker waiting for a run of a task, asked for by task identifier; see `handoff`.
pub(crate) type Idle<'a> = &'a mut (dyn FnMut(&str) -> Option<(u64, WorkerRow)> + Send);

/// Creates a run, or returns the live run that holds its idempotency key (as Trigger.dev does: a
/// key whose run failed or expired, or whose time has passed, is taken off that run and a new
/// run made). When a worker of its task is waiting, its queue has a free slot and nothing in
/// the queue is ready ahead of it, the run's attempt starts for that worker in this transaction
/// and the run is handed to it after the commit; otherwise the run goes into its queue.
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
    if let Some(idempotency) = &params.idempotency
        && let Some(run) = reusable(tx, env, &params.task_id, &idempotency.key, now).await?
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
    let taker = if handoff_room(&queue, keyed) > 0
        && !tx.queue_ready(&queue.id, now.millis()).await?
        && tx.env_limits(&env.id).await?.is_none_or(|env| env.concurrency_limit.is_none() && !env.paused)
    {
        idle(&params.task_id)
    } else {
        None
    };
    let NewRun { run, snapshot } = new_run(ids, now, env, params, &queue, taker.is_none());
    match tx.run_insert(&run, &snapshot).await {
        Ok(()) => {}
        // Another node made a run with this key at the same moment: that run is the answer.
        Err(stint_store::Error::Duplicate(conflict)) => {
            let key = run.idempotency_key.as_deref().unwrap_or_default();
            return match tx.run_by_idempotency_key(&env.id, &run.task_id, key).await? {
                Some(existing) if run.idempotency_key.is_some() => Ok(Triggered { run: existing, cached: true }),
                _ => Err(stint_store::Error::Duplicate(conflict).into()),
            };
        }
        Err(error) => return Err(error.into()),
    }
    if let Some((ticket, worker)) = taker {
        let start = plan_start(ids, now, config, &worker, run, task.as_ref());
        changes.apply(tx, &start.from, &start.next, &start.description).await?;
        changes.handoffs.push((ticket, start.next.clone()));
        return Ok(Triggered { run: start.next, cached: false });
    }
    changes.wake.insert(env.id.clone());
    Ok(Triggered { run, cached: false })
}

/// A new run of `params` in `queue` with its first snapshot: waiting in the queue when `queued`,
/// else to be started at once by the caller.
pub(crate) fn new_run(
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    params: TriggerParams,
    queue: &QueueRow,
    queued: bool,
) -> NewRun {
    let id = ids.run(now);
    let run = RunRow {
        id: id.clone(),
        env_id: env.id.clone(),
        task_id: params.task_id,
        queue_id: queue.id.clone(),
        queue_name: queue.name.clone(),
        status: RunStatus::Queued,
        snapshot_id: ids.snapshot(now),
        execution_status: ExecutionStatus::Queued,
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
        queue_score: queued.then(|| now.millis() - params.priority_ms),
        is_test: params.is_test,
        machine: params.machine,
        worker_id: None,
        version: None,
        heartbeat_deadline: None,
        attempt_started_at: None,
        duration_ms: 0,
        replayed_from: params.replayed_from,
        idempotency_key: params.idempotency.as_ref().map(|i| i.key.clone()),
        idempotency_key_expires_at: params.idempotency.as_ref().map(|i| now.plus(i.ttl)),
        delay_until: None,
        ttl_secs: None,
        ttl_expires_at: None,
        debounce_key: None,
        parent_run_id: None,
        root_run_id: None,
        depth: 0,
        batch_id: None,
        batch_index: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    let snapshot = SnapshotRow {
        id: run.snapshot_id.clone(),
        run_id: id,
        status: ExecutionStatus::Queued,
        run_status: RunStatus::Queued,
        attempt_number: 0,
        description: "Run was queued".into(),
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
/// concurrency key and machine.
pub(crate) fn replay_params(original: &RunRow) -> TriggerParams {
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
