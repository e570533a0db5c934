//! Attempts in progress: heartbeats, and completions that finish or retry a run.

use stint_store::{EnvironmentRow, RunRow, Tx, WorkerRow};
use stint_types::{ErrorCode, ExecutionStatus, RunId, RunStatus, SnapshotId, TaskRunError, Timestamp};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::state::{Changes, ended, released};
use crate::systems::dequeue::retry_of;

/// What a worker should do with an attempt it reported in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatVerdict {
    /// Keep going.
    Continue,
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
    if run.env_id != worker.env_id || run.worker_id.as_ref() != Some(&worker.id) {
        return Ok(HeartbeatVerdict::Stop);
    }
    match run.execution_status {
        ExecutionStatus::PendingCancel => Ok(HeartbeatVerdict::Cancel(run.snapshot_id)),
        ExecutionStatus::Executing if &run.snapshot_id == snapshot_id => {
            tx.run_heartbeat(run_id, snapshot_id, now.plus(config.timeouts.executing)).await?;
            Ok(HeartbeatVerdict::Continue)
        }
        _ => Ok(HeartbeatVerdict::Stop),
    }
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

/// Applies the result of an attempt. `jitter` is a random number in [0, 1) for the retry delay.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn complete(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    run_id: &RunId,
    snapshot_id: &SnapshotId,
    outcome: Outcome,
    jitter: f64,
    changes: &mut Changes,
) -> Result<Completed, Error> {
    let Some(run) = tx.run_get(run_id).await? else {
        return Ok(Completed::NotFound);
    };
    if run.env_id != env.id {
        return Ok(Completed::NotFound);
    }
    let held = matches!(run.execution_status, ExecutionStatus::Executing | ExecutionStatus::PendingCancel);
    if &run.snapshot_id != snapshot_id || !held {
        return Ok(Completed::Stale { current: run.snapshot_id, status: run.execution_status });
    }
    if run.execution_status == ExecutionStatus::PendingCancel {
        let status = finish_cancelled(tx, ids, now, &run, changes).await?;
        return Ok(Completed::Finished(status));
    }
    match outcome {
        Outcome::Success(output) => {
            let mut next = ended(&run, ids, now, RunStatus::Completed);
            next.output = Some(output);
            next.output_type = Some("application/json".into());
            next.error = None;
            changes.apply(tx, &run, &next, "Attempt succeeded").await?;
            Ok(Completed::Finished(RunStatus::Completed))
        }
        Outcome::Failure { error, skip_retrying } => {
            fail_attempt(tx, ids, now, env, &run, error, skip_retrying, None, jitter, changes).await
        }
    }
}

/// Ends a failed attempt: queues the next attempt when the error is retryable and attempts are
/// left, otherwise ends the run with the error's final status. `delay` replaces the retry
/// settings' delay when given.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fail_attempt(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    run: &RunRow,
    error: TaskRunError,
    skip_retrying: bool,
    delay: Option<u64>,
    jitter: f64,
    changes: &mut Changes,
) -> Result<Completed, Error> {
    let retry_in = retry_of(run).delay_after(run.attempt_number, jitter).map(|d| delay.unwrap_or(d));
    let final_status = error.final_status(env.kind);
    let retryable = !skip_retrying && error.is_retryable() && final_status != RunStatus::Canceled;
    if let (true, Some(delay_ms)) = (retryable, retry_in) {
        let at = now.plus_millis(i64::try_from(delay_ms).unwrap_or(i64::MAX));
        let mut next = released(run, ids, now, ExecutionStatus::Queued, RunStatus::Queued);
        next.error = Some(error);
        next.queue_score = Some(at.millis());
        let description = format!("Attempt {} failed; retrying in {delay_ms} ms", run.attempt_number);
        changes.apply(tx, run, &next, &description).await?;
        changes.wake.insert(run.env_id.clone());
        return Ok(Completed::Retrying { at });
    }
    let status = final_status;
    let mut next = ended(run, ids, now, status);
    next.error = Some(error);
    let description = format!("Attempt {} failed; run ended {status}", run.attempt_number);
    changes.apply(tx, run, &next, &description).await?;
    Ok(Completed::Finished(status))
}

/// Ends a run whose cancel the worker confirmed, or whose worker never answered the cancel.
pub(crate) async fn finish_cancelled(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    run: &RunRow,
    changes: &mut Changes,
) -> Result<RunStatus, Error> {
    let mut next = ended(run, ids, now, RunStatus::Canceled);
    next.error = Some(cancelled_error());
    changes.apply(tx, run, &next, "Run was cancelled").await?;
    Ok(RunStatus::Canceled)
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
