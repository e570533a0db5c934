//! Taking runs from the queues and starting their attempts.

use std::collections::HashMap;

use stint_store::{Lane, QueueRow, RunRow, TaskRow, Tx, WorkerRow};
use stint_types::{ExecutionStatus, QueueId, RetryOptions, RunStatus, Timestamp};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::shell::Ctx;
use crate::state::{Changes, Plan};
use crate::systems::lanes::{self, LaneKey, Rotation};
use crate::systems::limits::{self, LaneRoom};
use crate::systems::rates::QueueRate;
use crate::systems::timing;

/// What a dequeue took.
#[derive(Debug, Clone, PartialEq)]
pub struct Dequeued {
    /// The runs taken, each with an attempt started and held by the worker.
    pub runs: Vec<RunRow>,
    /// The earliest time a run that is waiting for its retry delay becomes ready, or a lane a rate
    /// limit holds back may start a run again, if any.
    pub next_ready_at: Option<Timestamp>,
    /// The lane each queue whose lanes took turns served last, to start after next time.
    pub(crate) turns: Vec<(QueueId, LaneKey)>,
}

/// Takes up to `max_runs` ready runs of the worker's tasks and starts an attempt of each.
///
/// A paused environment starts nothing, and a limited one no more than its limit times its burst
/// factor. Queues are served oldest head first. A paused queue, or one whose lanes are all at
/// their limit, is skipped; it is woken again when one of its runs gives its slot back. A queue
/// holding runs with concurrency keys serves its keys in turn, from the one after the lane
/// `rotation` says it served last, each key up to the queue's limit. A rate-limited queue (or
/// key) starts no more than its rate allows; the rest stay queued (see `systems/rates.rs`).
pub(crate) async fn dequeue(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    rotation: &Rotation,
    worker: &WorkerRow,
    max_runs: u32,
    changes: &mut Changes,
) -> Result<Dequeued, Error> {
    let ready = look(tx, ctx, worker).await?;
    take(tx, ctx, rotation, worker, ready, max_runs, changes).await
}

/// What an environment has ready for a worker: its room, and its queues holding ready runs of
/// the worker's tasks, oldest head first.
pub(crate) struct Ready {
    env: Option<limits::EnvRoom>,
    queues: Vec<(i64, QueueRow)>,
    next_ready_at: Option<Timestamp>,
}

impl Ready {
    /// Whether a take could start anything.
    pub(crate) fn has_work(&self) -> bool {
        self.env.is_some_and(|env| env.free > 0) && !self.queues.is_empty()
    }

    /// The earliest time a run that is not ready yet becomes ready.
    pub(crate) fn next_ready_at(&self) -> Option<Timestamp> {
        self.next_ready_at
    }
}

/// Looks at the worker's environment (`worker.env_id`): its room, read under its lock when it is
/// limited — environments are locked before their queues, the one lock order — and its queues
/// with ready runs of the worker's tasks.
pub(crate) async fn look(tx: &mut dyn Tx, ctx: &Ctx, worker: &WorkerRow) -> Result<Ready, Error> {
    let now = ctx.now;
    let mut ready = Ready { env: None, queues: Vec::new(), next_ready_at: None };
    let Some(env) = limits::env_room(tx, &worker.env_id).await? else { return Ok(ready) };
    ready.env = Some(env);
    if env.free == 0 {
        return Ok(ready);
    }
    let version = worker.version_in(&worker.env_id);
    for head in tx.queue_heads(&worker.env_id, &worker.task_ids, version).await? {
        if limits::queue_room(&head.queue) == 0 {
            continue;
        }
        if head.head_score > now.millis() {
            let at = Timestamp(head.head_score);
            ready.next_ready_at = Some(ready.next_ready_at.map_or(at, |t| t.min(at)));
            continue;
        }
        ready.queues.push((head.head_score, head.queue));
    }
    ready.queues.sort_by(|(a, qa), (b, qb)| (a, &qa.id).cmp(&(b, &qb.id)));
    Ok(ready)
}

