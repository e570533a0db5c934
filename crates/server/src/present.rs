//! Runs, waitpoint tokens and journals as the API shows them, in Trigger.dev's shapes.

use serde_json::Value;
use stint_engine::{JournalView, Related};
use stint_protocol::api::{RelatedRun, RelatedRuns, RunCommon, RunEnvironment, RunListItem, RunObject};
use stint_protocol::durable::JournalEntry;
use stint_protocol::schedules::RunSchedule;
use stint_protocol::waitpoints::TokenObject;
use stint_protocol::worker::DequeuedRun;
use stint_store::{EnvironmentRow, RunRow, WaitpointRow};
use stint_types::{RunStatus, WaitpointStatus, duration};

/// Stored data back as JSON: parsed when it is JSON, a string otherwise.
pub fn decode(data: &str, content_type: &str) -> Value {
    if content_type == "application/json" {
        serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
    } else {
        Value::String(data.to_string())
    }
}

fn common(run: &RunRow) -> RunCommon {
    let status = run.status;
    RunCommon {
        id: run.id.to_string(),
        status,
        task_identifier: run.task_id.clone(),
        idempotency_key: run.idempotency_key.clone(),
        version: run.version.clone(),
        is_queued: status.is_queued(),
        is_executing: status.is_executing(),
        is_waiting: status.is_waiting(),
        is_completed: status.is_completed(),
        is_success: status.is_success(),
        is_failed: status.is_failed(),
        is_cancelled: status.is_cancelled(),
        is_test: run.is_test,
        created_at: run.created_at.to_rfc3339(),
        updated_at: run.updated_at.to_rfc3339(),
        started_at: run.started_at.map(|t| t.to_rfc3339()),
        finished_at: run.finished_at.map(|t| t.to_rfc3339()),
        delayed_until: run.delay_until.map(|t| t.to_rfc3339()),
        ttl: run.ttl_secs.map(|secs| duration::format(secs.into())),
        expired_at: run.finished_at.filter(|_| status == RunStatus::Expired).map(|t| t.to_rfc3339()),
        tags: run.tags.clone(),
        cost_in_cents: 0.0,
        base_cost_in_cents: 0.0,
        duration_ms: run.duration_ms,
        metadata: run.metadata.as_deref().map(|m| decode(m, "application/json")),
        task_kind: Some("STANDARD".into()),
    }
}

/// `GET /api/v3/runs/{runId}`: the run, with its parent, root and children, and the schedule that
/// fired it, if one did.
pub fn run_object(related: &Related, schedule: Option<RunSchedule>) -> RunObject {
    let run = &related.run;
    let children: Vec<RelatedRun> = related.children.iter().map(related_run).collect();
    RunObject {
        common: common(run),
        depth: run.depth,
        trigger_function: if run.batch_id.is_some() { "batchTrigger" } else { "trigger" }.into(),
        batch_id: run.batch_id.as_ref().map(ToString::to_string),
        payload: Some(decode(&run.payload, &run.payload_type)),
        output: run.output.as_deref().map(|o| decode(o, run.output_type.as_deref().unwrap_or("application/json"))),
        error: run.error.as_ref().map(|e| e.to_serialized()),
        schedule,
        related_runs: RelatedRuns {
            root: related.root.as_ref().map(related_run),
            parent: related.parent.as_ref().map(related_run),
            children: (!children.is_empty()).then_some(children),
        },
        attempt_count: run.attempt_number,
        replayed_from: run.replayed_from.as_ref().map(ToString::to_string),
    }
}

/// A run as another's `relatedRuns` shows it.
fn related_run(run: &RunRow) -> RelatedRun {
    RelatedRun { common: common(run), depth: run.depth, trigger_function: "trigger".into() }
}

/// An entry of `GET /api/v1/runs`.
pub fn list_item(run: &RunRow, env: &EnvironmentRow) -> RunListItem {
    RunListItem { common: common(run), env: RunEnvironment { id: env.id.to_string(), name: env.kind.slug().into() } }
}

/// A run handed to a worker, with its journal when it goes on after a suspension or a failed
/// attempt.
pub fn dequeued(run: &RunRow, journal: Vec<JournalView>) -> DequeuedRun {
    DequeuedRun {
        run_id: run.id.to_string(),
        snapshot_id: run.snapshot_id.to_string(),
        task_identifier: run.task_id.clone(),
        attempt_number: run.attempt_number,
        max_attempts: run.retry.map_or(1, |r| r.max_attempts),
        payload: decode(&run.payload, &run.payload_type),
        payload_type: run.payload_type.clone(),
        tags: run.tags.clone(),
        metadata: run.metadata.as_deref().map(|m| decode(m, "application/json")),
        queue: run.queue_name.clone(),
        concurrency_key: run.concurrency_key.clone(),
        max_duration: run.max_duration,
        is_test: run.is_test,
        created_at: run.created_at.to_rfc3339(),
        journal: journal.into_iter().map(journal_entry).collect(),
    }
}

/// A journal entry as the worker protocol carries it.
pub fn journal_entry(view: JournalView) -> JournalEntry {
    JournalEntry {
        seq: view.seq,
        kind: view.kind,
        name: view.name,
        completed: view.completed,
        output: view.output,
        is_error: view.is_error,
        waitpoint_id: view.waitpoint_id.map(|id| id.to_string()),
    }
}

/// A token's public status: `WAITING` until completed, then `TIMED_OUT` if its output is the
/// timeout's error, else `COMPLETED`.
pub fn token_status(token: &WaitpointRow) -> &'static str {
    match token.status {
        WaitpointStatus::Pending => "WAITING",
        WaitpointStatus::Completed if token.output_is_error => "TIMED_OUT",
        WaitpointStatus::Completed => "COMPLETED",
    }
}

/// A token as `GET /api/v1/waitpoints/tokens/{id}` (`with_output`) and the token list show it,
/// with its callback URL. The idempotency key shown is the creator's, also after it expired; a
/// token made without one shows none.
pub fn token_object(token: &WaitpointRow, url: String, with_output: bool) -> TokenObject {
    let mut tags = token.tags.clone();
    tags.sort();
    let completed = token.status == WaitpointStatus::Completed;
    TokenObject {
        id: token.id.to_string(),
        url,
        status: token_status(token).into(),
        completed_at: token.completed_at.map(|t| t.to_rfc3339()),
        timeout_at: token.completed_after.map(|t| t.to_rfc3339()),
        idempotency_key: token
            .user_key
            .then(|| token.inactive_idempotency_key.clone().unwrap_or_else(|| token.idempotency_key.clone())),
        idempotency_key_expires_at: token.idempotency_key_expires_at.filter(|_| token.user_key).map(|t| t.to_rfc3339()),
        tags,
        created_at: token.created_at.to_rfc3339(),
        output: token.output.clone().filter(|_| with_output),
        output_type: token.output_type.clone().filter(|_| with_output),
        output_is_error: (with_output && completed).then_some(token.output_is_error),
    }
}
