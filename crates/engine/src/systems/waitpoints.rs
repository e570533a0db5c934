//! Waitpoints, as Trigger.dev's run engine has them: making them, blocking runs on them,
//! completing them, and resuming the runs they were the last wait of.
//!
//! A run blocks only after the waitpoints it waits on are locked, and a completion counts a
//! blocked run's pending waitpoints only after locking the run, so on a store with several
//! writers a completion racing a block never leaves a run blocked on nothing.
//!
//! A run whose waits all complete goes on: in place when its attempt is alive
//! (`EXECUTING_WITH_WAITPOINTS` → `EXECUTING`, the worker's continue call is woken), or back to
//! its queue when it was suspended (`SUSPENDED` → `QUEUED`, marked to resume its attempt).

use std::time::Duration;

use stint_store::{EnvironmentRow, RunRow, Tx, WaitpointRow};
use stint_types::{
    BatchId, EnvId, ExecutionStatus, RunId, RunStatus, Timestamp, WaitpointId, WaitpointKind, WaitpointStatus,
};

use crate::Error;
use crate::ids::Ids;
use crate::shell::Ctx;
use crate::state::{Changes, released};
use crate::waits::{TokenCreated, TokenParams};

/// A waitpoint of `kind` in `env_id`, pending, keyed by its own id unless `key` is given.
pub(crate) fn new_waitpoint(
    ids: &Ids,
    now: Timestamp,
    env_id: &EnvId,
    kind: WaitpointKind,
    key: Option<(&str, Option<Duration>)>,
) -> WaitpointRow {
    let id = ids.waitpoint(now);
    let (idempotency_key, user_key, expires) = match key {
        Some((key, ttl)) => (key.to_string(), true, ttl.map(|ttl| now.plus(ttl))),
        None => (id.to_string(), false, None),
    };
    WaitpointRow {
        id,
        env_id: env_id.clone(),
        kind,
        status: WaitpointStatus::Pending,
        idempotency_key,
        user_key,
        idempotency_key_expires_at: expires,
        inactive_idempotency_key: None,
        completed_by_run_id: None,
        completed_by_batch_id: None,
        completed_after: None,
        completed_at: None,
        output: None,
        output_type: None,
        output_is_error: false,
        tags: Vec::new(),
        created_at: now,
    }
}