/// Takes up to `max_runs` runs from what [`look`] found ready and starts their attempts.
pub(crate) async fn take(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    rotation: &Rotation,
    worker: &WorkerRow,
    ready: Ready,
    max_runs: u32,
    changes: &mut Changes,
) -> Result<Dequeued, Error> {
    let (ids, now, config) = (&ctx.ids, ctx.now, &ctx.config);
    let mut taken = Dequeued { runs: Vec::new(), next_ready_at: ready.next_ready_at, turns: Vec::new() };
    let Some(env) = ready.env else { return Ok(taken) };
    let ready = ready.queues;
    // Runs locked to another version are passed over by every read below.
    let version = worker.version_in(&worker.env_id);

    // Limited queues are read again under their locks: another node may have taken slots since
    // the heads were read, and limits must hold across nodes. The locks are taken in queue id
    // order, so dequeues on several nodes never wait on each other in a cycle.
    let mut limited: Vec<QueueId> = ready
        .iter()
        .filter(|(_, queue)| limits::is_limited(queue, env.base))
        .map(|(_, queue)| queue.id.clone())
        .collect();
    limited.sort();
    let mut locked = HashMap::with_capacity(limited.len());
    for id in limited {
        if let Some(queue) = tx.queue_lock(&id).await? {
            locked.insert(id, queue);
        }
    }

    let mut tasks: HashMap<String, Option<TaskRow>> = HashMap::new();
    let mut starts = Vec::new();
    let mut expired = Vec::new();
    let mut remaining = max_runs.min(env.free);
    for (_, queue) in ready {
        if remaining == 0 {
            break;
        }
        let queue = locked.remove(&queue.id).unwrap_or(queue);
        let mut room = limits::queue_room(&queue).min(remaining);
        if room == 0 {
            continue;
        }
        // The rate limit in force, its state read under the queue's lock: a rate for the whole
        // queue caps the queue's room, a rate per key each lane's.
        let mut rate = QueueRate::of(&queue, now);
        if let Some(rate) = rate.as_mut().filter(|rate| !rate.per_key()) {
            rate.load(tx, &[None]).await?;
            room = room.min(rate.allowed(&None));
        }
        let keyed_rate = rate.as_mut().filter(|rate| rate.per_key());
        let lane_limit = limits::lane_limit(&queue, env.base);
        let queued = if room == 0 {
            Vec::new()
        } else if lanes::has_lanes(tx, &queue.id, version, now.millis()).await? {
            let lanes_room = LaneRoom::read(tx, &queue, lane_limit).await?;
            let last = rotation.last(&queue.id);
            let take = lanes::take(
                tx,
                &queue.id,
                last,
                &lanes_room,
                keyed_rate,
                &worker.task_ids,
                version,
                now.millis(),
                room,
            )
            .await?;
            taken.turns.extend(take.1.map(|lane| (queue.id.clone(), lane)));
            take.0
        } else {
            let mut want = room.min(limits::unkeyed_room(&queue, lane_limit));
            if let Some(rate) = keyed_rate {
                rate.load(tx, &[None]).await?;
                want = want.min(rate.allowed(&None));
            }
            if want == 0 {
                Vec::new()
            } else {
                tx.queue_take(&queue.id, Lane::All, &worker.task_ids, version, now.millis(), want).await?
            }
        };
        if let Some(mut rate) = rate {
            for run in &queued {
                rate.record(&run.concurrency_key);
            }
            // A run held back by the rate stays queued; a waiting dequeue looks again when its lane
            // may start one.
            if let Some(at) = rate.next_allowed() {
                taken.next_ready_at = Some(taken.next_ready_at.map_or(at, |t| t.min(at)));
            }
            rate.save(tx).await?;
        }
        remaining -= u32::try_from(queued.len()).unwrap_or(remaining);
        for run in queued {
            // A run whose TTL passed since the last expiry pass ends instead of starting.
            if timing::is_expired(&run, now) {
                expired.push(timing::plan_expired(ids, now, run));
                continue;
            }
            let task = match tasks.get(&run.task_id) {
                Some(task) => task.clone(),
                None => {
                    let task = tx.task_get(&run.env_id, &run.task_id).await?;
                    tasks.insert(run.task_id.clone(), task.clone());
                    task
                }
            };
            starts.push(plan_start(ids, now, config, worker, run, task.as_ref()));
        }
    }
    // The runs taken are locked by this transaction, so every start is made.
    let moves: Vec<&Plan<()>> = starts.iter().chain(&expired).collect();
    for result in changes.apply_many(tx, &moves).await? {
        result?;
    }
    taken.runs = starts.into_iter().map(|plan| plan.next).collect();
    Ok(taken)
}

/// The start of a queued run's next attempt on `worker`. The first start freezes the run's retry
/// settings and maximum duration from its task, as Trigger.dev locks them at first dequeue, and
/// locks the run to the worker's version unless it is locked already; a run locked to a version
/// is only ever taken by workers of that version.
pub(crate) fn plan_start(
    ids: &Ids,
    now: Timestamp,
    config: &Config,
    worker: &WorkerRow,
    run: RunRow,
    task: Option<&TaskRow>,
) -> Plan<()> {
    let mut next = Changes::next(&run, ids, now, ExecutionStatus::Executing, RunStatus::Executing);
    if next.retry.is_none() {
        let mut retry = task.map(|t| t.retry).unwrap_or_default();
        if let Some(max_attempts) = run.max_attempts {
            retry.max_attempts = max_attempts;
        }
        next.retry = Some(retry);
        next.max_duration = run.max_duration.or(task.and_then(|t| t.max_duration));
    }
    // A run queued to resume a suspended attempt goes on with that attempt.
    let resumed = run.resuming;
    next.attempt_number = if resumed { run.attempt_number } else { run.attempt_number + 1 };
    next.worker_id = Some(worker.id.clone());
    if next.version.is_none() {
        next.version = worker.version_in(&run.env_id).map(str::to_string);
    }
    next.heartbeat_deadline = Some(now.plus(config.timeouts.executing));
    next.attempt_started_at = Some(now);
    next.started_at = run.started_at.or(Some(now));
    let description = if resumed {
        format!("Attempt {} resumed", next.attempt_number)
    } else {
        format!("Attempt {} started", next.attempt_number)
    };
    Plan::new(run, next, description, ())
}

/// The retry settings of a run whose first attempt has started.
pub(crate) fn retry_of(run: &RunRow) -> RetryOptions {
    run.retry.unwrap_or_default()
}
