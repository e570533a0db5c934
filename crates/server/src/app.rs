//! The router: routes, body limits and fallbacks.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::json::too_large;
use crate::rate_limit;
use crate::routes::{admin, batches, environments, projects, queues, rundata, runs, schedules, waitpoints, workers};

/// Largest body of a public API request (Trigger.dev's payload limit).
pub const API_BODY_LIMIT: usize = 3 * 1024 * 1024;
/// Largest body of a batch trigger: up to 1,000 items, each checked against [`API_BODY_LIMIT`].
pub const BATCH_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Largest body of a worker request: completions carry outputs of up to 10 MB each.
pub const WORKER_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// All routes of the server.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/tasks/{task_id}/trigger", post(runs::trigger))
        .route("/api/v3/runs/{run_id}", get(runs::retrieve))
        .route("/api/v1/runs", get(runs::list))
        .route("/api/v2/runs/{run_id}/cancel", post(runs::cancel))
        .route("/api/v1/runs/{run_id}/replay", post(runs::replay))
        .route("/api/v1/runs/{run_id}/reschedule", post(runs::reschedule))
        .route("/api/v1/idempotencyKeys/{key}/reset", post(runs::reset_idempotency_key))
        .route("/api/v1/runs/{run_id}/tags", post(rundata::add_tags))
        .route("/api/v1/runs/{run_id}/metadata", get(rundata::metadata).put(rundata::update_metadata))
        .route("/api/v3/batches", post(batches::create))
        .route("/api/v1/batches/{batch_id}", get(batches::retrieve_v1))
        .route("/api/v2/batches/{batch_id}", get(batches::retrieve_v2))
        .route("/api/v1/queues", get(queues::list))
        .route("/api/v1/queues/{queue}", get(queues::retrieve))
        .route("/api/v1/queues/{queue}/pause", post(queues::pause))
        .route("/api/v1/queues/{queue}/concurrency/override", post(queues::override_limit))
        .route("/api/v1/queues/{queue}/concurrency/reset", post(queues::reset_limit))
        .route("/api/v1/queues/{queue}/rate-limit/override", post(queues::override_rate))
        .route("/api/v1/queues/{queue}/rate-limit/reset", post(queues::reset_rate))
        .route("/api/v1/schedules", post(schedules::create).get(schedules::list))
        .route(
            "/api/v1/schedules/{schedule_id}",
            get(schedules::retrieve).put(schedules::update).delete(schedules::delete),
        )
        .route("/api/v1/schedules/{schedule_id}/activate", post(schedules::activate))
        .route("/api/v1/schedules/{schedule_id}/deactivate", post(schedules::deactivate))
        .route("/api/v1/timezones", get(schedules::timezones))
        .route("/api/v1/waitpoints/tokens", post(waitpoints::create).get(waitpoints::list))
        .route("/api/v1/waitpoints/tokens/{waitpoint_id}", get(waitpoints::retrieve))
        .route("/api/v1/waitpoints/tokens/{waitpoint_id}/complete", post(waitpoints::complete))
        .route("/engine/v1/runs/{run_id}/wait/duration", post(waitpoints::wait_for_duration))
        .route("/engine/v1/runs/{run_id}/waitpoints/tokens/{waitpoint_id}/wait", post(waitpoints::wait_for_token))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(API_BODY_LIMIT, refuse_large_bodies))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit));
    // A batch's items come in one body: the body may be large, each item's payload is checked
    // against a trigger's limit.
    let batch = Router::new()
        .route("/api/v3/batches/{batch_id}/items", post(batches::items))
        .route("/api/v1/tasks/batch", post(batches::trigger_v1))
        .route("/api/v2/tasks/batch", post(batches::trigger_v2))
        .route("/api/v1/tasks/{task_id}/batch", post(batches::trigger_task))
        .layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(BATCH_BODY_LIMIT, refuse_large_bodies))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit::limit));
    let worker = Router::new()
        .route("/api/v1/workers/register", post(workers::register))
        .route("/api/v1/workers/{worker_id}/dequeue", post(workers::dequeue))
        .route("/api/v1/workers/{worker_id}/heartbeat", post(workers::heartbeat))
        .route("/api/v1/workers/{worker_id}/complete", post(workers::complete))
        .route("/api/v1/workers/{worker_id}/metadata", post(workers::metadata))
        .route("/api/v1/workers/{worker_id}/disconnect", post(workers::disconnect))
        .route("/api/v1/workers/{worker_id}/runs/{run_id}/steps", post(workers::step))
        .route("/api/v1/workers/{worker_id}/runs/{run_id}/waits", post(workers::wait))
        .route("/api/v1/workers/{worker_id}/runs/{run_id}/continue", post(workers::continue_run))
        .layer(DefaultBodyLimit::max(WORKER_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(WORKER_BODY_LIMIT, refuse_large_bodies));
    // A token's callback URL is its own credential: no key, so no environment's rate limit.
    let callback = Router::new()
        .route("/api/v1/waitpoints/tokens/{waitpoint_id}/callback/{hash}", post(waitpoints::callback))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(API_BODY_LIMIT, refuse_large_bodies));
    // Opened by personal access tokens and the admin token, not by an environment's secret key,
    // so outside the per-environment rate limit.
    let tenancy = Router::new()
        .route("/api/v1/projects/{project_ref}", get(projects::retrieve))
        .route("/api/v1/projects/{project_ref}/runs", get(projects::list_runs))
        .route("/api/v1/admin/projects", post(admin::create_project).get(admin::list_projects))
        .route("/api/v1/admin/projects/{project_ref}", get(admin::get_project))
        .route("/api/v1/admin/projects/{project_ref}/keys", post(admin::create_key).get(admin::list_keys))
        .route("/api/v1/admin/projects/{project_ref}/keys/{key_id}", delete(admin::revoke_key))
        .route("/api/v1/admin/projects/{project_ref}/tokens", post(admin::create_token).get(admin::list_tokens))
        .route("/api/v1/admin/projects/{project_ref}/tokens/{token_id}", delete(admin::revoke_token))
        .route(
            "/api/v1/admin/projects/{project_ref}/environments/{env}",
            get(environments::get_limits).patch(environments::set_limits),
        )
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(API_BODY_LIMIT, refuse_large_bodies));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .merge(batch)
        .merge(worker)
        .merge(callback)
        .merge(tenancy)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

/// Refuses a body whose declared length is over the limit before reading any of it. Bodies
/// without a declared length are cut off at the limit while being read.
async fn refuse_large_bodies(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return too_large().into_response();
    }
    next.run(request).await
}

/// `GET /healthz`: the server is up and its database answers.
async fn healthz(State(state): State<Arc<AppState>>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    state.engine.environments().await?;
    Ok(axum::Json(json!({"status": "ok"})))
}

async fn no_route(request: Request) -> ApiError {
    ApiError::not_found(format!("No route for {} {}", request.method(), request.uri().path()))
}

async fn wrong_method(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}
