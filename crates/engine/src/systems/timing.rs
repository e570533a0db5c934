//! Work that falls due with time: delayed runs are queued when due, runs whose TTL passes before
//! their first attempt expire, and request keys' answers are forgotten after a day.

use std::time::Duration;

use stint_store::{RunRow, Tx};
use stint_types::{ExecutionStatus, RunStatus, TaskRunError, Timestamp, duration};

use crate::Error;
use crate::ids::Ids;
use crate::state::{Changes, Plan, ended};
use crate::systems::trigger::Delay;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// Delayed runs queued.
    pub queued: usize,
    /// Runs expired.
    pub expired: usize,
    /// Waitpoints completed by time: waits that ended and tokens that timed out.
    pub waitpoints: usize,
    /// Schedules handled at their fire time.
    pub fired: usize,
    /// When the next piece of work falls due, as far as the pass knows.
    pub next: Option<Timestamp>,
}

/// Queues up to `limit` delayed runs that are due, each at the time it was due (minus its
/// priority), so it goes ahead of runs triggered after that time; each one's TTL starts now.
pub(crate) async fn queue_delayed(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    limit: u32,
    changes: &mut Changes,
) -> Result<usize, Error> {
    let due = tx.run_delayed_due(now, limit).await?;
    let mut queued = 0;
    for run in due {
        let mut next = Changes::next(&run, ids, now, ExecutionStatus::Queued, RunStatus::Queued);
        next.queue_score = Some(run.delay_until.unwrap_or(now).millis() - run.priority_ms);
        next.ttl_expires_at = run.ttl_secs.map(|secs| now.plus(Duration::from_secs(secs.into())));
        match changes.apply(tx, &run, &next, "Run was queued: its delay passed").await {
            Ok(()) => {}
            // Cancelled or moved by someone else since it was read: nothing to do.
            Err(Error::Stale { .. }) => continue,
            Err(error) => return Err(error),
        }
        changes.wake.insert(run.env_id.clone());
        queued += 1;
    }
    Ok(queued)
}

/// Expires up to `limit` runs whose TTL passed while they waited for their first attempt.
pub(crate) async fn expire(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    limit: u32,
    changes: &mut Changes,
) -> Result<usize, Error> {
    let due = tx.run_ttl_due(now, limit).await?;
    let mut expired = 0;
    for run in due {
        if run.execution_status != ExecutionStatus::Queued {
            tracing::warn!(run = %run.id, status = %run.execution_status, "a TTL deadline on a run not queued");
            continue;
        }
        let plan = plan_expired(ids, now, run);
        match changes.apply(tx, &plan.from, &plan.next, &plan.description).await {
            Ok(()) => expired += 1,
            Err(Error::Stale { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(expired)
}

/// Whether a queued run's TTL has passed, so it must expire instead of starting.
pub(crate) fn is_expired(run: &RunRow, now: Timestamp) -> bool {
    run.ttl_expires_at.is_some_and(|at| at <= now)
}

/// The move that ends a queued run `EXPIRED`, with Trigger.dev's error.
pub(crate) fn plan_expired(ids: &Ids, now: Timestamp, run: RunRow) -> Plan<()> {
    let ttl = duration::format(run.ttl_secs.map_or(0, u64::from));
    let mut next = ended(&run, ids, now, RunStatus::Expired);
    next.error = Some(TaskRunError::StringError { raw: format!("Run expired because the TTL ({ttl}) was reached") });
    Plan::new(run, next, format!("Run expired: its TTL ({ttl}) passed before it started"), ())
}

/// Forgets up to `limit` request keys' answers that have expired; returns how many.
pub(crate) async fn forget_requests(tx: &mut dyn Tx, now: Timestamp, limit: u32) -> Result<u64, Error> {
    Ok(tx.request_key_purge(now, limit).await?)
}

/// Moves a delayed run's due time (`POST /api/v1/runs/{id}/reschedule`); a run that is not
/// delayed cannot be rescheduled. A time already past queues the run at the next pass.
pub(crate) async fn reschedule(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    run: RunRow,
    delay: Delay,
    changes: &mut Changes,
) -> Result<RunRow, Error> {
    if run.execution_status != ExecutionStatus::Delayed {
        return Err(Error::Invalid(format!(
            "Run {} is {}, not delayed; only a delayed run can be rescheduled",
            run.id,
            run.status.as_str()
        )));
    }
    let until = match delay {
        Delay::For(delay) => now.plus(delay),
        Delay::Until(at) => at,
    };
    let mut next = Changes::next(&run, ids, now, ExecutionStatus::Delayed, RunStatus::Delayed);
    next.delay_until = Some(until);
    next.debounce_key = run.debounce_key.clone();
    changes.apply(tx, &run, &next, &format!("Run was rescheduled to {}", until.to_rfc3339())).await?;
    Ok(next)
}
