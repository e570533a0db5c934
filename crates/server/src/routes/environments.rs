//! An environment's limits through the admin API: its concurrency limit, burst factor and pause.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::Value;
use stint_engine::EnvUsage;
use stint_protocol::environments::{EnvironmentLimits, SetEnvironmentLimits};
use stint_store::EnvironmentRow;

use crate::AppState;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::json::Json;

/// `GET /api/v1/admin/projects/{ref}/environments/{env}`.
pub async fn get_limits(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path((reference, slug)): Path<(String, String)>,
) -> Result<axum::Json<EnvironmentLimits>, ApiError> {
    let env = environment(&state, &reference, &slug).await?;
    let usage = state.engine.environment_limits(&env.id).await?;
    Ok(axum::Json(limits_object(&env, &usage)))
}

/// `PATCH /api/v1/admin/projects/{ref}/environments/{env}` `{concurrencyLimit?, burstFactor?,
/// paused?}`: sets what is given. Raising a limit or resuming wakes the environment's workers.
pub async fn set_limits(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path((reference, slug)): Path<(String, String)>,
    Json(request): Json<SetEnvironmentLimits>,
) -> Result<axum::Json<EnvironmentLimits>, ApiError> {
    let env = environment(&state, &reference, &slug).await?;
    let mut limits = state.engine.environment_limits(&env.id).await?.limits;
    match request.concurrency_limit {
        None => {}
        Some(Value::Null) => limits.concurrency_limit = None,
        Some(value) => {
            let limit = value.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
                ApiError::invalid(format!("concurrencyLimit must be a whole number from 0, or null; got {value}"))
            })?;
            limits.concurrency_limit = Some(limit);
        }
    }
    if let Some(burst_factor) = request.burst_factor {
        limits.burst_factor = burst_factor;
    }
    if let Some(paused) = request.paused {
        limits.paused = paused;
    }
    let usage = state.engine.set_environment_limits(&env.id, limits).await?;
    Ok(axum::Json(limits_object(&env, &usage)))
}

/// The project's environment named by its slug; a missing project or environment is a 404.
async fn environment(state: &AppState, reference: &str, slug: &str) -> Result<EnvironmentRow, ApiError> {
    let view = state.engine.project(reference).await?;
    view.environments.into_iter().find(|env| env.kind.slug() == slug).ok_or_else(|| {
        ApiError::not_found(format!("project {reference} has no environment '{slug}' (dev, staging, prod, preview)"))
    })
}

fn limits_object(env: &EnvironmentRow, usage: &EnvUsage) -> EnvironmentLimits {
    EnvironmentLimits {
        id: env.id.to_string(),
        slug: env.kind.slug().to_string(),
        concurrency_limit: usage.limits.concurrency_limit,
        burst_factor: usage.limits.burst_factor,
        burst_limit: usage.limits.burst_limit(),
        paused: usage.limits.paused,
        running: usage.running,
    }
}
