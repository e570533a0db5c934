//! A run's journal: its durable calls in call order (steps, waits of time, tokens, child runs,
//! batches), recorded as the worker makes them, and read back, with their results, by a worker
//! that runs the task again after a suspension or a failed attempt.

use serde_json::{Value, json};
use stint_store::{JournalRow, RunRow, Tx, WaitpointRow, WorkerRow};
use stint_types::{
    JournalKind, RunId, RunStatus, SnapshotId, TaskRunError, WaitpointId, WaitpointKind, WaitpointStatus,
};

use crate::Error;
use crate::shell::Ctx;
use crate::state::Changes;
use crate::systems::trigger::{self, TriggerParams};
use crate::systems::{batch, waitpoints};
use crate::waits::{CallAnswer, JournalView, Wait};

/// Most ancestors walked looking for a wait on an ancestor.
const MAX_ANCESTORS: usize = 100;

/// The run `worker` holds, or `None`: a run of an environment it does not serve, or held by
/// another worker, is not its.
async fn held_run(tx: &mut dyn Tx, worker: &WorkerRow, run_id: &RunId) -> Result<Option<RunRow>, Error> {
    Ok(tx.run_get(run_id).await?.filter(|run| worker.serves(&run.env_id) && run.worker_id.as_ref() == Some(&worker.id)))
}

/// Whether a run's current attempt is executing at `snapshot_id`.
fn executing_at(run: &RunRow, snapshot_id: &SnapshotId) -> bool {
    &run.snapshot_id == snapshot_id && run.execution_status == stint_types::ExecutionStatus::Executing
}

/// A durable call of a worker: the run it holds, the snapshot it holds it at, and the call's place.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) worker: &'a WorkerRow,
    pub(crate) run_id: &'a RunId,
    pub(crate) snapshot_id: &'a SnapshotId,
    pub(crate) seq: u32,
}

/// Records a step's output at `seq`. A step recorded already at `seq` under the same name
/// answers as recorded; another call there is a mismatch.
pub(crate) async fn record_step(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    call: Call<'_>,
    name: String,
    output: String,
) -> Result<CallAnswer, Error> {
    let Call { worker, run_id, snapshot_id, seq } = call;
    let Some(run) = held_run(tx, worker, run_id).await? else { return Ok(CallAnswer::Stale) };
    if let Some(entry) = entry_at(tx, run_id, seq).await? {
        if entry.kind != JournalKind::Step || entry.name != name {
            return Ok(CallAnswer::Mismatch(mismatch(&entry, JournalKind::Step, &name)));
        }
        let entry = view(tx, &entry).await?;
        return Ok(CallAnswer::Completed { snapshot_id: run.snapshot_id, entry });
    }
    if !executing_at(&run, snapshot_id) {
        return Ok(CallAnswer::Stale);
    }
    let row = JournalRow {
        run_id: run_id.clone(),
        seq,
        kind: JournalKind::Step,
        name,
        waitpoint_id: None,
        output: Some(output),
        child_run_id: None,
        batch_id: None,
        created_at: ctx.now,
    };
    tx.journal_insert(&row).await?;
    let entry = view(tx, &row).await?;
    Ok(CallAnswer::Completed { snapshot_id: run.snapshot_id, entry })
}

