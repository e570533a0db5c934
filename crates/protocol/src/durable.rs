//! The worker protocol's durable-execution calls: recording a step, waiting, and going on after
//! a wait. `docs/worker-protocol.md` and `docs/durable-execution.md` describe the exchange.
//!
//! Every call names the run and carries the snapshot id the worker holds, and the place (`seq`,
//! from 0) of the durable call in the task's call order. A run's journal holds one entry per
//! place; a call at a place the journal has already is answered from the journal, so a call sent
//! again after a lost answer does nothing twice.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stint_types::{JournalKind, RunStatus, TaskRunError};

use crate::api::TriggerOptions;
use crate::batches::BatchTriggerItem;

/// One durable call of a run, as a dequeued run carries its journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Its place in the task's call order, from 0.
    pub seq: u32,
    /// The kind of call.
    pub kind: JournalKind,
    /// What the call was: a step's name, a token's id, a child's task, a wait's time (RFC 3339),
    /// a batch's item count. A replay calling something else at this place is non-deterministic.
    pub name: String,
    /// Whether the result is known: always for a step, for a wait once its waitpoint completed.
    pub completed: bool,
    /// The result, once completed: a step's output; `null` for a wait of time; a token's data
    /// (or, timed out, `{"code": "TRIGGER_WAITPOINT_TIMEOUT", "message": …}` with `isError`); a
    /// child run's [`RunResult`]; a batch's [`BatchResult`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Whether `output` is an error: a token that timed out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// The waitpoint a wait waits on (`waitpoint_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waitpoint_id: Option<String>,
}

/// How a child run ended, as a parent waiting on it gets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The child run's id.
    pub id: String,
    /// The task it ran.
    pub task_identifier: String,
    /// Whether it completed successfully.
    pub ok: bool,
    /// Its final status.
    pub status: RunStatus,
    /// Its output, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Its error, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskRunError>,
}

/// How a batch of child runs ended: one result per item, in item order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// The batch's id.
    pub id: String,
    /// The items' results, in item order.
    pub runs: Vec<RunResult>,
}

/// `POST /api/v1/workers/{workerId}/runs/{runId}/steps`: a step succeeded; record its output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepRequest {
    /// The snapshot id the worker holds.
    pub snapshot_id: String,
    /// The step's place in the call order.
    pub seq: u32,
    /// The step's name.
    pub name: String,
    /// What the step returned.
    #[serde(default)]
    pub output: Value,
}

/// `POST /api/v1/workers/{workerId}/runs/{runId}/waits`: block the run on something and wait.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitRequest {
    /// The snapshot id the worker holds.
    pub snapshot_id: String,
    /// The wait's place in the call order.
    pub seq: u32,
    /// What to wait for.
    pub wait: Wait,
}

/// What a run waits for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
#[allow(clippy::large_enum_variant, reason = "a request body, made once per wait call")]
pub enum Wait {
    /// A point in time (`ctx.wait_for`, `ctx.wait_until`).
    Until {
        /// The time, RFC 3339.
        until: String,
    },
    /// A token made through the API (`ctx.wait_for_token`).
    Token {
        /// The token's id, `waitpoint_…`.
        id: String,
    },
    /// A child run, triggered by this call (`trigger_and_wait`): locked to the parent's version,
    /// its parent the waiting run.
    Run {
        /// The task to run.
        task: String,
        /// Its payload.
        #[serde(default)]
        payload: Value,
        /// Its trigger options.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<TriggerOptions>,
    },
    /// A batch of child runs, triggered by this call (`batch_trigger_and_wait`).
    Batch {
        /// The items, 1 to 1,000.
        items: Vec<BatchTriggerItem>,
    },
}

/// What became of a step or a wait call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallOutcome {
    /// Recorded (a step), or the wait's result is known already: go on, `entry` holds it.
    Completed,
    /// The run is blocked (`EXECUTING_WITH_WAITPOINTS`) under `snapshotId`; ask `continue`.
    Waiting,
    /// The journal has another call at this place: the task is not deterministic. `error` says
    /// what was recorded.
    Mismatch,
    /// The worker no longer holds the run at that snapshot; stop the attempt.
    Stale,
}

/// Response of a step or a wait call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallResponse {
    /// What happened.
    pub outcome: CallOutcome,
    /// The snapshot id the worker holds from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The journal's entry at this place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<JournalEntry>,
    /// What is wrong, for `MISMATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /api/v1/workers/{workerId}/runs/{runId}/continue`: wait for the run's waitpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContinueRequest {
    /// The snapshot id the worker holds (the blocked one).
    pub snapshot_id: String,
    /// The place of the wait in the call order, whose entry the answer carries.
    pub seq: u32,
    /// How long the server may hold the call when the run is still blocked, in ms (0–30000).
    #[serde(default)]
    pub wait_ms: u64,
}

/// What the worker does next with a blocked attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContinueAction {
    /// The waitpoints completed while the attempt was alive: go on in place under `snapshotId`
    /// with the result in `entry`.
    Continue,
    /// Still blocked: ask again.
    Wait,
    /// The run waited longer than the server's suspend threshold and is now `SUSPENDED`: its
    /// slot is free. End the attempt without a completion; the run is queued again when its
    /// waitpoints complete and any worker replays it.
    Suspend,
    /// The worker no longer holds the run; stop the attempt and drop its result.
    Stop,
}

/// Response of a continue call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinueResponse {
    /// What to do.
    pub action: ContinueAction,
    /// The snapshot id to hold from now on, for `CONTINUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The journal's entry of the wait, completed, for `CONTINUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<JournalEntry>,
}
