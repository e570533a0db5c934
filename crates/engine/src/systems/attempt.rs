//! Attempts in progress: heartbeats, and completions that finish or retry a run.

use std::collections::{HashMap, HashSet};

use stint_store::{EnvironmentRow, RunRow, Tx, WorkerRow};
use stint_types::metadata::Operation;
use stint_types::{ErrorCode, ExecutionStatus, RunId, RunStatus, SnapshotId, TaskRunError, Timestamp};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::state::{Changes, Plan, ended, released};
use crate::systems::dequeue::retry_of;
use crate::systems::metadata;

/// What a worker should do with an attempt it reported in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatVerdict {
    /// Keep going.
    Continue,
    /// Keep going, holding this snapshot from now on: a wait of the attempt completed in place,
    /// and the answer saying so may not have reached the worker yet.
    Moved(SnapshotId),
    /// The run was cancelled; complete it with this snapshot id.
    Cancel(SnapshotId),
    /// The attempt is no longer the worker's; drop it.
    Stop,
}

/// Records that `worker` still runs the attempt at `snapshot_id`, and says what to do with it.
pub(crate) async fn heartbeat(
    tx: &mut dyn Tx,
    now: Timestamp,
    config: &Config,
    worker: &WorkerRow,
    run_id: &RunId,
    snapshot_id: &SnapshotId,
) -> Result<HeartbeatVerdict, Error> {
    let Some(run) = tx.run_get(run_id).await? else {
        return Ok(HeartbeatVerdict::Stop);
    };
    if !worker.serves(&run.env_id) || run.worker_id.as_ref() != Some(&worker.id) {
        return Ok(HeartbeatVerdict::Stop);
    }
    match run.execution_status {
        ExecutionStatus::PendingCancel => Ok(HeartbeatVerdict::Cancel(run.snapshot_id)),
        ExecutionStatus::Executing | ExecutionStatus::ExecutingWithWaitpoints => {
            // The attempt's waits move its snapshot; a heartbeat sent before the worker learnt of
            // the move is for the same attempt, which the worker still holds.
            let current = run.snapshot_id.clone();
            if &current != snapshot_id && !of_current_attempt(tx, &run, snapshot_id).await? {
                return Ok(HeartbeatVerdict::Stop);
            }
            if !tx.run_heartbeat(run_id, &current, now.plus(config.timeouts.executing)).await? {
                return Ok(HeartbeatVerdict::Stop);
            }
            Ok(if &current == snapshot_id { HeartbeatVerdict::Continue } else { HeartbeatVerdict::Moved(current) })
        }
        _ => Ok(HeartbeatVerdict::Stop),
    }
}

/// Whether `snapshot_id` is one of the run's snapshots since its current attempt started (or
/// resumed): a snapshot of the attempt the worker holds, which a wait moved on from.
async fn of_current_attempt(tx: &mut dyn Tx, run: &RunRow, snapshot_id: &SnapshotId) -> Result<bool, Error> {
    let Some(started) = run.attempt_started_at else { return Ok(false) };
    Ok(tx.snapshot_list(&run.id).await?.iter().any(|s| &s.id == snapshot_id && s.created_at >= started))
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The task returned this output (JSON text).
    Success(String),
    /// The task failed.
    Failure {
        /// The error.
        error: TaskRunError,
        /// Do not retry.
        skip_retrying: bool,
    },
}

/// What became of a completion.
#[derive(Debug, Clone, PartialEq)]
pub enum Completed {
    /// The run ended with this status.
    Finished(RunStatus),
    /// The run was queued for another attempt.
    Retrying {
        /// When the next attempt may start.
        at: Timestamp,
    },
    /// The completion's snapshot was not current; nothing changed.
    Stale {
        /// The current snapshot.
        current: SnapshotId,
        /// Its status.
        status: ExecutionStatus,
    },
    /// No such run in the worker's environment.
    NotFound,
}

/// An attempt's result as its worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The run.
    pub run_id: RunId,
    /// The snapshot the worker holds.
    pub snapshot_id: SnapshotId,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// Changes of the run's metadata the attempt made and had not sent yet; applied with the
    /// completion, and dropped when the completion is stale.
    pub metadata: Vec<Operation>,
}

/// A completion to apply, with a random number in [0, 1) for the retry delay.
pub(crate) type Report = (Completion, f64);

