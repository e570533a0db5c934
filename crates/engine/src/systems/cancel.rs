//! Cancelling runs.

use stint_store::{EnvironmentRow, Tx};
use stint_types::{ExecutionStatus, RunId, RunStatus, Timestamp};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::state::{Changes, ended};
use crate::systems::attempt::cancelled_error;

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The run was not held by a worker and is now `CANCELED`.
    Now,
    /// A worker holds the run; it is told on its next heartbeat and the run ends `CANCELED` when
    /// it confirms, or when the pending-cancel timeout passes.
    Signalled,
    /// The run had already ended; nothing changed.
    AlreadyFinished(RunStatus),
}

/// Cancels a run of `env`.
pub(crate) async fn cancel(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    config: &Config,
    env: &EnvironmentRow,
    run_id: &RunId,
    changes: &mut Changes,
) -> Result<Cancelled, Error> {
    let run = match tx.run_get(run_id).await? {
        Some(run) if run.env_id == env.id => run,
        _ => return Err(Error::NotFound(format!("Run {run_id} not found"))),
    };
    match run.execution_status {
        ExecutionStatus::Finished => Ok(Cancelled::AlreadyFinished(run.status)),
        ExecutionStatus::PendingCancel => Ok(Cancelled::Signalled),
        ExecutionStatus::PendingExecuting | ExecutionStatus::Executing | ExecutionStatus::ExecutingWithWaitpoints => {
            let mut next = Changes::next(&run, ids, now, ExecutionStatus::PendingCancel, run.status);
            next.heartbeat_deadline = Some(now.plus(config.timeouts.pending_cancel));
            changes.apply(tx, &run, &next, "Run was cancelled; waiting for its worker to stop").await?;
            Ok(Cancelled::Signalled)
        }
        ExecutionStatus::RunCreated
        | ExecutionStatus::Delayed
        | ExecutionStatus::Queued
        | ExecutionStatus::Suspended => {
            let mut next = ended(&run, ids, now, RunStatus::Canceled);
            next.error = Some(cancelled_error());
            changes.apply(tx, &run, &next, "Run was cancelled").await?;
            Ok(Cancelled::Now)
        }
    }
}
