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

/// What a dequeue took.
#[derive(Debug, Clone, PartialEq)]
pub struct Dequeued {
    /// The runs taken, each with an attempt started and held by the worker.
    pub runs: Vec<RunRow>,
    /// The earliest time a run that is waiting for its retry delay becomes ready, if any.
    pub next_ready_at: Option<Timestamp>,
    /// The lane each queue whose lanes took turns served last, to start after next time.
    pub(crate) turns: Vec<(QueueId, LaneKey)>,
}

/// Takes up to `max_runs` ready runs of the worker's tasks and starts an attempt of each.
///
/// Queues are served oldest head first. A queue at its concurrency limit is skipped; it is woken
/// again when one of its runs gives its slot back. A queue holding runs with concurrency keys
/// serves its keys in turn, from the one after the lane `rotation` says it served last.
pub(crate) async fn dequeue(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    rotation: &Rotation,
    worker: &WorkerRow,
    max_runs: u32,
    changes: &mut Changes,
) -> Result<Dequeued, Error> {
    let (ids, now, config) = (&ctx.ids, ctx.now, &ctx.config);
    let heads = tx.queue_heads(&worker.env_id, &worker.task_ids).await?;
    let mut next_ready_at: Option<Timestamp> = None;
    let mut ready = Vec::new();
    for head in heads {
        let capacity = free_slots(&head.queue);
        if capacity == 0 {
            continue;
        }
        if head.head_score > now.millis() {
            let at = Timestamp(head.head_score);
            next_ready_at = Some(next_ready_at.map_or(at, |t| t.min(at)));
            continue;
        }
        ready.push((head.head_score, head.queue, capacity));
    }
    ready.sort_by(|(a, qa, _), (b, qb, _)| (a, &qa.id).cmp(&(b, &qb.id)));

    // Limited queues are read again under their locks: another node may have taken slots since
    // the heads were read, and limits must hold across nodes. The locks are taken in queue id
    // order, so dequeues on several nodes never wait on each other in a cycle.
    let mut limited: Vec<QueueId> =
        ready.iter().filter(|(_, queue, _)| queue.limit().is_some()).map(|(_, queue, _)| queue.id.clone()).collect();
    limited.sort();
    let mut locked_capacity = HashMap::with_capacity(limited.len());
    for id in limited {
        let capacity = tx.queue_lock(&id).await?.map_or(0, |queue| free_slots(&queue));
        locked_capacity.insert(id, capacity);
    }

    let mut tasks: HashMap<String, Option<TaskRow>> = HashMap::new();
    let mut starts = Vec::new();
    let mut turns = Vec::new();
    let mut remaining = max_runs;
    for (_, queue, capacity) in ready {
        if remaining == 0 {
            break;
        }
        let capacity = locked_capacity.get(&queue.id).copied().unwrap_or(capacity);
        if capacity == 0 {
            continue;
        }
        let want = remaining.min(capacity);
        let queued = if lanes::has_lanes(tx, &queue.id, now.millis()).await? {
            let last = rotation.last(&queue.id);
            let (queued, served) = lanes::take(tx, &queue.id, last, &worker.task_ids, now.millis(), want).await?;
            turns.extend(served.map(|lane| (queue.id.clone(), lane)));
            queued
        } else {
            tx.queue_take(&queue.id, Lane::All, &worker.task_ids, now.millis(), want).await?
        };
        remaining -= u32::try_from(queued.len()).unwrap_or(remaining);
        for run in queued {
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
    let moves: Vec<&Plan<()>> = starts.iter().collect();
    for result in changes.apply_many(tx, &moves).await? {
        result?;
    }
    let runs = starts.into_iter().map(|plan| plan.next).collect();
    Ok(Dequeued { runs, next_ready_at, turns })
}

/// The start of a queued run's next attempt on `worker`. The first start freezes the run's retry
/// settings and maximum duration from its task, as Trigger.dev locks them at first dequeue.
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
    next.attempt_number = run.attempt_number + 1;
    next.worker_id = Some(worker.id.clone());
    next.version = Some(worker.version.clone());
    next.heartbeat_deadline = Some(now.plus(config.timeouts.executing));
    next.attempt_started_at = Some(now);
    next.started_at = run.started_at.or(Some(now));
    let description = format!("Attempt {} started", next.attempt_number);
    Plan::new(run, next, description, ())
}

/// Slots of a queue not held by a run; unlimited queues have as many as anyone asks for, paused
/// ones none.
pub(crate) fn free_slots(queue: &QueueRow) -> u32 {
    if queue.paused {
        return 0;
    }
    queue.limit().map_or(u32::MAX, |limit| limit.saturating_sub(queue.running))
}

/// The retry settings of a run whose first attempt has started.
pub(crate) fn retry_of(run: &RunRow) -> RetryOptions {
    run.retry.unwrap_or_default()
}