/// Blocks a held run on `wait`, recorded at `seq`. A wait recorded already at `seq` answers with
/// where it stands (the worker's earlier call whose answer was lost); another call there is a
/// mismatch.
pub(crate) async fn wait(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    call: Call<'_>,
    wait: Wait,
    changes: &mut Changes,
) -> Result<CallAnswer, Error> {
    let Call { worker, run_id, snapshot_id, seq } = call;
    let Some(run) = held_run(tx, worker, run_id).await? else { return Ok(CallAnswer::Stale) };
    let (kind, name) = describe(&wait);
    if let Some(entry) = entry_at(tx, run_id, seq).await? {
        if entry.kind != kind || (kind != JournalKind::Wait && entry.name != name) {
            return Ok(CallAnswer::Mismatch(mismatch(&entry, kind, &name)));
        }
        return standing(tx, ctx, run, &entry, changes).await;
    }
    if !executing_at(&run, snapshot_id) {
        return Ok(CallAnswer::Stale);
    }
    let Some(env) = tx.environment_get(&run.env_id).await? else { return Ok(CallAnswer::Stale) };
    let env = &env;
    let mut row = JournalRow {
        run_id: run_id.clone(),
        seq,
        kind,
        name,
        waitpoint_id: None,
        output: None,
        child_run_id: None,
        batch_id: None,
        created_at: ctx.now,
    };
    let mut blockers = Vec::new();
    let mut suspend = false;
    match wait {
        Wait::Until(until) => {
            let mut waitpoint =
                waitpoints::new_waitpoint(&ctx.ids, ctx.now, &run.env_id, WaitpointKind::Datetime, None);
            waitpoint.completed_after = Some(until);
            if until <= ctx.now {
                waitpoint.status = WaitpointStatus::Completed;
                waitpoint.completed_at = Some(ctx.now);
            }
            tx.waitpoint_insert(&waitpoint).await?;
            blockers.push(waitpoint.id);
        }
        Wait::Token(id) => blockers.push(waitpoints::token_of(tx, env, &id).await?.id),
        Wait::Run(params) => {
            let params = as_child(params, &run);
            let mut none = |_: &str| None;
            let child =
                trigger::trigger(tx, &ctx.ids, ctx.now, &ctx.config, env, params, &mut none, changes).await?.run;
            check_not_waiting_on_itself(tx, &run, &child.id).await?;
            suspend = needs_the_slot(tx, &run, &child).await?;
            row.child_run_id = Some(child.id.clone());
            blockers.push(waitpoints::of_run(tx, ctx, &child.id).await?.id);
        }
        Wait::Batch(items) => {
            let items = items.into_iter().map(|params| as_child(params, &run)).collect();
            let made = batch::trigger_all(tx, &ctx.ids, ctx.now, env, items, None, changes).await?;
            let cached: Vec<RunId> = made.runs.iter().filter(|r| r.cached).map(|r| r.run_id.clone()).collect();
            for child in &cached {
                check_not_waiting_on_itself(tx, &run, child).await?;
                blockers.push(waitpoints::of_run(tx, ctx, child).await?.id);
            }
            blockers.push(waitpoints::of_batch(tx, ctx, &run.env_id, &made.batch.id).await?.id);
            row.batch_id = Some(made.batch.id);
        }
    }
    row.waitpoint_id = blockers.last().cloned();
    tx.journal_insert(&row).await?;
    // Runs of a batch wait on the batch; its cached items on their own runs too.
    match waitpoints::block(tx, ctx, &run, &blockers, suspend, changes).await? {
        Some(next) => Ok(CallAnswer::Waiting { snapshot_id: next.snapshot_id, entry: view(tx, &row).await? }),
        None => Ok(CallAnswer::Completed { snapshot_id: run.snapshot_id, entry: view(tx, &row).await? }),
    }
}

/// Where a wait recorded earlier stands, for a worker asking again.
async fn standing(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    run: RunRow,
    entry: &JournalRow,
    changes: &mut Changes,
) -> Result<CallAnswer, Error> {
    let view = view(tx, entry).await?;
    if view.completed {
        return Ok(CallAnswer::Completed { snapshot_id: run.snapshot_id, entry: view });
    }
    match run.execution_status {
        stint_types::ExecutionStatus::ExecutingWithWaitpoints | stint_types::ExecutionStatus::Suspended => {
            Ok(CallAnswer::Waiting { snapshot_id: run.snapshot_id, entry: view })
        }
        // A replay reaching a wait that is still pending (its run was queued by a stall sweep
        // before the wait completed): block on it again.
        stint_types::ExecutionStatus::Executing => {
            let blockers: Vec<WaitpointId> = entry.waitpoint_id.iter().cloned().collect();
            match waitpoints::block(tx, ctx, &run, &blockers, false, changes).await? {
                Some(next) => Ok(CallAnswer::Waiting { snapshot_id: next.snapshot_id, entry: view }),
                None => Ok(CallAnswer::Completed { snapshot_id: run.snapshot_id, entry: view }),
            }
        }
        _ => Ok(CallAnswer::Stale),
    }
}

/// A child's trigger from a waiting parent: its parent is the waiting run, and it runs on the
/// parent's version unless it names one.
fn as_child(mut params: TriggerParams, parent: &RunRow) -> TriggerParams {
    params.parent_run_id = Some(parent.id.clone());
    if params.lock_to_version.is_none() {
        params.lock_to_version = parent.version.clone();
    }
    params
}

/// Refuses a wait on the waiting run itself or on one of its ancestors (a trigger whose
/// idempotency key named such a run): neither could finish before the waiter does.
async fn check_not_waiting_on_itself(tx: &mut dyn Tx, run: &RunRow, target: &RunId) -> Result<(), Error> {
    let mut ancestor = Some(run.id.clone());
    for _ in 0..MAX_ANCESTORS {
        let Some(id) = ancestor else { return Ok(()) };
        if &id == target {
            return Err(Error::Invalid(format!(
                "RECURSIVE_WAIT_DEADLOCK: run {} cannot wait for run {target}, which {}",
                run.id,
                if target == &run.id { "is itself" } else { "is waiting for it" }
            )));
        }
        ancestor = tx.run_get(&id).await?.and_then(|r| r.parent_run_id);
    }
    Ok(())
}

/// Whether a parent waiting for `child` must give its slot up at once: the child waits in the
/// parent's own queue and lane, which has no free slot while the parent holds one.
async fn needs_the_slot(tx: &mut dyn Tx, parent: &RunRow, child: &RunRow) -> Result<bool, Error> {
    if child.queue_id != parent.queue_id || child.concurrency_key != parent.concurrency_key || child.status.is_final() {
        return Ok(false);
    }
    let Some(queue) = tx.queue_get(&parent.queue_id).await? else { return Ok(false) };
    let Some(limit) = queue.limit() else { return Ok(false) };
    let running = match &parent.concurrency_key {
        None => queue.running.saturating_sub(queue.keyed_running),
        Some(key) => tx.lane_running(&queue.id).await?.into_iter().find(|(k, _)| k == key).map_or(0, |(_, n)| n),
    };
    Ok(running >= limit)
}