/// Applies the results of attempts, each judged on its own, in few statements: the runs are
/// read together and moved together. Answers are in the order of `reports`.
pub(crate) async fn complete(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    envs: &[EnvironmentRow],
    reports: Vec<Report>,
    changes: &mut Changes,
) -> Result<Vec<Completed>, Error> {
    let env_of = |run: &RunRow| envs.iter().find(|env| env.id == run.env_id);
    let run_ids: Vec<RunId> = reports.iter().map(|(completion, _)| completion.run_id.clone()).collect();
    let mut runs: HashMap<RunId, RunRow> =
        tx.run_get_many(&run_ids).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut answers: Vec<Option<Completed>> = vec![None; reports.len()];
    let mut plans = Vec::new();
    let (mut seen, mut repeats) = (HashSet::new(), Vec::new());
    for (at, (completion, jitter)) in reports.into_iter().enumerate() {
        let Completion { run_id, snapshot_id, outcome, metadata } = completion;
        if !seen.insert(run_id.clone()) {
            // A second report for one run in a batch: the first decides; this one is answered
            // with where the run ends up.
            repeats.push((at, run_id));
            continue;
        }
        let Some((run, env)) = runs.remove(&run_id).and_then(|run| env_of(&run).map(|env| (run, env))) else {
            answers[at] = Some(Completed::NotFound);
            continue;
        };
        match plan_completion(ids, now, env, run, &snapshot_id, outcome, jitter) {
            Ok(plan) => plans.push((at, plan, metadata)),
            Err(answer) => answers[at] = Some(answer),
        }
    }
    let moves: Vec<&Plan> = plans.iter().map(|(_, plan, _)| plan).collect();
    let results = changes.apply_many(tx, &moves).await?;
    for ((at, plan, operations), result) in plans.into_iter().zip(results) {
        answers[at] = Some(match result {
            Ok(()) => {
                if !operations.is_empty() {
                    metadata::apply_completed(tx, now, &plan.from.id, &operations).await?;
                }
                plan.answer
            }
            // Moved on since it was read (another node's cancel or sweep): say where it is.
            Err(Error::Stale { .. }) => where_now(tx, &plan.from.id, envs).await?,
            Err(error) => return Err(error),
        });
    }
    for (at, run_id) in repeats {
        answers[at] = Some(where_now(tx, &run_id, envs).await?);
    }
    Ok(answers.into_iter().flatten().collect())
}

/// The answer to a completion that changed nothing: where the run is now.
async fn where_now(tx: &mut dyn Tx, run_id: &RunId, envs: &[EnvironmentRow]) -> Result<Completed, Error> {
    Ok(match tx.run_get(run_id).await? {
        Some(run) if envs.iter().any(|env| env.id == run.env_id) => {
            Completed::Stale { current: run.snapshot_id, status: run.execution_status }
        }
        _ => Completed::NotFound,
    })
}

/// What a completion does to its run, or the answer when it does nothing.
fn plan_completion(
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    run: RunRow,
    snapshot_id: &SnapshotId,
    outcome: Outcome,
    jitter: f64,
) -> Result<Plan, Completed> {
    let held = matches!(run.execution_status, ExecutionStatus::Executing | ExecutionStatus::PendingCancel);
    if &run.snapshot_id != snapshot_id || !held {
        return Err(Completed::Stale { current: run.snapshot_id, status: run.execution_status });
    }
    if run.execution_status == ExecutionStatus::PendingCancel {
        return Ok(plan_cancelled(ids, now, run));
    }
    Ok(match outcome {
        Outcome::Success(output) => {
            let mut next = ended(&run, ids, now, RunStatus::Completed);
            next.output = Some(output);
            next.output_type = Some("application/json".into());
            next.error = None;
            Plan::new(run, next, "Attempt succeeded".into(), Completed::Finished(RunStatus::Completed))
        }
        Outcome::Failure { error, skip_retrying } => {
            plan_failure(ids, now, env, run, error, skip_retrying, None, jitter)
        }
    })
}

/// Ends a failed attempt: queues the next attempt when the error is retryable and attempts are
/// left, otherwise ends the run with the error's final status. `delay` replaces the retry
/// settings' delay when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_failure(
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    run: RunRow,
    error: TaskRunError,
    skip_retrying: bool,
    delay: Option<u64>,
    jitter: f64,
) -> Plan {
    let retry_in = retry_of(&run).delay_after(run.attempt_number, jitter).map(|d| delay.unwrap_or(d));
    let final_status = error.final_status(env.kind);
    let retryable = !skip_retrying && error.is_retryable() && final_status != RunStatus::Canceled;
    if let (true, Some(delay_ms)) = (retryable, retry_in) {
        let at = now.plus_millis(i64::try_from(delay_ms).unwrap_or(i64::MAX));
        let mut next = released(&run, ids, now, ExecutionStatus::Queued, RunStatus::Queued);
        next.error = Some(error);
        next.queue_score = Some(at.millis());
        let description = format!("Attempt {} failed; retrying in {delay_ms} ms", run.attempt_number);
        return Plan::new(run, next, description, Completed::Retrying { at });
    }
    let status = final_status;
    let mut next = ended(&run, ids, now, status);
    next.error = Some(error);
    let description = format!("Attempt {} failed; run ended {status}", run.attempt_number);
    Plan::new(run, next, description, Completed::Finished(status))
}

/// Ends a run whose cancel the worker confirmed, or whose worker never answered the cancel.
pub(crate) fn plan_cancelled(ids: &Ids, now: Timestamp, run: RunRow) -> Plan {
    let mut next = ended(&run, ids, now, RunStatus::Canceled);
    next.error = Some(cancelled_error());
    Plan::new(run, next, "Run was cancelled".into(), Completed::Finished(RunStatus::Canceled))
}

/// The error a cancelled run carries.
pub(crate) fn cancelled_error() -> TaskRunError {
    TaskRunError::StringError { raw: "Canceled by user".into() }
}

/// The error of an attempt whose worker stopped sending heartbeats.
pub(crate) fn stalled_error(timeout_ms: u128) -> TaskRunError {
    TaskRunError::internal(
        ErrorCode::TaskRunStalledExecuting,
        format!("Run stalled: no heartbeat from its worker for {timeout_ms} ms; the worker was lost or blocked"),
    )
}
