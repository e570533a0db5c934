//! Batches: the two-phase API of Trigger.dev's SDK 4 (`POST /api/v3/batches`, then its items as
//! NDJSON), the legacy one-request batch triggers, and reading a batch.
//!
//! Every item goes through `options::trigger_params`, as a single trigger does, so every trigger
//! option works on an item; an item that cannot be accepted refuses its whole request with an
//! error naming it (`items[3]: …`), and nothing of the request is stored. The runs of one request
//! are committed together, in one transaction.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde_json::error::Category;
use stint_engine::{BatchItem, BatchParams, BatchRun, BatchView, MAX_BATCH_ITEMS, TriggerParams};
use stint_protocol::api::TriggerRequest;
use stint_protocol::batches::{
    BatchItemLine, BatchObject, BatchProcessing, BatchRunSummary, BatchTriggerRequest, BatchTriggerResponse,
    CreateBatchRequest, CreateBatchResponse, StreamItemsResponse, TaskBatchRequest, TaskBatchResponse,
};
use stint_types::{BatchId, names};

use crate::AppState;
use crate::app::API_BODY_LIMIT;
use crate::auth::Env;
use crate::error::ApiError;
use crate::json::Json;
use crate::options;
use crate::routes::runs::detached;

/// Longest batch idempotency key (Trigger.dev's limit).
const MAX_IDEMPOTENCY_KEY: usize = 2048;

/// `POST /api/v3/batches`: makes a batch of `runCount` items, or answers the batch its
/// idempotency key names (`isCached: true`).
pub async fn create(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Json(request): Json<CreateBatchRequest>,
) -> Result<(StatusCode, axum::Json<CreateBatchResponse>), ApiError> {
    let run_count = item_count(request.run_count)?;
    refuse_parent(request.parent_run_id.as_ref(), request.resume_parent_on_completion)?;
    for task in request.task_identifiers.iter().flatten() {
        names::check_task_id(task).map_err(|e| ApiError::invalid(format!("taskIdentifiers: {e}")))?;
    }
    if let Some(key) = &request.idempotency_key {
        check_key(key)?;
    }
    let params = BatchParams { run_count, idempotency_key: request.idempotency_key };
    let created = state.engine.create_batch(&env, params).await?;
    let batch = created.batch;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(CreateBatchResponse {
            id: batch.id.to_string(),
            run_count: batch.run_count,
            is_cached: created.cached,
            idempotency_key: batch.idempotency_key,
        }),
    ))
}

/// `POST /api/v3/batches/{batchId}/items`: the batch's items, one JSON object per line
/// (`Content-Type: application/x-ndjson`). Items whose index arrived before change nothing, so a
/// stream can be sent again; the batch is sealed once every index has arrived.
pub async fn items(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<StreamItemsResponse>, ApiError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.contains("application/x-ndjson") && !content_type.contains("application/ndjson") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/x-ndjson or application/ndjson",
        ));
    }
    let batch_id = batch_id(&id)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => crate::json::too_large(),
        status => ApiError::new(status, rejection.body_text()),
    })?;
    let items = parse_lines(&body)?;
    let added =
        detached(&state, move |engine| async move { engine.add_batch_items(&env, &batch_id, items).await }).await?;
    let sealed = added.batch.sealed();
    Ok(axum::Json(StreamItemsResponse {
        id: added.batch.id.to_string(),
        items_accepted: added.accepted,
        items_deduplicated: added.deduplicated,
        sealed,
        enqueued_count: (!sealed).then_some(added.batch.items_received),
        expected_count: (!sealed).then_some(added.batch.run_count),
    }))
}