/// What a wait is, as the journal names it.
fn describe(wait: &Wait) -> (JournalKind, String) {
    match wait {
        Wait::Until(until) => (JournalKind::Wait, until.to_rfc3339()),
        Wait::Token(id) => (JournalKind::Token, id.to_string()),
        Wait::Run(params) => (JournalKind::Run, params.task_id.clone()),
        Wait::Batch(items) => (JournalKind::Batch, items.len().to_string()),
    }
}

/// The message of a replay calling something else than the journal recorded.
fn mismatch(entry: &JournalRow, kind: JournalKind, name: &str) -> String {
    format!(
        "non-deterministic replay at durable call {}: the journal recorded {} \"{}\", the task called {} \"{}\"",
        entry.seq, entry.kind, entry.name, kind, name
    )
}

/// The journal's entry at `seq`.
async fn entry_at(tx: &mut dyn Tx, run_id: &RunId, seq: u32) -> Result<Option<JournalRow>, Error> {
    Ok(tx.journal_list(run_id).await?.into_iter().find(|row| row.seq == seq))
}

/// A run's journal with the results known so far.
pub(crate) async fn views(tx: &mut dyn Tx, run_id: &RunId) -> Result<Vec<JournalView>, Error> {
    let mut out = Vec::new();
    for row in tx.journal_list(run_id).await? {
        out.push(view(tx, &row).await?);
    }
    Ok(out)
}

/// The entry at `seq` of a run's journal, with its result if known.
pub(crate) async fn view_at(tx: &mut dyn Tx, run_id: &RunId, seq: u32) -> Result<Option<JournalView>, Error> {
    match entry_at(tx, run_id, seq).await? {
        Some(row) => Ok(Some(view(tx, &row).await?)),
        None => Ok(None),
    }
}

/// An entry with its result if known.
async fn view(tx: &mut dyn Tx, row: &JournalRow) -> Result<JournalView, Error> {
    let mut view = JournalView {
        seq: row.seq,
        kind: row.kind,
        name: row.name.clone(),
        completed: false,
        output: None,
        is_error: false,
        waitpoint_id: row.waitpoint_id.clone(),
    };
    if row.kind == JournalKind::Step {
        view.completed = true;
        view.output = Some(parse(row.output.as_deref()));
        return Ok(view);
    }
    let waitpoint: Option<WaitpointRow> = match &row.waitpoint_id {
        Some(id) => tx.waitpoint_get(id).await?,
        None => None,
    };
    let Some(waitpoint) = waitpoint.filter(|w| w.status == WaitpointStatus::Completed) else { return Ok(view) };
    match row.kind {
        JournalKind::Wait => {
            view.completed = true;
            view.output = Some(Value::Null);
        }
        JournalKind::Token => {
            view.completed = true;
            view.output = Some(parse(waitpoint.output.as_deref()));
            view.is_error = waitpoint.output_is_error;
        }
        JournalKind::Run => {
            let Some(child) = &row.child_run_id else { return Ok(view) };
            let Some(child) = tx.run_get(child).await? else { return Ok(view) };
            view.completed = true;
            view.output = Some(run_result(&child));
        }
        JournalKind::Batch => {
            let Some(batch_id) = &row.batch_id else { return Ok(view) };
            let items = tx.batch_items(batch_id).await?;
            let ids: Vec<RunId> = items.iter().map(|item| item.run_id.clone()).collect();
            let runs = tx.run_get_many(&ids).await?;
            let mut results = Vec::with_capacity(items.len());
            for item in &items {
                match runs.iter().find(|run| run.id == item.run_id) {
                    // A cached item's run that has not finished yet: the batch is not done.
                    Some(run) if run.status.is_final() => results.push(run_result(run)),
                    _ => return Ok(view),
                }
            }
            view.completed = true;
            view.output = Some(json!({"id": batch_id.to_string(), "runs": results}));
        }
        JournalKind::Step => unreachable!("handled above"),
    }
    Ok(view)
}

/// A finished child run as its waiting parent gets it (`stint_protocol::durable::RunResult`).
fn run_result(run: &RunRow) -> Value {
    let ok = run.status == RunStatus::Completed;
    let mut result = json!({
        "id": run.id.to_string(),
        "taskIdentifier": run.task_id,
        "ok": ok,
        "status": run.status.as_str(),
    });
    if ok {
        result["output"] = parse(run.output.as_deref());
    } else {
        let error = run.error.clone().unwrap_or(TaskRunError::StringError { raw: format!("run ended {}", run.status) });
        result["error"] = serde_json::to_value(error).unwrap_or(Value::Null);
    }
    result
}

/// Stored JSON text as a value; text that is not JSON as a string.
fn parse(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())),
    }
}
