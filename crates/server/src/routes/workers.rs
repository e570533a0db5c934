//! The worker protocol (`docs/worker-protocol.md`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use stint_engine::{
    CallAnswer, Completed, Completion, Continuation, DeclaredSchedule, HeartbeatVerdict, HeldUpdate, Outcome, TaskSpec,
};
use stint_protocol::api::TriggerRequest;
use stint_protocol::durable::{
    CallOutcome, CallResponse, ContinueAction, ContinueRequest, ContinueResponse, StepRequest, Wait, WaitRequest,
};
use stint_protocol::worker::{
    AttemptOutcome, CompleteRequest, CompleteResponse, CompletionOutcome, CompletionResult, DequeueRequest,
    DequeueResponse, EnvironmentVersion, HeartbeatAction, HeartbeatRequest, HeartbeatResponse, MetadataOutcome,
    MetadataRequest, MetadataResponse, MetadataResult, RegisterRequest, RegisterResponse, RunAction,
    ScheduleDeclaration, SnapshotRef,
};
use stint_store::{EnvironmentRow, WorkerRow};
use stint_types::{EnvironmentType, ErrorCode, RunId, SnapshotId, TaskRunError, Timestamp, WaitpointId, WorkerId};

use crate::AppState;
use crate::auth::{ACCESS_TOKEN_PREFIX, Env, ProjectAccess, bearer};
use crate::error::ApiError;
use crate::json::Json;
use crate::present;
use crate::routes::batches::{item_count, item_params};
use crate::routes::runs::detached;

/// Longest a dequeue may wait for work.
const MAX_WAIT_MS: u64 = 30_000;
/// Most runs one dequeue may take.
const MAX_RUNS: u32 = 1_000;
/// Largest output of one attempt (Trigger.dev's limit).
const MAX_OUTPUT_BYTES: usize = 10 * 1024 * 1024;

/// Who calls the worker protocol: a worker of one environment with its secret key, or a worker
/// pool with a personal access token of the project whose environments it serves.
pub enum Caller {
    /// A secret key's environment.
    Env(EnvironmentRow),
    /// A personal access token's project, with its environments.
    Project(Vec<EnvironmentRow>),
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if bearer(&parts.headers).is_some_and(|token| token.starts_with(ACCESS_TOKEN_PREFIX)) {
            let ProjectAccess(project) = ProjectAccess::from_request_parts(parts, state).await?;
            let view = state.engine.project(&project.reference).await?;
            return Ok(Caller::Project(view.environments));
        }
        let Env(env) = Env::from_request_parts(parts, state).await?;
        Ok(Caller::Env(env))
    }
}

impl Caller {
    /// The environments a registration serves: the secret key's, or those named of the token's
    /// project.
    fn environments(&self, named: Option<Vec<String>>) -> Result<Vec<EnvironmentRow>, ApiError> {
        match (self, named) {
            (Caller::Env(env), None) => Ok(vec![env.clone()]),
            (Caller::Env(_), Some(_)) => Err(ApiError::invalid(
                "environments: a worker registering with a secret key serves that key's environment; \
                 register a worker pool with a personal access token (tr_pat_…)",
            )),
            (Caller::Project(_), None) => Err(ApiError::invalid(
                "environments: a worker registering with a personal access token must name the environments it \
                 serves, e.g. [\"staging\", \"prod\"]",
            )),
            (Caller::Project(envs), Some(named)) => {
                if named.is_empty() {
                    return Err(ApiError::invalid("environments: name at least one environment"));
                }
                named
                    .iter()
                    .map(|slug| {
                        envs.iter().find(|env| env.kind.slug() == slug).cloned().ok_or_else(|| {
                            ApiError::invalid(format!(
                                "environments: '{slug}' is not an environment of the project (dev, staging, prod, \
                                 preview)"
                            ))
                        })
                    })
                    .collect()
            }
        }
    }

