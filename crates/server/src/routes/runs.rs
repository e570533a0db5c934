//! The public run API: trigger, retrieve, list, cancel, replay.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::Value;
use stint_engine::{Engine, Idempotency, TriggerParams};
use stint_protocol::api::{IdResponse, ListRunsResponse, Pagination, RunObject, TriggerRequest, TriggerResponse};
use stint_store::{EnvironmentRow, RunListParams};
use stint_types::{RunId, RunStatus, Timestamp, check_version, names};

use crate::AppState;
use crate::auth::Env;
use crate::error::ApiError;
use crate::json::Json;
use crate::present;

/// Longest idempotency key (Trigger.dev's limit).
const MAX_IDEMPOTENCY_KEY: usize = 2048;
/// How long an idempotency key applies when the trigger does not say (Trigger.dev's default).
const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Largest metadata object, serialized (Trigger.dev's limit).
const MAX_METADATA_BYTES: usize = 256 * 1024;

/// `POST /api/v1/tasks/{taskId}/trigger`.
pub async fn trigger(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<TriggerRequest>,
) -> Result<axum::Json<TriggerResponse>, ApiError> {
    names::check_task_id(&task_id).map_err(ApiError::bad_request)?;
    let header = |name: &str| -> Result<Option<String>, ApiError> {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::to_string).map_err(|_| ApiError::bad_request(format!("{name} is not text"))))
            .transpose()
    };
    let (key_header, ttl_header) = (header("idempotency-key")?, header("idempotency-key-ttl")?);
    let params = trigger_params(task_id, request, key_header, ttl_header)?;
    let triggered = detached(&state, move |engine| async move { engine.trigger(&env, params).await }).await?;
    Ok(axum::Json(TriggerResponse { id: triggered.run.id.to_string(), is_cached: triggered.cached }))
}

/// Runs an engine call that creates a run on a task of its own, so it finishes, effects after its
/// commit included (waking workers, handing the run to a waiting one), even when the client
/// goes away mid-request.
async fn detached<T, F, Fut>(state: &AppState, call: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Arc<Engine>) -> Fut,
    Fut: Future<Output = Result<T, stint_engine::Error>> + Send + 'static,
{
    let task = tokio::spawn(call(state.engine.clone()));
    match task.await {
        Ok(result) => Ok(result?),
        Err(error) => {
            tracing::error!(%error, "a run-creating call failed");
            Err(ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))
        }
    }
}

