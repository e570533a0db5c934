//! The queues API, as Trigger.dev's: list, retrieve, pause and resume, concurrency override and
//! reset; and Stint's rate limit override and reset.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use stint_engine::{QueueRef, QueueView};
use stint_protocol::queues::{
    OverrideLimitRequest, OverrideRateRequest, PagePosition, PauseAction, PauseQueueRequest, QueueConcurrency,
    QueueItem, QueueKind, QueueListResponse, QueueRate, QueueRefType, ResetLimitRequest, ResetRateRequest,
};
use stint_store::RateLimit;

use crate::AppState;
use crate::auth::Env;
use crate::error::ApiError;
use crate::json::Json;

/// Queues per page when the request does not say.
const DEFAULT_PER_PAGE: u32 = 25;
/// Most queues per page.
const MAX_PER_PAGE: u32 = 100;

/// `GET /api/v1/queues?page=&perPage=`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<QueueListResponse>, ApiError> {
    if let Some(unknown) = query.keys().find(|k| !["page", "perPage"].contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Unsupported query parameter '{unknown}'; supported: page, perPage"
        )));
    }
    let number = |key: &str, default: u32, max: u32| -> Result<u32, ApiError> {
        match query.get(key) {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!("{key} must be a number from 1 to {max}, got '{text}'"))),
            },
        }
    };
    let page = number("page", 1, u32::MAX)?;
    let per_page = number("perPage", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let (queues, count) = state.engine.queues(&env, page, per_page).await?;
    Ok(axum::Json(QueueListResponse {
        data: queues.iter().map(item).collect(),
        pagination: PagePosition { current_page: page, total_pages: count.div_ceil(u64::from(per_page)), count },
    }))
}

/// `GET /api/v1/queues/{queue}?type=id|task|custom`.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(queue): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<QueueItem>, ApiError> {
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "type") {
        return Err(ApiError::bad_request(format!("Unsupported query parameter '{unknown}'; supported: type")));
    }
    let kind = match query.get("type").map(String::as_str) {
        None | Some("id") => QueueRefType::Id,
        Some("task") => QueueRefType::Task,
        Some("custom") => QueueRefType::Custom,
        Some(other) => return Err(ApiError::bad_request(format!("type must be id, task or custom, got '{other}'"))),
    };
    Ok(axum::Json(item(&state.engine.queue(&env, reference(queue, kind)).await?)))
}

/// `POST /api/v1/queues/{queue}/pause` with `{type?, action: "pause" | "resume"}`.
pub async fn pause(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(queue): Path<String>,
    Json(request): Json<PauseQueueRequest>,
) -> Result<axum::Json<QueueItem>, ApiError> {
    let paused = request.action == PauseAction::Pause;
    Ok(axum::Json(item(&state.engine.pause_queue(&env, reference(queue, request.kind), paused).await?)))
}

/// `POST /api/v1/queues/{queue}/concurrency/override` with `{type?, concurrencyLimit}`.
pub async fn override_limit(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(queue): Path<String>,
    Json(request): Json<OverrideLimitRequest>,
) -> Result<axum::Json<QueueItem>, ApiError> {
    let queue = reference(queue, request.kind);
    Ok(axum::Json(item(&state.engine.override_queue_limit(&env, queue, request.concurrency_limit).await?)))
}

/// `POST /api/v1/queues/{queue}/concurrency/reset` with `{type?}`.
pub async fn reset_limit(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(queue): Path<String>,
    Json(request): Json<ResetLimitRequest>,
) -> Result<axum::Json<QueueItem>, ApiError> {
    Ok(axum::Json(item(&state.engine.reset_queue_limit(&env, reference(queue, request.kind)).await?)))
}

/// `POST /api/v1/queues/{queue}/rate-limit/override` with `{type?, limit, periodMs, perKey?}`.
pub async fn override_rate(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(queue): Path<String>,
    Json(request): Json<OverrideRateRequest>,
) -> Result<axum::Json<QueueItem>, ApiError> {
    let queue = reference(queue, request.kind);
    let rate = RateLimit { limit: request.limit, period_ms: request.period_ms, per_key: request.per_key };
    Ok(axum::Json(item(&state.engine.override_queue_rate(&env, queue, rate).await?)))
}

/// `POST /api/v1/queues/{queue}/rate-limit/reset` with `{type?}`.
pub async fn reset_rate(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(queue): Path<String>,
    Json(request): Json<ResetRateRequest>,
) -> Result<axum::Json<QueueItem>, ApiError> {
    Ok(axum::Json(item(&state.engine.reset_queue_rate(&env, reference(queue, request.kind)).await?)))
}

fn reference(queue: String, kind: QueueRefType) -> QueueRef {
    match kind {
        QueueRefType::Id => QueueRef::Id(queue),
        QueueRefType::Task => QueueRef::Task(queue),
        QueueRefType::Custom => QueueRef::Custom(queue),
    }
}

/// A queue as the API shows it: a task's queue by the task's id, as Trigger.dev does.
fn item(view: &QueueView) -> QueueItem {
    let queue = &view.queue;
    let (kind, name) = match queue.name.strip_prefix("task/") {
        Some(task) => (QueueKind::Task, task.to_string()),
        None => (QueueKind::Custom, queue.name.clone()),
    };
    QueueItem {
        id: queue.id.to_string(),
        name,
        kind,
        running: queue.running,
        queued: view.waiting,
        paused: queue.paused,
        concurrency_limit: queue.limit(),
        concurrency: QueueConcurrency {
            current: queue.limit(),
            base: queue.concurrency_limit,
            r#override: queue.limit_override.map(|o| o.limit),
            overridden_at: queue.limit_override.map(|o| o.at.to_rfc3339()),
            overridden_by: None,
        },
        release_concurrency_on_waitpoint: true,
        rate_limit: queue.rate().map(|rate| QueueRate {
            limit: rate.limit,
            period_ms: rate.period_ms,
            per_key: rate.per_key,
            overridden_at: queue.rate_override.map(|o| o.at.to_rfc3339()),
        }),
    }
}
