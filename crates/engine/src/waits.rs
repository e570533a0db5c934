//! The engine's durable-execution methods: waitpoint tokens, waits of runs, steps, and going on
//! after a wait (see `systems/waitpoints.rs` and `systems/journal.rs`).

use std::collections::HashMap;
use std::time::Duration;

use stint_store::{EnvironmentRow, RunRow, WaitpointListParams, WaitpointRow, WorkerRow};
use stint_types::{JournalKind, RunId, SnapshotId, Timestamp, WaitpointId};

use crate::Error;
use crate::shell::Engine;
use crate::systems::trigger::TriggerParams;

/// A token to make (`POST /api/v1/waitpoints/tokens`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenParams {
    /// A key: a create with a key the environment's live token holds answers that token.
    pub idempotency_key: Option<String>,
    /// How long the key holds; for ever when `None`.
    pub idempotency_key_ttl: Option<Duration>,
    /// When the token times out, completed with `TRIGGER_WAITPOINT_TIMEOUT`; never when `None`.
    pub timeout: Option<Timestamp>,
    /// Normalised tags, at most 10.
    pub tags: Vec<String>,
}

/// A token made, or found by its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCreated {
    /// The token.
    pub waitpoint: WaitpointRow,
    /// Whether its key named an existing token.
    pub cached: bool,
}

/// What a run waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// A point in time.
    Until(Timestamp),
    /// A token of the run's environment.
    Token(WaitpointId),
    /// A child run, triggered by the wait.
    Run(TriggerParams),
    /// A batch of child runs, triggered by the wait.
    Batch(Vec<TriggerParams>),
}

/// One durable call of a run, with its result once known.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalView {
    /// Its place in call order, from 0.
    pub seq: u32,
    /// The kind of call.
    pub kind: JournalKind,
    /// What the call was.
    pub name: String,
    /// Whether the result is known.
    pub completed: bool,
    /// The result (see `stint_protocol::durable::JournalEntry::output`).
    pub output: Option<serde_json::Value>,
    /// Whether `output` is an error (a token that timed out).
    pub is_error: bool,
    /// The waitpoint of a wait.
    pub waitpoint_id: Option<WaitpointId>,
}

/// What became of a step or a wait call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAnswer {
    /// The result is known: go on under `snapshot_id`.
    Completed {
        /// The snapshot the worker holds from now on.
        snapshot_id: SnapshotId,
        /// The journal's entry, completed.
        entry: JournalView,
    },
    /// The run is blocked under `snapshot_id`.
    Waiting {
        /// The blocked snapshot.
        snapshot_id: SnapshotId,
        /// The journal's entry, not completed.
        entry: JournalView,
    },
    /// The journal has another call at this place; the message says which.
    Mismatch(String),
    /// The worker no longer holds the run at that snapshot.
    Stale,
}

/// What a worker does next with a blocked attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Continuation {
    /// The waitpoints completed: go on in place.
    Continue {
        /// The snapshot the worker holds from now on.
        snapshot_id: SnapshotId,
        /// The wait's journal entry, completed.
        entry: JournalView,
    },
    /// Still blocked: ask again.
    Wait,
    /// Suspended: end the attempt without a completion.
    Suspend,
    /// No longer the worker's.
    Stop,
}

impl Engine {
    /// Makes a token in `env`, or finds the live one its idempotency key names.
    pub async fn create_wait_token(&self, env: &EnvironmentRow, params: TokenParams) -> Result<TokenCreated, Error> {
        let _ = (env, params);
        todo!()
    }

    /// A token of `env`; another environment's, or a waitpoint that is not a token, is not found.
    pub async fn wait_token(&self, env: &EnvironmentRow, id: &WaitpointId) -> Result<WaitpointRow, Error> {
        let _ = (env, id);
        todo!()
    }

    /// The tokens of `env` matching the filters, newest first.
    pub async fn wait_tokens(&self, env: &EnvironmentRow, params: WaitpointListParams) -> Result<Vec<WaitpointRow>, Error> {
        let _ = (env, params);
        todo!()
    }

    /// Completes a token of `env` with `data` (JSON text) and resumes the runs waiting on it;
    /// true if it was waiting, false if it was completed already (nothing changes).
    pub async fn complete_wait_token(
        &self,
        env: &EnvironmentRow,
        id: &WaitpointId,
        data: Option<String>,
    ) -> Result<bool, Error> {
        let _ = (env, id, data);
        todo!()
    }

    /// [`Engine::complete_wait_token`] for a token whose callback URL the caller has checked: the
    /// environment is the token's own.
    pub async fn complete_wait_token_by_callback(&self, id: &WaitpointId, data: Option<String>) -> Result<bool, Error> {
        let _ = (id, data);
        todo!()
    }

    /// The instance's secret for signing token callback URLs (HMAC-SHA256), made at first use.
    pub async fn signing_secret(&self) -> Result<String, Error> {
        todo!()
    }

    /// Blocks the executing run `run_id` of `env` until `until` (Trigger.dev's
    /// `/engine/v1/runs/{runId}/wait/duration`), or finds the live wait `idempotency` names.
    pub async fn wait_for_duration(
        &self,
        env: &EnvironmentRow,
        run_id: &RunId,
        until: Timestamp,
        idempotency: Option<(String, Option<Duration>)>,
    ) -> Result<WaitpointRow, Error> {
        let _ = (env, run_id, until, idempotency);
        todo!()
    }

    /// Blocks the executing run `run_id` of `env` on a token of `env` (Trigger.dev's
    /// `/engine/v1/runs/{runId}/waitpoints/tokens/{id}/wait`).
    pub async fn block_on_token(&self, env: &EnvironmentRow, run_id: &RunId, token: &WaitpointId) -> Result<(), Error> {
        let _ = (env, run_id, token);
        todo!()
    }

    /// Records the output (JSON text) of a step of a run `worker` executes at `snapshot_id`.
    pub async fn record_step(
        &self,
        worker: &WorkerRow,
        run_id: &RunId,
        snapshot_id: &SnapshotId,
        seq: u32,
        name: String,
        output: String,
    ) -> Result<CallAnswer, Error> {
        let _ = (worker, run_id, snapshot_id, seq, name, output);
        todo!()
    }

    /// Blocks a run `worker` executes at `snapshot_id` on `wait`, recorded at `seq` of its
    /// journal; a wait whose result is known at once does not block.
    pub async fn wait(
        &self,
        worker: &WorkerRow,
        run_id: &RunId,
        snapshot_id: &SnapshotId,
        seq: u32,
        wait: Wait,
    ) -> Result<CallAnswer, Error> {
        let _ = (worker, run_id, snapshot_id, seq, wait);
        todo!()
    }

    /// Waits up to `wait` for a blocked run `worker` holds at `snapshot_id` to be unblocked, and
    /// suspends it once it has been blocked longer than the configured threshold.
    pub async fn await_continue(
        &self,
        worker: &WorkerRow,
        run_id: &RunId,
        snapshot_id: &SnapshotId,
        seq: u32,
        wait: Duration,
    ) -> Result<Continuation, Error> {
        let _ = (worker, run_id, snapshot_id, seq, wait);
        todo!()
    }

    /// The journals of those of `runs` (just dequeued) that go on after a suspension or a failed
    /// attempt; a first attempt has none.
    pub async fn journals(&self, runs: &[RunRow]) -> Result<HashMap<RunId, Vec<JournalView>>, Error> {
        let _ = runs;
        todo!()
    }
}
