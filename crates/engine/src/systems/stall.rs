//! The stall sweeper: runs whose worker stopped sending heartbeats.

use std::collections::HashMap;

use stint_store::Tx;
use stint_types::ExecutionStatus;

use crate::Error;
use crate::shell::Ctx;
use crate::state::Changes;
use crate::systems::attempt::{Completed, plan_cancelled, plan_failure, stalled_error};
use crate::systems::waitpoints;

/// Handles up to `limit` runs whose heartbeat deadline has passed, as Trigger.dev does:
/// an executing attempt fails with `TASK_RUN_STALLED_EXECUTING` and is retried after a short
/// delay if attempts are left (in development it ends `CANCELED`); a cancel the worker never
/// confirmed is finished. (Runs are never `PENDING_EXECUTING` here: a dequeue starts the attempt
/// in the same transaction.)
/// Returns how many runs were handled; runs in no held state are logged and not counted.
pub(crate) async fn sweep(tx: &mut dyn Tx, ctx: &Ctx, limit: u32, changes: &mut Changes) -> Result<usize, Error> {
    let (ids, now, config) = (&ctx.ids, ctx.now, &ctx.config);
    let stalled = tx.run_stalled(now, limit).await?;
    if stalled.is_empty() {
        return Ok(0);
    }
    let mut handled = 0;
    let envs: HashMap<_, _> = tx.environment_list().await?.into_iter().map(|e| (e.id.clone(), e)).collect();
    for run in &stalled {
        match run.execution_status {
            // Its worker was lost while the attempt waited: nothing of the attempt is lost with it
            // (its steps are in the journal), so it is suspended, and resumed by any worker when
            // its waits complete.
            ExecutionStatus::ExecutingWithWaitpoints => {
                waitpoints::suspend(tx, ctx, run, "No heartbeat while blocked; attempt suspended", changes).await?;
                tracing::info!(run = %run.id, attempt = run.attempt_number, "blocked attempt lost its worker; suspended");
                handled += 1;
            }
            ExecutionStatus::Executing => {
                let Some(env) = envs.get(&run.env_id) else {
                    tracing::warn!(run = %run.id, "stalled run of an unknown environment");
                    continue;
                };
                let error = stalled_error(config.timeouts.executing.as_millis());
                let delay = u64::try_from(config.stall_retry_delay.as_millis()).ok();
                let plan = plan_failure(ids, now, env, run.clone(), error, false, delay, 0.0);
                changes.apply(tx, &plan.from, &plan.next, &plan.description).await?;
                let outcome: Completed = plan.answer;
                tracing::info!(run = %run.id, attempt = run.attempt_number, ?outcome, "attempt stalled");
                handled += 1;
            }
            ExecutionStatus::PendingCancel => {
                let plan = plan_cancelled(ids, now, run.clone());
                changes.apply(tx, &plan.from, &plan.next, &plan.description).await?;
                tracing::info!(run = %run.id, "cancel was not confirmed by the worker; finished it");
                handled += 1;
            }
            _ => {
                tracing::warn!(run = %run.id, status = %run.execution_status, "heartbeat deadline on a run nobody holds")
            }
        }
    }
    Ok(handled)
}
