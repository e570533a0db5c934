//! The engine's durable-execution methods: waitpoint tokens, waits of runs, steps, and going on
//! after a wait (see `systems/waitpoints.rs` and `systems/journal.rs`).

use std::collections::HashMap;
use std::time::Duration;

use stint_store::{EnvironmentRow, RunRow, StoreExt, Tx, WaitpointListParams, WaitpointRow, WorkerRow};
use stint_types::{ExecutionStatus, JournalKind, RunId, SnapshotId, Timestamp, WaitpointId, WaitpointKind};

use crate::Error;
use crate::shell::{Engine, visible_run};
use crate::systems::trigger::TriggerParams;
use crate::systems::{journal, waitpoints};

/// The name of the secret that signs token callback URLs.
const CALLBACK_SECRET: &str = "waitpoint-callback";
/// Longest a continue call waits between looks at the database, for completions made on other
/// nodes whose signal was lost.
const CONTINUE_RECHECK: Duration = Duration::from_secs(1);

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
#[allow(clippy::large_enum_variant, reason = "made once per wait call and consumed at once")]
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
        let env = env.clone();
        self.write(move |tx, ctx, _| {
            Box::pin(async move { waitpoints::create_token(tx, &ctx.ids, ctx.now, &env, params).await })
        })
        .await
    }

    /// A token of `env`; another environment's, or a waitpoint that is not a token, is not found.
    pub async fn wait_token(&self, env: &EnvironmentRow, id: &WaitpointId) -> Result<WaitpointRow, Error> {
        let (env, id) = (env.clone(), id.clone());
        self.store.read(move |tx| Box::pin(async move { waitpoints::token_of(tx, &env, &id).await })).await
    }

    /// The tokens of `env` matching the filters, newest first.
    pub async fn wait_tokens(
        &self,
        env: &EnvironmentRow,
        mut params: WaitpointListParams,
    ) -> Result<Vec<WaitpointRow>, Error> {
        params.env_id = Some(env.id.clone());
        self.store.read(move |tx| Box::pin(async move { Ok::<_, Error>(tx.waitpoint_list(&params).await?) })).await
    }

    /// Completes a token of `env` with `data` (JSON text) and resumes the runs waiting on it;
    /// true if it was waiting, false if it was completed already (nothing changes).
    pub async fn complete_wait_token(
        &self,
        env: &EnvironmentRow,
        id: &WaitpointId,
        data: Option<String>,
    ) -> Result<bool, Error> {
        let (env, id) = (env.clone(), id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                waitpoints::token_of(tx, &env, &id).await?;
                waitpoints::complete(tx, ctx, &id, data.as_deref(), false, changes).await
            })
        })
        .await
    }

    /// [`Engine::complete_wait_token`] for a token whose callback URL the caller has checked: the
    /// environment is the token's own.
    pub async fn complete_wait_token_by_callback(&self, id: &WaitpointId, data: Option<String>) -> Result<bool, Error> {
        let id = id.clone();
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                match tx.waitpoint_get(&id).await? {
                    Some(row) if row.kind == WaitpointKind::Manual => {}
                    _ => return Err(Error::NotFound(format!("Waitpoint token {id} not found"))),
                }
                waitpoints::complete(tx, ctx, &id, data.as_deref(), false, changes).await
            })
        })
        .await
    }

    /// The instance's secret for signing token callback URLs (HMAC-SHA256), made at first use.
    pub async fn signing_secret(&self) -> Result<String, Error> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        self.store
            .write(move |tx| {
                Box::pin(async move { Ok::<_, Error>(tx.secret_get_or_insert(CALLBACK_SECRET, &fresh).await?) })
            })
            .await
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
        let (env, run_id) = (env.clone(), run_id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                let run = executing_run(tx, &env, &run_id).await?;
                let key = idempotency.as_ref().map(|(key, ttl)| (key.as_str(), *ttl));
                let mut row = waitpoints::new_waitpoint(&ctx.ids, ctx.now, &env.id, WaitpointKind::Datetime, key);
                row.completed_after = Some(until);
                if until <= ctx.now {
                    row.status = stint_types::WaitpointStatus::Completed;
                    row.completed_at = Some(ctx.now);
                }
                let (waitpoint, _) = waitpoints::insert_keyed(tx, &ctx.ids, ctx.now, row).await?;
                waitpoints::block(tx, ctx, &run, std::slice::from_ref(&waitpoint.id), false, changes).await?;
                Ok(waitpoint)
            })
        })
        .await
    }

    /// Blocks the executing run `run_id` of `env` on a token of `env` (Trigger.dev's
    /// `/engine/v1/runs/{runId}/waitpoints/tokens/{id}/wait`).
    pub async fn block_on_token(&self, env: &EnvironmentRow, run_id: &RunId, token: &WaitpointId) -> Result<(), Error> {
        let (env, run_id, token) = (env.clone(), run_id.clone(), token.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                let token = waitpoints::token_of(tx, &env, &token).await?;
                let run = executing_run(tx, &env, &run_id).await?;
                waitpoints::block(tx, ctx, &run, std::slice::from_ref(&token.id), false, changes).await?;
                Ok(())
            })
        })
        .await
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
        let (worker, run_id, snapshot_id) = (worker.clone(), run_id.clone(), snapshot_id.clone());
        self.write(move |tx, ctx, _| {
            Box::pin(async move {
                let call = journal::Call { worker: &worker, run_id: &run_id, snapshot_id: &snapshot_id, seq };
                journal::record_step(tx, ctx, call, name, output).await
            })
        })
        .await
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
        let (worker, run_id, snapshot_id) = (worker.clone(), run_id.clone(), snapshot_id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                let call = journal::Call { worker: &worker, run_id: &run_id, snapshot_id: &snapshot_id, seq };
                journal::wait(tx, ctx, call, wait, changes).await
            })
        })
        .await
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
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.local.runs.watch(run_id);
        let answer = loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (worker_, run_id_) = (worker.clone(), run_id.clone());
            let run =
                self.store
                    .read(move |tx| {
                        Box::pin(async move {
                            Ok::<_, Error>(tx.run_get(&run_id_).await?.filter(|run| {
                                worker_.serves(&run.env_id) && run.worker_id.as_ref() == Some(&worker_.id)
                            }))
                        })
                    })
                    .await?;
            let Some(run) = run else { break Continuation::Stop };
            let blocked_for = self.now().millis() - run.updated_at.millis();
            match run.execution_status {
                ExecutionStatus::ExecutingWithWaitpoints if &run.snapshot_id == snapshot_id => {
                    let threshold = i64::try_from(self.config().suspend_after.as_millis()).unwrap_or(i64::MAX);
                    if blocked_for >= threshold {
                        match self.suspend_blocked(run).await {
                            Ok(()) => break Continuation::Suspend,
                            Err(Error::Stale { .. }) => continue,
                            Err(error) => break Err(error)?,
                        }
                    }
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        break Continuation::Wait;
                    }
                    let until_threshold = Duration::from_millis(u64::try_from(threshold - blocked_for).unwrap_or(0));
                    let nap = (deadline - now).min(until_threshold).min(CONTINUE_RECHECK);
                    let _ = tokio::time::timeout(nap, notified).await;
                }
                ExecutionStatus::Executing if &run.snapshot_id != snapshot_id => {
                    let run_id = run.id.clone();
                    let entry = self
                        .store
                        .read(move |tx| Box::pin(async move { journal::view_at(tx, &run_id, seq).await }))
                        .await?;
                    break match entry {
                        Some(entry) if entry.completed => {
                            Continuation::Continue { snapshot_id: run.snapshot_id, entry }
                        }
                        _ => Continuation::Stop,
                    };
                }
                // Suspended by a stall sweep, or already queued to resume: this attempt is over.
                ExecutionStatus::Suspended => break Continuation::Suspend,
                ExecutionStatus::Queued if run.resuming => break Continuation::Suspend,
                // A cancel reaches the worker through its heartbeat.
                ExecutionStatus::PendingCancel => {
                    if tokio::time::Instant::now() >= deadline {
                        break Continuation::Wait;
                    }
                    let _ =
                        tokio::time::timeout((deadline - tokio::time::Instant::now()).min(CONTINUE_RECHECK), notified)
                            .await;
                }
                _ => break Continuation::Stop,
            }
        };
        self.local.runs.unwatch(run_id, notify);
        Ok(answer)
    }

    /// Suspends a blocked run whose attempt is alive, fenced on the snapshot it was read at.
    async fn suspend_blocked(&self, run: RunRow) -> Result<(), Error> {
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                waitpoints::suspend(
                    tx,
                    ctx,
                    &run,
                    "Blocked longer than the suspend threshold; attempt suspended",
                    changes,
                )
                .await
            })
        })
        .await
    }

    /// The journals of those of `runs` (just dequeued) that go on after a suspension or a failed
    /// attempt; a first attempt has none.
    pub async fn journals(&self, runs: &[RunRow]) -> Result<HashMap<RunId, Vec<JournalView>>, Error> {
        let again: Vec<RunId> = runs
            .iter()
            .filter(|run| run.attempt_number > 1 || run.started_at != run.attempt_started_at)
            .map(|run| run.id.clone())
            .collect();
        if again.is_empty() {
            return Ok(HashMap::new());
        }
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    let mut journals = HashMap::new();
                    for run_id in again {
                        let views = journal::views(tx, &run_id).await?;
                        if !views.is_empty() {
                            journals.insert(run_id, views);
                        }
                    }
                    Ok::<_, Error>(journals)
                })
            })
            .await
    }
}

/// The run `run_id` of `env`, which must be executing an attempt (blocked or not).
async fn executing_run(tx: &mut dyn Tx, env: &EnvironmentRow, run_id: &RunId) -> Result<RunRow, Error> {
    let run = visible_run(tx, env, run_id).await?;
    if !matches!(run.execution_status, ExecutionStatus::Executing | ExecutionStatus::ExecutingWithWaitpoints) {
        return Err(Error::Invalid(format!(
            "Run {run_id} is not executing an attempt (it is {}); only an executing run can wait",
            run.execution_status
        )));
    }
    Ok(run)
}