/// Checks a trigger request and turns it into engine parameters, saying what is wrong if it
/// cannot be accepted.
fn trigger_params(
    task_id: String,
    request: TriggerRequest,
    key_header: Option<String>,
    ttl_header: Option<String>,
) -> Result<TriggerParams, ApiError> {
    let options = request.options.unwrap_or_default();
    let idempotency = match options.idempotency_key.clone().or(key_header) {
        None => None,
        Some(key) if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY => {
            return Err(ApiError::invalid(format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters")));
        }
        Some(key) => {
            let ttl = match options.idempotency_key_ttl.as_deref().or(ttl_header.as_deref()) {
                None => DEFAULT_IDEMPOTENCY_TTL,
                Some(text) => parse_ttl(text).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "idempotencyKeyTTL must be digits and a unit (s, m, h or d), like 10m or 7d; got '{text}'"
                    ))
                })?,
            };
            Some(Idempotency { key, ttl })
        }
    };
    let unsupported = options.unsupported();
    if !unsupported.is_empty() {
        return Err(ApiError::invalid(format!("Options not supported yet: {}", unsupported.join(", "))));
    }
    let payload_type = options.payload_type.clone().unwrap_or_else(|| "application/json".into());
    let payload = match (payload_type.as_str(), request.payload) {
        ("application/json", payload) => payload.to_string(),
        (_, Value::String(text)) => text,
        (other, _) => {
            return Err(ApiError::invalid(format!("payload must be a string when payloadType is {other}")));
        }
    };
    if let Some(queue) = &options.queue {
        names::check_queue_name(&queue.name).map_err(ApiError::invalid)?;
    }
    let tags = names::normalize_tags(options.tags.unwrap_or_default()).map_err(ApiError::invalid)?;
    let metadata = match options.metadata {
        None | Some(Value::Null) => None,
        Some(object @ Value::Object(_)) => {
            if options.metadata_type.as_deref().is_some_and(|t| t != "application/json") {
                return Err(ApiError::invalid("metadataType must be application/json"));
            }
            let text = object.to_string();
            if text.len() > MAX_METADATA_BYTES {
                return Err(ApiError::invalid(format!(
                    "metadata is {} bytes, over the limit of {MAX_METADATA_BYTES}",
                    text.len()
                )));
            }
            Some(text)
        }
        Some(_) => return Err(ApiError::invalid("metadata must be a JSON object")),
    };
    let max_attempts = match options.max_attempts {
        None => None,
        Some(n @ 1..=250) => Some(n as u32),
        Some(n) => return Err(ApiError::invalid(format!("maxAttempts must be between 1 and 250, got {n}"))),
    };
    let priority_ms = match options.priority {
        None => 0,
        Some(p) if p.is_finite() => (p * 1000.0).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i64,
        Some(_) => return Err(ApiError::invalid("priority must be a finite number of seconds")),
    };
    let max_duration = match options.max_duration {
        None => None,
        Some(s) if s.is_finite() && s >= 1.0 => Some(s.min(f64::from(i32::MAX)).round() as u32),
        Some(s) => return Err(ApiError::invalid(format!("maxDuration must be at least 1 second, got {s}"))),
    };
    if let Some(key) = &options.concurrency_key
        && (key.is_empty() || key.len() > 1024)
    {
        return Err(ApiError::invalid("concurrencyKey must be 1 to 1024 characters"));
    }
    // Whether the environment has the version is the engine's to say, in the trigger's transaction.
    let lock_to_version = match options.lock_to_version {
        None | Some(Value::Null) => None,
        Some(Value::String(version)) => {
            check_version(&version).map_err(|e| ApiError::invalid(format!("lockToVersion: {e}")))?;
            Some(version)
        }
        Some(_) => return Err(ApiError::invalid("lockToVersion must be a string, a version like 20261130.1")),
    };
    Ok(TriggerParams {
        task_id,
        payload,
        payload_type,
        queue: options.queue.map(|q| q.name),
        concurrency_key: options.concurrency_key,
        max_attempts,
        tags,
        metadata,
        priority_ms,
        is_test: options.test.unwrap_or(false),
        machine: options.machine,
        max_duration,
        replayed_from: None,
        idempotency,
        lock_to_version,
    })
}

/// An idempotency key's time to live as Trigger.dev writes it: digits and one unit, `s`, `m`,
/// `h` or `d`.
fn parse_ttl(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let amount: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    amount.checked_mul(seconds).map(Duration::from_secs)
}

/// A run id from a path; anything that is not a run id is a run that does not exist.
fn run_id(text: &str) -> Result<RunId, ApiError> {
    RunId::parse(text).map_err(|_| ApiError::not_found(format!("Run {text} not found")))
}

/// `GET /api/v3/runs/{runId}`.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<RunObject>, ApiError> {
    let run = state.engine.run(&env, &run_id(&id)?).await?;
    Ok(axum::Json(present::run_object(&run)))
}

/// `POST /api/v2/runs/{runId}/cancel`. Cancelling a finished run changes nothing and succeeds,
/// as in Trigger.dev.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<IdResponse>, ApiError> {
    let id = run_id(&id)?;
    state.engine.cancel(&env, &id).await?;
    Ok(axum::Json(IdResponse { id: id.to_string() }))
}