    /// The environments the caller reaches.
    fn reach(&self) -> Vec<EnvironmentRow> {
        match self {
            Caller::Env(env) => vec![env.clone()],
            Caller::Project(envs) => envs.clone(),
        }
    }
}

/// `POST /api/v1/workers/register`.
pub async fn register(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Json(request): Json<RegisterRequest>,
) -> Result<axum::Json<RegisterResponse>, ApiError> {
    let envs = caller.environments(request.environments)?;
    let tasks = request
        .tasks
        .into_iter()
        .map(|t| {
            let schedule = t.schedule.map(|s| declared_schedule(&t.id, s)).transpose()?;
            Ok(TaskSpec {
                concurrency_limit: t.queue.as_ref().and_then(|q| q.concurrency_limit),
                combined_limit: t.queue.as_ref().and_then(|q| q.combined_concurrency_limit),
                rate_limit: t.queue.as_ref().and_then(|q| q.rate_limit).map(|r| stint_store::RateLimit {
                    limit: r.limit,
                    period_ms: r.period_ms,
                    per_key: r.per_key,
                }),
                queue: t.queue.map(|q| q.name),
                id: t.id,
                retry: t.retry,
                max_duration: t.max_duration,
                ttl_secs: t.ttl,
                schedule,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let pool = matches!(caller, Caller::Project(_));
    let worker = state.engine.register_pool(envs.clone(), request.version, tasks).await?;
    let interval = state.engine.config().heartbeat_interval();
    let version_in = |env: &EnvironmentRow| worker.version_in(&env.id).unwrap_or_default().to_string();
    Ok(axum::Json(RegisterResponse {
        worker_id: worker.id.to_string(),
        heartbeat_interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        version: (!pool).then(|| envs.first().map(version_in)).flatten(),
        versions: pool.then(|| {
            envs.iter()
                .map(|env| EnvironmentVersion { environment: env.kind.slug().to_string(), version: version_in(env) })
                .collect()
        }),
    }))
}

/// A task's declared schedule as the engine takes it, its environments named by slug. The
/// expression and time zone are the engine's to check.
fn declared_schedule(task: &str, declared: ScheduleDeclaration) -> Result<DeclaredSchedule, ApiError> {
    let environments = declared
        .environments
        .iter()
        .map(|name| name.parse::<EnvironmentType>().map(|kind| kind.slug().to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid(format!("task '{task}': schedule.environments: {e}")))?;
    Ok(DeclaredSchedule { cron: declared.cron, timezone: declared.timezone, environments })
}

/// The caller's worker: a secret key reaches the workers of its environment alone, a personal
/// access token the pools of its project's environments.
async fn worker(state: &AppState, caller: &Caller, id: &str) -> Result<WorkerRow, ApiError> {
    let id = WorkerId::parse(id).map_err(|_| ApiError::not_found(format!("Worker {id} not found; register again")))?;
    Ok(match caller {
        Caller::Env(env) => state.engine.worker(env, &id).await?,
        Caller::Project(envs) => state.engine.pool_worker(envs, &id).await?,
    })
}

/// `POST /api/v1/workers/{workerId}/dequeue`.
pub async fn dequeue(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<DequeueRequest>,
) -> Result<axum::Json<DequeueResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    if !(1..=MAX_RUNS).contains(&request.max_runs) {
        return Err(ApiError::invalid(format!("maxRuns must be between 1 and {MAX_RUNS}")));
    }
    if request.wait_ms > MAX_WAIT_MS {
        return Err(ApiError::invalid(format!("waitMs must be at most {MAX_WAIT_MS}")));
    }
    let runs = state.engine.dequeue(&worker, request.max_runs, Duration::from_millis(request.wait_ms)).await?;
    // A run going on after a suspension or a failed attempt replays its task: it takes its durable
    // calls' results from its journal instead of making them again.
    let mut journals = if runs.is_empty() { HashMap::new() } else { state.engine.journals(&runs).await? };
    let runs = runs.iter().map(|run| present::dequeued(run, journals.remove(&run.id).unwrap_or_default())).collect();
    Ok(axum::Json(DequeueResponse { runs }))
}

/// `POST /api/v1/workers/{workerId}/disconnect`: the worker is shutting down; its waiting
/// dequeue is answered at once and later ones take nothing.
pub async fn disconnect(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    state.engine.disconnect(&worker).await?;
    Ok(axum::Json(serde_json::json!({"workerId": worker.id.to_string()})))
}

/// A run and snapshot named by a worker, or `None` when either id does not parse.
fn run_ref(run_id: &str, snapshot_id: &str) -> Option<(RunId, SnapshotId)> {
    Some((RunId::parse(run_id).ok()?, SnapshotId::parse(snapshot_id).ok()?))
}

/// `POST /api/v1/workers/{workerId}/heartbeat`.
pub async fn heartbeat(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<HeartbeatRequest>,
) -> Result<axum::Json<HeartbeatResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    // Entries whose ids do not parse cannot be this worker's: they are told to stop.
    let parsed: Vec<_> = request.runs.iter().map(|r| run_ref(&r.run_id, &r.snapshot_id)).collect();
    let verdicts = state.engine.heartbeat(&worker, parsed.iter().flatten().cloned().collect()).await?;
    let mut verdicts = verdicts.into_iter();
    let runs = request
        .runs
        .into_iter()
        .zip(parsed)
        .map(|(run, parsed)| {
            let verdict = if parsed.is_some() { verdicts.next() } else { None };
            let (action, snapshot_id) = match verdict {
                Some(HeartbeatVerdict::Continue) => (RunAction::Continue, None),
                Some(HeartbeatVerdict::Moved(snapshot)) => (RunAction::Continue, Some(snapshot.to_string())),
                Some(HeartbeatVerdict::Cancel(snapshot)) => (RunAction::Cancel, Some(snapshot.to_string())),
                Some(HeartbeatVerdict::Stop) | None => (RunAction::Stop, None),
            };
            HeartbeatAction { run_id: run.run_id, action, snapshot_id }
        })
        .collect();
    Ok(axum::Json(HeartbeatResponse { runs }))
}

/// `POST /api/v1/workers/{workerId}/complete`.
pub async fn complete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<CompleteRequest>,
) -> Result<axum::Json<CompleteResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    let mut parsed = Vec::with_capacity(request.completions.len());
    for completion in &request.completions {
        let outcome = completion.outcome().map_err(ApiError::invalid)?;
        let ids = run_ref(&completion.run_id, &completion.snapshot_id);
        parsed.push(ids.map(|(run_id, snapshot_id)| Completion {
            run_id,
            snapshot_id,
            outcome: engine_outcome(outcome),
            metadata: completion.metadata_operations.clone(),
        }));
    }
    let envs: Vec<EnvironmentRow> = caller.reach().into_iter().filter(|env| worker.serves(&env.id)).collect();
    let completed = state.engine.complete_with_metadata(envs, parsed.iter().flatten().cloned().collect()).await?;
    let mut completed = completed.into_iter();
    let results = request
        .completions
        .into_iter()
        .zip(parsed)
        .map(|(completion, parsed)| {
            let result = if parsed.is_some() { completed.next() } else { None };
            completion_result(completion.run_id, result.unwrap_or(Completed::NotFound))
        })
        .collect();
    Ok(axum::Json(CompleteResponse { results }))
}

/// `POST /api/v1/workers/{workerId}/metadata`: metadata changes of runs the worker is executing,
/// each applied only if the worker still holds its run at the snapshot it names.
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<MetadataRequest>,
) -> Result<axum::Json<MetadataResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    // Entries whose ids do not parse cannot be this worker's runs.
    let parsed: Vec<_> = request.runs.iter().map(|r| run_ref(&r.run_id, &r.snapshot_id)).collect();
    let updates = request
        .runs
        .iter()
        .zip(&parsed)
        .filter_map(|(run, ids)| ids.clone().map(|(run_id, snapshot_id)| (run_id, snapshot_id, run.operations.clone())))
        .collect();
    let mut answers = state.engine.update_held_metadata(&worker, updates).await?.into_iter();
    let runs = request
        .runs
        .into_iter()
        .zip(parsed)
        .map(|(run, parsed)| {
            let answer = if parsed.is_some() { answers.next() } else { None };
            let (outcome, error) = match answer.unwrap_or(HeldUpdate::NotFound) {
                HeldUpdate::Updated => (MetadataOutcome::Updated, None),
                HeldUpdate::Stale => (MetadataOutcome::Stale, None),
                HeldUpdate::NotFound => (MetadataOutcome::NotFound, None),
                HeldUpdate::Invalid(reason) => (MetadataOutcome::Invalid, Some(reason)),
            };
            MetadataResult { run_id: run.run_id, outcome, error }
        })
        .collect();
    Ok(axum::Json(MetadataResponse { runs }))
}

