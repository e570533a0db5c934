//! Rows of waitpoints, the edges that block runs on them, and runs' journals.

use stint_types::{BatchId, EnvId, JournalKind, RunId, Timestamp, WaitpointId, WaitpointKind, WaitpointStatus};

/// Something runs can wait for. Unique per environment by `idempotency_key`.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitpointRow {
    /// Its id.
    pub id: WaitpointId,
    /// The environment it belongs to.
    pub env_id: EnvId,
    /// What completes it.
    pub kind: WaitpointKind,
    /// Whether it is completed.
    pub status: WaitpointStatus,
    /// Unique in the environment: the key its creator gave, or a random one.
    pub idempotency_key: String,
    /// Whether its creator gave the key: `idempotency_key`, or `inactive_idempotency_key` once
    /// the key was retired.
    pub user_key: bool,
    /// When a creator's key stops answering this waitpoint; never when `None`.
    pub idempotency_key_expires_at: Option<Timestamp>,
    /// The creator's key after it expired and was replaced by a random one.
    pub inactive_idempotency_key: Option<String>,
    /// For `RUN`: the run whose finishing completes it. Unique among `RUN` waitpoints.
    pub completed_by_run_id: Option<RunId>,
    /// For `BATCH`: the batch whose finishing completes it. Unique among `BATCH` waitpoints.
    pub completed_by_batch_id: Option<BatchId>,
    /// For `DATETIME`: when it is completed; for `MANUAL`: when it times out, if ever.
    pub completed_after: Option<Timestamp>,
    /// When it was completed.
    pub completed_at: Option<Timestamp>,
    /// What it was completed with, as stored text (JSON for `application/json`).
    pub output: Option<String>,
    /// The output's content type.
    pub output_type: Option<String>,
    /// Whether the output is an error (a run that failed, a token that timed out).
    pub output_is_error: bool,
    /// Tags (tokens only), at most 10.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// Filters and page of a listing of an environment's `MANUAL` waitpoints (tokens), newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitpointListParams {
    /// The environment.
    pub env_id: Option<EnvId>,
    /// Only pending or only completed ones.
    pub status: Option<WaitpointStatus>,
    /// Only completed ones whose output is (or is not) an error: a timed-out token is completed
    /// with an error.
    pub is_error: Option<bool>,
    /// Only the one holding this key as its creator's (`user_key`); a retired key matches none.
    pub idempotency_key: Option<String>,
    /// Only those with any of these tags; all when empty.
    pub tags: Vec<String>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created at or before.
    pub created_to: Option<Timestamp>,
    /// Only those older than this id (the next page).
    pub after: Option<WaitpointId>,
    /// Only those newer than this id (the previous page).
    pub before: Option<WaitpointId>,
    /// Most rows to return.
    pub limit: u32,
}

/// One durable call of a run, at its place in call order.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    /// The run.
    pub run_id: RunId,
    /// Its place in the run's call order, from 0; unique per run.
    pub seq: u32,
    /// The kind of call.
    pub kind: JournalKind,
    /// What the call was: a step's name, a token's id, a child's task, a wait's time.
    pub name: String,
    /// The waitpoint a wait, token, run or batch entry waits on.
    pub waitpoint_id: Option<WaitpointId>,
    /// A step's output (JSON text); waits take their result from their waitpoint.
    pub output: Option<String>,
    /// The child run of a `RUN` entry.
    pub child_run_id: Option<RunId>,
    /// The batch of a `BATCH` entry.
    pub batch_id: Option<BatchId>,
    /// When it was recorded.
    pub created_at: Timestamp,
}