/// Adds `row`, or, when its creator's key names a live waitpoint of its environment, answers that
/// one (`true`). A key whose time has passed is given up by its old waitpoint first.
pub(crate) async fn insert_keyed(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    row: WaitpointRow,
) -> Result<(WaitpointRow, bool), Error> {
    if row.user_key
        && let Some(existing) = tx.waitpoint_by_key(&row.env_id, &row.idempotency_key).await?
    {
        if existing.idempotency_key_expires_at.is_none_or(|at| at > now) {
            return Ok((existing, true));
        }
        tx.waitpoint_retire_key(&existing.id, ids.waitpoint(now).as_str()).await?;
    }
    match tx.waitpoint_insert(&row).await {
        Ok(()) => Ok((row, false)),
        // Another node made one with the key first.
        Err(stint_store::Error::Duplicate(_)) if row.user_key => {
            match tx.waitpoint_by_key(&row.env_id, &row.idempotency_key).await? {
                Some(existing) => Ok((existing, true)),
                None => Err(Error::Store(stint_store::Error::Duplicate(row.idempotency_key))),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// Makes a token, or finds the live one its key names.
pub(crate) async fn create_token(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    params: TokenParams,
) -> Result<TokenCreated, Error> {
    let key = params.idempotency_key.as_deref().map(|key| (key, params.idempotency_key_ttl));
    let mut row = new_waitpoint(ids, now, &env.id, WaitpointKind::Manual, key);
    row.completed_after = params.timeout;
    row.tags = params.tags;
    let (waitpoint, cached) = insert_keyed(tx, ids, now, row).await?;
    Ok(TokenCreated { waitpoint, cached })
}

/// A token of `env`; anything else is not found.
pub(crate) async fn token_of(tx: &mut dyn Tx, env: &EnvironmentRow, id: &WaitpointId) -> Result<WaitpointRow, Error> {
    match tx.waitpoint_get(id).await? {
        Some(row) if row.env_id == env.id && row.kind == WaitpointKind::Manual => Ok(row),
        _ => Err(Error::NotFound(format!("Waitpoint token {id} not found"))),
    }
}

/// The output a timed-out token is completed with, as Trigger.dev words it.
pub(crate) fn timeout_output(at: Timestamp) -> String {
    serde_json::json!({
        "code": stint_types::waitpoint::WAITPOINT_TIMEOUT_CODE,
        "message": format!("Waitpoint timed out at {}", at.to_rfc3339()),
    })
    .to_string()
}

/// Completes a waitpoint and lets the runs it was the last pending wait of go on. True if it was
/// pending; completing it again changes nothing.
pub(crate) async fn complete(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    id: &WaitpointId,
    output: Option<&str>,
    is_error: bool,
    changes: &mut Changes,
) -> Result<bool, Error> {
    let output_type = output.map(|_| "application/json");
    if !tx.waitpoint_complete(id, output, output_type, is_error, ctx.now).await? {
        return Ok(false);
    }
    for run_id in tx.waitpoint_blocked_runs(std::slice::from_ref(id)).await? {
        resume_if_unblocked(tx, ctx, &run_id, changes).await?;
    }
    Ok(true)
}

/// Lets a blocked run go on when none of its waitpoints is pending any more: in place when its
/// attempt is alive, through its queue when it was suspended. The run is locked first, so a
/// completion of its last other waitpoint in another transaction is counted.
pub(crate) async fn resume_if_unblocked(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    run_id: &RunId,
    changes: &mut Changes,
) -> Result<(), Error> {
    let Some(run) = tx.run_lock(run_id).await? else { return Ok(()) };
    if tx.waitpoint_pending_count(run_id).await? > 0 {
        return Ok(());
    }
    match run.execution_status {
        ExecutionStatus::ExecutingWithWaitpoints => {
            let next = Changes::next(&run, &ctx.ids, ctx.now, ExecutionStatus::Executing, RunStatus::Executing);
            changes.apply(tx, &run, &next, "Waitpoints completed; attempt goes on").await?;
        }
        ExecutionStatus::Suspended => {
            let next = requeued(&run, &ctx.ids, ctx.now);
            changes.apply(tx, &run, &next, "Waitpoints completed; queued to resume").await?;
        }
        // Cancelled or ended meanwhile: nothing to resume.
        _ => {}
    }
    tx.waitpoint_unblock(run_id).await?;
    Ok(())
}

/// A blocked run put back in its queue to resume its attempt: ordered by when it was first
/// queued, so work under way finishes before newer work starts.
fn requeued(run: &RunRow, ids: &Ids, now: Timestamp) -> RunRow {
    let mut next = released(run, ids, now, ExecutionStatus::Queued, RunStatus::Queued);
    next.queue_score = Some(run.created_at.millis() - run.priority_ms);
    next.resuming = true;
    next
}

/// Blocks a run held by its worker on `waitpoints` (a run blocked already waits on them too).
/// Returns the run's next state when it is blocked, `None` when none of them is pending (the run
/// goes on as it is). With `suspend`, the
/// attempt is suspended at once, its slot freed (a child waited on needs the slot).
pub(crate) async fn block(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    run: &RunRow,
    waitpoints: &[WaitpointId],
    suspend: bool,
    changes: &mut Changes,
) -> Result<Option<RunRow>, Error> {
    let mut locked = waitpoints.to_vec();
    locked.sort();
    locked.dedup();
    let pending: Vec<WaitpointId> = tx
        .waitpoint_lock_many(&locked)
        .await?
        .into_iter()
        .filter(|w| w.status == WaitpointStatus::Pending)
        .map(|w| w.id)
        .collect();
    if pending.is_empty() {
        return Ok(None);
    }
    tx.waitpoint_block(&run.id, &pending, ctx.now).await?;
    if run.execution_status == ExecutionStatus::ExecutingWithWaitpoints {
        // Blocked already: it now waits on these too.
        return Ok(Some(run.clone()));
    }
    let next = if suspend {
        suspended(run, &ctx.ids, ctx.now)
    } else {
        Changes::next(run, &ctx.ids, ctx.now, ExecutionStatus::ExecutingWithWaitpoints, RunStatus::Waiting)
    };
    let description = format!("Blocked on {} waitpoint(s)", pending.len());
    changes.apply(tx, run, &next, &description).await?;
    Ok(Some(next))
}

/// A blocked run whose attempt ends while it waits: its slot is freed, its attempt stays current.
pub(crate) fn suspended(run: &RunRow, ids: &Ids, now: Timestamp) -> RunRow {
    released(run, ids, now, ExecutionStatus::Suspended, RunStatus::Waiting)
}

/// Suspends a blocked run whose attempt is alive; when its waits have all completed meanwhile, it
/// goes to its queue instead.
pub(crate) async fn suspend(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    run: &RunRow,
    why: &str,
    changes: &mut Changes,
) -> Result<(), Error> {
    if tx.waitpoint_pending_count(&run.id).await? == 0 {
        let next = requeued(run, &ctx.ids, ctx.now);
        changes.apply(tx, run, &next, why).await?;
        tx.waitpoint_unblock(&run.id).await?;
        return Ok(());
    }
    let next = suspended(run, &ctx.ids, ctx.now);
    changes.apply(tx, run, &next, why).await
}

/// The `RUN` waitpoint of `child`, made when missing: completed at once when the child has
/// finished. The child is locked first, so it cannot finish unseen in between.
pub(crate) async fn of_run(tx: &mut dyn Tx, ctx: &Ctx, child: &RunId) -> Result<WaitpointRow, Error> {
    let Some(run) = tx.run_lock(child).await? else {
        return Err(Error::NotFound(format!("Run {child} not found")));
    };
    if let Some(existing) = tx.waitpoint_of_run(child).await? {
        return Ok(existing);
    }
    let mut row = new_waitpoint(&ctx.ids, ctx.now, &run.env_id, WaitpointKind::Run, None);
    row.completed_by_run_id = Some(run.id.clone());
    if run.status.is_final() {
        let (output, is_error) = run_output(&run);
        row.status = WaitpointStatus::Completed;
        row.completed_at = Some(ctx.now);
        row.output_type = output.as_ref().map(|_| "application/json".to_string());
        row.output = output;
        row.output_is_error = is_error;
    }
    match tx.waitpoint_insert(&row).await {
        Ok(()) => Ok(row),
        // Another parent made it first.
        Err(stint_store::Error::Duplicate(_)) => {
            tx.waitpoint_of_run(child).await?.ok_or_else(|| Error::NotFound(format!("Run {child} not found")))
        }
        Err(error) => Err(error.into()),
    }
}

/// The `BATCH` waitpoint of a batch just made, completed at once when none of its runs is
/// unfinished (every item was answered by a finished run).
pub(crate) async fn of_batch(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    env_id: &EnvId,
    batch: &BatchId,
) -> Result<WaitpointRow, Error> {
    let mut row = new_waitpoint(&ctx.ids, ctx.now, env_id, WaitpointKind::Batch, None);
    row.completed_by_batch_id = Some(batch.clone());
    if tx.batch_unfinished(batch).await? == 0 {
        row.status = WaitpointStatus::Completed;
        row.completed_at = Some(ctx.now);
    }
    tx.waitpoint_insert(&row).await?;
    Ok(row)
}

/// A finished run's result as its `RUN` waitpoint keeps it: the output, or the error.
fn run_output(run: &RunRow) -> (Option<String>, bool) {
    if run.status == RunStatus::Completed {
        (run.output.clone(), false)
    } else {
        (run.error.as_ref().and_then(|e| serde_json::to_string(e).ok()), true)
    }
}

/// Completes the waitpoints of the runs that finished in this transaction: their `RUN`
/// waitpoints, and the `BATCH` waitpoints of their batches once no run of the batch is
/// unfinished (the batch is locked before counting, so of two runs finishing at once on two
/// nodes the second counts the first).
pub(crate) async fn settle(tx: &mut dyn Tx, ctx: &Ctx, changes: &mut Changes) -> Result<(), Error> {
    if changes.finished.is_empty() {
        return Ok(());
    }
    let finished = std::mem::take(&mut changes.finished);
    let run_ids: Vec<RunId> = finished.iter().map(|(id, _)| id.clone()).collect();
    let mut waitpoints = tx.waitpoint_pending_for_runs(&run_ids).await?;
    waitpoints.sort_by(|a, b| a.id.cmp(&b.id));
    for waitpoint in waitpoints {
        let Some(run_id) = &waitpoint.completed_by_run_id else { continue };
        let Some(run) = tx.run_get(run_id).await? else { continue };
        let (output, is_error) = run_output(&run);
        complete(tx, ctx, &waitpoint.id, output.as_deref(), is_error, changes).await?;
    }
    let mut batches: Vec<BatchId> = finished.into_iter().filter_map(|(_, batch)| batch).collect();
    if !batches.is_empty() {
        batches.sort();
        batches.dedup();
        let mut waitpoints = tx.waitpoint_pending_for_batches(&batches).await?;
        waitpoints.sort_by(|a, b| a.completed_by_batch_id.cmp(&b.completed_by_batch_id));
        for waitpoint in waitpoints {
            let Some(batch) = &waitpoint.completed_by_batch_id else { continue };
            tx.batch_lock(batch).await?;
            if tx.batch_unfinished(batch).await? == 0 {
                complete(tx, ctx, &waitpoint.id, None, false, changes).await?;
            }
        }
    }
    // Completing waitpoints resumes runs; it never finishes one.
    debug_assert!(changes.finished.is_empty());
    Ok(())
}

/// Completes up to `limit` waitpoints whose time has come: waits of time, and tokens whose
/// timeout passed (with Trigger.dev's timeout error). Returns how many.
pub(crate) async fn complete_due(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    limit: u32,
    changes: &mut Changes,
) -> Result<usize, Error> {
    let due = tx.waitpoint_due(ctx.now, limit).await?;
    for waitpoint in &due {
        match waitpoint.kind {
            WaitpointKind::Manual => {
                let at = waitpoint.completed_after.unwrap_or(ctx.now);
                complete(tx, ctx, &waitpoint.id, Some(&timeout_output(at)), true, changes).await?;
            }
            _ => {
                complete(tx, ctx, &waitpoint.id, None, false, changes).await?;
            }
        }
    }
    Ok(due.len())
}