/// The items of an NDJSON body, each checked as a trigger; blank lines are skipped.
fn parse_lines(body: &[u8]) -> Result<Vec<BatchItem>, ApiError> {
    let mut items = Vec::new();
    for (at, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: BatchItemLine = serde_json::from_slice(line).map_err(|e| {
            let message = format!("line {}: {e}", at + 1);
            match e.classify() {
                Category::Data => ApiError::invalid(message),
                _ => ApiError::bad_request(message),
            }
        })?;
        let index = u32::try_from(line.index)
            .map_err(|_| ApiError::invalid(format!("line {}: index must be 0 or more, got {}", at + 1, line.index)))?;
        let request = TriggerRequest { payload: line.payload, context: line.context, options: line.options };
        let params = item_params(line.task, request).map_err(|e| e.prefixed(&format!("items[{index}]")))?;
        items.push(BatchItem { index, params });
    }
    if items.is_empty() {
        return Err(ApiError::bad_request("The body has no items: send one JSON object per line"));
    }
    Ok(items)
}

/// `POST /api/v1/tasks/batch`: a batch of runs of any tasks in one request, answered with its
/// runs (Trigger.dev's `BatchTriggerTaskV2Response`).
pub async fn trigger_v1(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    headers: HeaderMap,
    Json(request): Json<BatchTriggerRequest>,
) -> Result<(StatusCode, axum::Json<BatchTriggerResponse>), ApiError> {
    let answer = trigger_items(&state, env, &headers, request).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(answer)))
}

/// `POST /api/v2/tasks/batch`: as `/api/v1/tasks/batch`, answered with `runCount` too.
/// Trigger.dev answers `{id, runCount}`, making the runs later; Stint makes them before
/// answering and lists them.
pub async fn trigger_v2(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    headers: HeaderMap,
    Json(request): Json<BatchTriggerRequest>,
) -> Result<(StatusCode, axum::Json<BatchTriggerResponse>), ApiError> {
    let mut answer = trigger_items(&state, env, &headers, request).await?;
    answer.run_count = Some(answer.runs.len() as u32);
    Ok((StatusCode::ACCEPTED, axum::Json(answer)))
}