/// `POST /api/v1/runs/{runId}/replay`.
pub async fn replay(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<IdResponse>, ApiError> {
    let id = run_id(&id)?;
    let run = detached(&state, move |engine| async move { engine.replay(&env, &id).await }).await?;
    Ok(axum::Json(IdResponse { id: run.id.to_string() }))
}

/// `GET /api/v1/runs`: newest first, filtered, with cursor pages.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<ListRunsResponse>, ApiError> {
    let params = list_params(&query, &LIST_PARAMS)?;
    list_page(&state, &[env], params).await
}

/// A page of runs of `envs`, newest first, in `GET /api/v1/runs`'s shape, each run with its
/// environment.
pub(crate) async fn list_page(
    state: &AppState,
    envs: &[EnvironmentRow],
    mut params: RunListParams,
) -> Result<axum::Json<ListRunsResponse>, ApiError> {
    let size = params.limit;
    params.limit = size + 1;
    let backwards = params.before.is_some() && params.after.is_none();
    let mut runs = match envs {
        [env] => state.engine.runs(env, params.clone()).await?,
        _ => state.engine.runs_in(envs, params.clone()).await?,
    };
    let more = runs.len() > size as usize;
    let pagination = if backwards {
        if more {
            runs.remove(0);
        }
        Pagination {
            next: runs.last().map(|r| r.id.to_string()),
            previous: runs.first().filter(|_| more).map(|r| r.id.to_string()),
        }
    } else {
        runs.truncate(size as usize);
        Pagination {
            next: runs.last().filter(|_| more).map(|r| r.id.to_string()),
            previous: runs.first().filter(|_| params.after.is_some()).map(|r| r.id.to_string()),
        }
    };
    let data = runs
        .iter()
        .filter_map(|run| envs.iter().find(|env| env.id == run.env_id).map(|env| present::list_item(run, env)))
        .collect();
    Ok(axum::Json(ListRunsResponse { data, pagination }))
}

/// Query parameters `GET /api/v1/runs` understands.
pub(crate) const LIST_PARAMS: [&str; 8] = [
    "page[size]",
    "page[after]",
    "page[before]",
    "filter[status]",
    "filter[taskIdentifier]",
    "filter[tag]",
    "filter[createdAt][from]",
    "filter[createdAt][to]",
];

/// The filters and page of a run listing, from the query; parameters not in `supported` are a
/// 400. Parameters this does not read (such as `filter[env]`) are the caller's.
pub(crate) fn list_params(query: &HashMap<String, String>, supported: &[&str]) -> Result<RunListParams, ApiError> {
    if let Some(unknown) = query.keys().find(|k| !supported.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Unsupported query parameter '{unknown}'; supported: {}",
            supported.join(", ")
        )));
    }
    let list = |key: &str| -> Vec<String> {
        query
            .get(key)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    };
    let limit = match query.get("page[size]") {
        None => 25,
        Some(text) => match text.parse::<u32>() {
            Ok(n @ 1..=100) => n,
            _ => return Err(ApiError::bad_request(format!("page[size] must be a number from 1 to 100, got '{text}'"))),
        },
    };
    let cursor = |key: &str| -> Result<Option<RunId>, ApiError> {
        query
            .get(key)
            .map(|text| RunId::parse(text).map_err(|e| ApiError::bad_request(format!("{key}: {e}"))))
            .transpose()
    };
    let statuses = list("filter[status]")
        .iter()
        .map(|s| s.parse::<RunStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(format!("filter[status]: {e}")))?;
    let time = |key: &str| -> Result<Option<Timestamp>, ApiError> {
        query
            .get(key)
            .map(|text| {
                Timestamp::parse(text).ok_or_else(|| {
                    ApiError::bad_request(format!("{key} must be an ISO 8601 date or milliseconds, got '{text}'"))
                })
            })
            .transpose()
    };
    Ok(RunListParams {
        env_id: None,
        statuses,
        task_ids: list("filter[taskIdentifier]"),
        tags: list("filter[tag]"),
        created_from: time("filter[createdAt][from]")?,
        created_to: time("filter[createdAt][to]")?,
        after: cursor("page[after]")?,
        before: cursor("page[before]")?,
        limit,
    })
}
