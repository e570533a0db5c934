//! What a run carries besides its state, over the public API: tags added after the trigger, and
//! metadata read, replaced and changed by operations.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::Value;
use stint_engine::MetadataChange;
use stint_protocol::api::{AddTagsRequest, MessageResponse, MetadataResponse, UpdateMetadataRequest};

use crate::AppState;
use crate::auth::Env;
use crate::error::ApiError;
use crate::json::Json;
use crate::routes::runs::run_id;

/// `POST /api/v1/runs/{runId}/tags`: merges tags into the run's, as at trigger (trimmed, empty
/// ones and duplicates dropped, at most 10 in all, each at most 128 characters).
pub async fn add_tags(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    Json(request): Json<AddTagsRequest>,
) -> Result<axum::Json<MessageResponse>, ApiError> {
    let id = run_id(&id)?;
    let added = state.engine.add_tags(&env, &id, request.tags).await?;
    Ok(axum::Json(MessageResponse { message: format!("Successfully set {added} new tags.") }))
}

/// `GET /api/v1/runs/{runId}/metadata`.
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<MetadataResponse>, ApiError> {
    let metadata = state.engine.metadata(&env, &run_id(&id)?).await?;
    Ok(axum::Json(MetadataResponse { metadata: Value::Object(metadata) }))
}

/// `PUT /api/v1/runs/{runId}/metadata`: replaces the metadata (`metadata`), then applies
/// `operations` to it, and `parentOperations`/`rootOperations` to the parent's and the root's.
pub async fn update_metadata(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    Json(request): Json<UpdateMetadataRequest>,
) -> Result<axum::Json<MetadataResponse>, ApiError> {
    let id = run_id(&id)?;
    if request.metadata_type.as_deref().is_some_and(|t| t != "application/json") {
        return Err(ApiError::invalid("metadataType must be application/json"));
    }
    let replacement = match request.metadata {
        None | Some(Value::Null) => None,
        Some(Value::Object(object)) => Some(object),
        Some(_) => return Err(ApiError::invalid("metadata must be a JSON object")),
    };
    let change = MetadataChange {
        metadata: replacement,
        operations: request.operations.unwrap_or_default(),
        parent_operations: request.parent_operations.unwrap_or_default(),
        root_operations: request.root_operations.unwrap_or_default(),
    };
    let metadata = state.engine.update_metadata(&env, &id, change).await?;
    Ok(axum::Json(MetadataResponse { metadata: Value::Object(metadata) }))
}