/// `POST /api/v1/workers/{workerId}/runs/{runId}/steps`: a step of a run the worker executes
/// succeeded; its output is recorded in the run's journal at `seq`, or the journal's entry there
/// answers (a call sent again). Ids that do not parse cannot be the worker's run: `STALE`.
pub async fn step(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, run)): Path<(String, String)>,
    Json(request): Json<StepRequest>,
) -> Result<axum::Json<CallResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    let output = request.output.to_string();
    if output.len() > MAX_OUTPUT_BYTES {
        return Err(ApiError::too_large(format!(
            "output is {} bytes, over the limit of {MAX_OUTPUT_BYTES} for a step",
            output.len()
        )));
    }
    let Some((run_id, snapshot_id)) = run_ref(&run, &request.snapshot_id) else {
        return Ok(axum::Json(call_response(CallAnswer::Stale)));
    };
    let answer = state.engine.record_step(&worker, &run_id, &snapshot_id, request.seq, request.name, output).await?;
    Ok(axum::Json(call_response(answer)))
}

/// `POST /api/v1/workers/{workerId}/runs/{runId}/waits`: blocks a run the worker executes on a
/// time, a token, a child run or a batch of them (triggered by the call, their options checked as
/// a trigger's), recorded in its journal at `seq`. A wait whose result is known answers at once.
pub async fn wait(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, run)): Path<(String, String)>,
    Json(request): Json<WaitRequest>,
) -> Result<axum::Json<CallResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    let wait = engine_wait(request.wait)?;
    let Some((run_id, snapshot_id)) = run_ref(&run, &request.snapshot_id) else {
        return Ok(axum::Json(call_response(CallAnswer::Stale)));
    };
    let seq = request.seq;
    // A wait may trigger runs: it finishes, waking workers included, even if the worker goes away.
    let answer =
        detached(&state, move |engine| async move { engine.wait(&worker, &run_id, &snapshot_id, seq, wait).await })
            .await?;
    Ok(axum::Json(call_response(answer)))
}