/// `POST /api/v1/tasks/{taskId}/batch`: a batch of runs of one task, answered with the batch's id
/// and its runs' ids.
pub async fn trigger_task(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    Json(request): Json<TaskBatchRequest>,
) -> Result<axum::Json<TaskBatchResponse>, ApiError> {
    names::check_task_id(&task_id).map_err(ApiError::bad_request)?;
    item_count(request.items.len() as i64)?;
    let items = request
        .items
        .into_iter()
        .enumerate()
        .map(|(at, item)| item_params(task_id.clone(), item).map_err(|e| e.prefixed(&format!("items[{at}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let key = batch_key(&headers)?;
    let made = detached(&state, move |engine| async move { engine.trigger_batch(&env, items, key).await }).await?;
    Ok(axum::Json(TaskBatchResponse {
        batch_id: made.batch.id.to_string(),
        runs: made.runs.into_iter().map(|run| run.run_id.to_string()).collect(),
    }))
}

/// The runs of a one-request batch of any tasks.
async fn trigger_items(
    state: &AppState,
    env: stint_store::EnvironmentRow,
    headers: &HeaderMap,
    request: BatchTriggerRequest,
) -> Result<BatchTriggerResponse, ApiError> {
    item_count(request.items.len() as i64)?;
    refuse_parent(request.parent_run_id.as_ref(), request.resume_parent_on_completion)?;
    let items = request
        .items
        .into_iter()
        .enumerate()
        .map(|(at, item)| {
            let request = TriggerRequest { payload: item.payload, context: item.context, options: item.options };
            item_params(item.task, request).map_err(|e| e.prefixed(&format!("items[{at}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = batch_key(headers)?;
    let made = detached(state, move |engine| async move { engine.trigger_batch(&env, items, key).await }).await?;
    Ok(BatchTriggerResponse {
        id: made.batch.id.to_string(),
        is_cached: made.cached,
        idempotency_key: made.batch.idempotency_key,
        run_count: None,
        runs: made.runs.into_iter().map(summary).collect(),
    })
}

fn summary(run: BatchRun) -> BatchRunSummary {
    BatchRunSummary {
        id: run.run_id.to_string(),
        task_identifier: run.task_id,
        is_cached: run.cached,
        idempotency_key: run.idempotency_key,
    }
}

/// `GET /api/v1/batches/{batchId}`.
pub async fn retrieve_v1(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<BatchObject>, ApiError> {
    let view = state.engine.batch(&env, &batch_id(&id)?).await?;
    Ok(axum::Json(batch_object(view, false)))
}

/// `GET /api/v2/batches/{batchId}`: as v1, with how making its runs went.
pub async fn retrieve_v2(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<BatchObject>, ApiError> {
    let view = state.engine.batch(&env, &batch_id(&id)?).await?;
    Ok(axum::Json(batch_object(view, true)))
}

fn batch_object(view: BatchView, processing: bool) -> BatchObject {
    let BatchView { batch, items } = view;
    let sealed_at = batch.sealed_at.map(|t| t.to_rfc3339());
    BatchObject {
        id: batch.id.to_string(),
        status: batch.status,
        idempotency_key: batch.idempotency_key,
        created_at: batch.created_at.to_rfc3339(),
        updated_at: batch.updated_at.to_rfc3339(),
        run_count: batch.run_count,
        runs: items.into_iter().map(|item| item.run_id.to_string()).collect(),
        processing_completed_at: sealed_at.clone().filter(|_| processing),
        processing: processing.then_some(BatchProcessing { completed_at: sealed_at, errors: Vec::new() }),
    }
}

/// A batch id from a path; anything else is a batch that does not exist.
fn batch_id(text: &str) -> Result<BatchId, ApiError> {
    BatchId::parse(text).map_err(|_| ApiError::not_found(format!("Batch {text} not found")))
}

/// An item checked as a trigger of `task`, its payload within a trigger's limit.
pub(crate) fn item_params(task: String, request: TriggerRequest) -> Result<TriggerParams, ApiError> {
    names::check_task_id(&task).map_err(ApiError::invalid)?;
    let params = options::trigger_params(task, request, None, None)?;
    if params.payload.len() > API_BODY_LIMIT {
        return Err(ApiError::too_large(format!(
            "the payload is {} bytes, over the limit of {API_BODY_LIMIT} bytes",
            params.payload.len()
        )));
    }
    Ok(params)
}

/// A batch's number of items, 1 to [`MAX_BATCH_ITEMS`] (400 otherwise, as Trigger.dev answers).
pub(crate) fn item_count(count: i64) -> Result<u32, ApiError> {
    match u32::try_from(count) {
        Ok(n @ 1..=MAX_BATCH_ITEMS) => Ok(n),
        _ if count <= 0 => Err(ApiError::bad_request("A batch must have at least one item")),
        _ => Err(ApiError::bad_request(format!(
            "A batch of {count} items is too large: the most a batch may have is {MAX_BATCH_ITEMS}"
        ))),
    }
}

/// Refuses the options that make a run wait for the batch through the public API: a task waits
/// for its children with the SDK's `batch_trigger_and_wait`, over the worker protocol.
fn refuse_parent(parent_run_id: Option<&serde_json::Value>, resume: Option<bool>) -> Result<(), ApiError> {
    if parent_run_id.is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid(
            "parentRunId is not supported on a batch: a task waits for its children with the SDK's batch_trigger_and_wait",
        ));
    }
    if resume == Some(true) {
        return Err(ApiError::invalid(
            "resumeParentOnCompletion is not supported: a task waits for its children with the SDK's batch_trigger_and_wait",
        ));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid(format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters")));
    }
    Ok(())
}

/// The batch's idempotency key of a one-request batch trigger: the `idempotency-key` header.
fn batch_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::bad_request("idempotency-key is not text"))?.to_string();
    check_key(&key)?;
    Ok(Some(key))
}
