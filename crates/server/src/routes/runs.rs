//! The public run API: trigger, retrieve (with the related runs), list, cancel, replay.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use stint_engine::Engine;
use stint_protocol::api::{IdResponse, ListRunsResponse, Pagination, RunObject, TriggerRequest, TriggerResponse};
use stint_store::{EnvironmentRow, RunListParams};
use stint_types::{BatchId, RunId, RunStatus, Timestamp, names};

use crate::AppState;
use crate::auth::Env;
use crate::error::ApiError;
use crate::json::Json;
use crate::routes::schedules;
use crate::{options, present};

/// Longest request idempotency key (the SDK sends a UUID).
const MAX_REQUEST_KEY: usize = 256;

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
    let request_key = header("x-trigger-request-idempotency-key")?.filter(|key| !key.is_empty());
    if request_key.as_ref().is_some_and(|key| key.len() > MAX_REQUEST_KEY) {
        return Err(ApiError::bad_request(format!(
            "x-trigger-request-idempotency-key must be at most {MAX_REQUEST_KEY} bytes"
        )));
    }
    let mut params = options::trigger_params(task_id, request, key_header, ttl_header)?;
    params.request_key = request_key;
    let triggered = detached(&state, move |engine| async move { engine.trigger(&env, params).await }).await?;
    Ok(axum::Json(TriggerResponse { id: triggered.run.id.to_string(), is_cached: triggered.cached }))
}

/// Runs an engine call that creates a run on a task of its own, so it finishes, effects after its
/// commit included (waking workers, handing the run to a waiting one), even when the client
/// goes away mid-request.
pub(crate) async fn detached<T, F, Fut>(state: &AppState, call: F) -> Result<T, ApiError>
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

/// A run id from a path; anything that is not a run id is a run that does not exist.
pub(crate) fn run_id(text: &str) -> Result<RunId, ApiError> {
    RunId::parse(text).map_err(|_| ApiError::not_found(format!("Run {text} not found")))
}

/// `GET /api/v3/runs/{runId}`.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<RunObject>, ApiError> {
    Ok(axum::Json(run_object(&state, &env, &run_id(&id)?).await?))
}

/// A run of `env` as `GET /api/v3/runs/{runId}` shows it: with its related runs and its schedule.
async fn run_object(state: &AppState, env: &EnvironmentRow, id: &RunId) -> Result<RunObject, ApiError> {
    let (related, schedule) = tokio::try_join!(state.engine.related(env, id), state.engine.schedule_of_run(env, id))?;
    let schedule = schedule.map(|(schedule, _)| schedules::run_schedule(&schedule));
    Ok(present::run_object(&related, schedule))
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

/// Body of `POST /api/v1/runs/{runId}/reschedule`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    delay: Value,
}

/// `POST /api/v1/runs/{runId}/reschedule`: moves a delayed run's due time; answers the run.
pub async fn reschedule(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    Json(request): Json<RescheduleRequest>,
) -> Result<axum::Json<RunObject>, ApiError> {
    let delay = options::parse_delay(&request.delay)?;
    let id = run_id(&id)?;
    state.engine.reschedule(&env, &id, delay).await?;
    Ok(axum::Json(run_object(&state, &env, &id).await?))
}

/// Body of `POST /api/v1/idempotencyKeys/{key}/reset`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetKeyRequest {
    task_identifier: String,
}

/// `POST /api/v1/idempotencyKeys/{key}/reset`: the next trigger of the task with the key makes a
/// new run. Answers the id of the run that held it.
pub async fn reset_idempotency_key(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(key): Path<String>,
    Json(request): Json<ResetKeyRequest>,
) -> Result<axum::Json<IdResponse>, ApiError> {
    names::check_task_id(&request.task_identifier).map_err(|e| ApiError::invalid(format!("taskIdentifier: {e}")))?;
    let id = state.engine.reset_idempotency_key(&env, &request.task_identifier, &key).await?;
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
    let runs = match envs {
        [env] => state.engine.runs(env, params.clone()).await?,
        _ => state.engine.runs_in(envs, params.clone()).await?,
    };
    let (runs, pagination) = paginate(runs, size, backwards, params.after.is_some(), |run| run.id.to_string());
    let data = runs
        .iter()
        .filter_map(|run| envs.iter().find(|env| env.id == run.env_id).map(|env| present::list_item(run, env)))
        .collect();
    Ok(axum::Json(ListRunsResponse { data, pagination }))
}

/// One page of a listing read newest first with one row more than `size`, from its cursor
/// (`page[after]`, or `page[before]` when `backwards`): the rows to show and the cursors of the
/// pages around them. Read backwards, the extra row is the newest, furthest from the cursor.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    size: u32,
    backwards: bool,
    after: bool,
    id: impl Fn(&T) -> String,
) -> (Vec<T>, Pagination) {
    let more = rows.len() > size as usize;
    let pagination = if backwards {
        if more {
            rows.remove(0);
        }
        Pagination { next: rows.last().map(&id), previous: rows.first().filter(|_| more).map(&id) }
    } else {
        rows.truncate(size as usize);
        Pagination { next: rows.last().filter(|_| more).map(&id), previous: rows.first().filter(|_| after).map(&id) }
    };
    (rows, pagination)
}

/// Query parameters `GET /api/v1/runs` understands.
pub(crate) const LIST_PARAMS: [&str; 9] = [
    "page[size]",
    "page[after]",
    "page[before]",
    "filter[status]",
    "filter[taskIdentifier]",
    "filter[tag]",
    "filter[batch]",
    "filter[createdAt][from]",
    "filter[createdAt][to]",
];

/// A 400 naming the first query parameter not in `supported`.
pub(crate) fn refuse_unknown(query: &HashMap<String, String>, supported: &[&str]) -> Result<(), ApiError> {
    match query.keys().find(|k| !supported.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::bad_request(format!(
            "Unsupported query parameter '{unknown}'; supported: {}",
            supported.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A comma-separated query parameter's values, blanks left out; none when it is absent.
pub(crate) fn comma_list(query: &HashMap<String, String>, key: &str) -> Vec<String> {
    query
        .get(key)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// `page[size]`: 1 to 100, 25 when absent.
pub(crate) fn page_size(query: &HashMap<String, String>) -> Result<u32, ApiError> {
    match query.get("page[size]") {
        None => Ok(25),
        Some(text) => match text.parse::<u32>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(ApiError::bad_request(format!("page[size] must be a number from 1 to 100, got '{text}'"))),
        },
    }
}

/// The filters and page of a run listing, from the query; parameters not in `supported` are a
/// 400. Parameters this does not read (such as `filter[env]`) are the caller's.
pub(crate) fn list_params(query: &HashMap<String, String>, supported: &[&str]) -> Result<RunListParams, ApiError> {
    refuse_unknown(query, supported)?;
    let list = |key: &str| comma_list(query, key);
    let limit = page_size(query)?;
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
        batch_id: query
            .get("filter[batch]")
            .map(|text| BatchId::parse(text).map_err(|e| ApiError::bad_request(format!("filter[batch]: {e}"))))
            .transpose()?,
        created_from: time("filter[createdAt][from]")?,
        created_to: time("filter[createdAt][to]")?,
        after: cursor("page[after]")?,
        before: cursor("page[before]")?,
        limit,
    })
}