/// `POST /api/v1/workers/{workerId}/runs/{runId}/continue`: waits up to `waitMs` for a blocked
/// run's waitpoints. Ids that do not parse cannot be the worker's run: `STOP`.
pub async fn continue_run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((id, run)): Path<(String, String)>,
    Json(request): Json<ContinueRequest>,
) -> Result<axum::Json<ContinueResponse>, ApiError> {
    let worker = worker(&state, &caller, &id).await?;
    if request.wait_ms > MAX_WAIT_MS {
        return Err(ApiError::invalid(format!("waitMs must be at most {MAX_WAIT_MS}")));
    }
    let next = match run_ref(&run, &request.snapshot_id) {
        None => Continuation::Stop,
        Some((run_id, snapshot_id)) => {
            let wait = Duration::from_millis(request.wait_ms);
            state.engine.await_continue(&worker, &run_id, &snapshot_id, request.seq, wait).await?
        }
    };
    let (action, snapshot_id, entry) = match next {
        Continuation::Continue { snapshot_id, entry } => {
            (ContinueAction::Continue, Some(snapshot_id.to_string()), Some(present::journal_entry(entry)))
        }
        Continuation::Wait => (ContinueAction::Wait, None, None),
        Continuation::Suspend => (ContinueAction::Suspend, None, None),
        Continuation::Stop => (ContinueAction::Stop, None, None),
    };
    Ok(axum::Json(ContinueResponse { action, snapshot_id, entry }))
}

/// The engine's view of what a run waits for, checked: a time in RFC 3339, a token's id, a child
/// run or 1 to 1,000 of them checked as the triggers of a batch are.
fn engine_wait(wait: Wait) -> Result<stint_engine::Wait, ApiError> {
    Ok(match wait {
        Wait::Until { until } => stint_engine::Wait::Until(
            Timestamp::parse_date(&until)
                .ok_or_else(|| ApiError::invalid(format!("wait.until must be an RFC 3339 date, got '{until}'")))?,
        ),
        Wait::Token { id } => {
            stint_engine::Wait::Token(WaitpointId::parse(&id).map_err(|e| ApiError::invalid(format!("wait.id: {e}")))?)
        }
        Wait::Run { task, payload, options } => stint_engine::Wait::Run(
            item_params(task, TriggerRequest { payload, context: None, options }).map_err(|e| e.prefixed("wait"))?,
        ),
        Wait::Batch { items } => {
            item_count(items.len() as i64).map_err(|e| e.prefixed("wait.items"))?;
            let params = items
                .into_iter()
                .enumerate()
                .map(|(at, item)| {
                    let request =
                        TriggerRequest { payload: item.payload, context: item.context, options: item.options };
                    item_params(item.task, request).map_err(|e| e.prefixed(&format!("wait.items[{at}]")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            stint_engine::Wait::Batch(params)
        }
    })
}

/// A step's or a wait's answer on the wire.
fn call_response(answer: CallAnswer) -> CallResponse {
    let (outcome, snapshot_id, entry, error) = match answer {
        CallAnswer::Completed { snapshot_id, entry } => {
            (CallOutcome::Completed, Some(snapshot_id.to_string()), Some(present::journal_entry(entry)), None)
        }
        CallAnswer::Waiting { snapshot_id, entry } => {
            (CallOutcome::Waiting, Some(snapshot_id.to_string()), Some(present::journal_entry(entry)), None)
        }
        CallAnswer::Mismatch(message) => (CallOutcome::Mismatch, None, None, Some(message)),
        CallAnswer::Stale => (CallOutcome::Stale, None, None, None),
    };
    CallResponse { outcome, snapshot_id, entry, error }
}

/// The engine's view of an attempt's outcome. An output over the size limit fails the attempt
/// without a retry, since another attempt would produce it again.
fn engine_outcome(outcome: AttemptOutcome) -> Outcome {
    match outcome {
        AttemptOutcome::Success { output } => {
            let text = output.to_string();
            if text.len() > MAX_OUTPUT_BYTES {
                let message = format!("output is {} bytes, over the limit of {MAX_OUTPUT_BYTES}", text.len());
                let error = TaskRunError::internal(ErrorCode::TaskOutputError, message);
                Outcome::Failure { error, skip_retrying: true }
            } else {
                Outcome::Success(text)
            }
        }
        AttemptOutcome::Failure { error, skip_retrying } => Outcome::Failure { error, skip_retrying },
    }
}

fn completion_result(run_id: String, completed: Completed) -> CompletionResult {
    let (outcome, status, current_snapshot) = match completed {
        Completed::Finished(status) => (CompletionOutcome::RunFinished, Some(status), None),
        Completed::Retrying { .. } => (CompletionOutcome::RetryQueued, Some(stint_types::RunStatus::Queued), None),
        Completed::Stale { current, status } => {
            (CompletionOutcome::Stale, None, Some(SnapshotRef { id: current.to_string(), execution_status: status }))
        }
        Completed::NotFound => (CompletionOutcome::NotFound, None, None),
    };
    CompletionResult { run_id, outcome, status, current_snapshot }
}
