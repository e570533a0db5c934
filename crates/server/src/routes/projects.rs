//! Project-level endpoints, opened by a personal access token of the project: the project and
//! its runs across its environments. A token of another project gets 404 for this one, exactly
//! as for a project that does not exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use stint_engine::ProjectView;
use stint_protocol::admin::ProjectObject;
use stint_protocol::api::ListRunsResponse;
use stint_types::EnvironmentType;

use crate::AppState;
use crate::auth::ProjectAccess;
use crate::error::ApiError;
use crate::routes::admin::project_object;
use crate::routes::runs::{LIST_PARAMS, list_page, list_params};

/// `GET /api/v1/projects/{ref}`: the project, its organization and environments, without keys.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    access: ProjectAccess,
    Path(reference): Path<String>,
) -> Result<axum::Json<ProjectObject>, ApiError> {
    Ok(axum::Json(project_object(&visible_project(&state, &access, &reference).await?)))
}

/// `GET /api/v1/projects/{ref}/runs`: the runs of the project's environments, newest first, with
/// the filters and pages of `GET /api/v1/runs` and `filter[env]` (a comma list of `dev`,
/// `staging`, `prod`, `preview`).
pub async fn list_runs(
    State(state): State<Arc<AppState>>,
    access: ProjectAccess,
    Path(reference): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<ListRunsResponse>, ApiError> {
    let project = visible_project(&state, &access, &reference).await?;
    let supported: Vec<&str> = LIST_PARAMS.iter().copied().chain(["filter[env]"]).collect();
    let params = list_params(&query, &supported)?;
    let kinds = match query.get("filter[env]") {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<EnvironmentType>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::bad_request(format!("filter[env]: {e}")))?,
        ),
    };
    let envs: Vec<_> = project
        .environments
        .into_iter()
        .filter(|env| kinds.as_ref().is_none_or(|kinds| kinds.contains(&env.kind)))
        .collect();
    if envs.is_empty() {
        return Ok(axum::Json(ListRunsResponse { data: Vec::new(), pagination: Default::default() }));
    }
    list_page(&state, &envs, params).await
}

/// The project `reference`, if the request's token opens it; any other project is reported
/// missing, as one that does not exist.
async fn visible_project(state: &AppState, access: &ProjectAccess, reference: &str) -> Result<ProjectView, ApiError> {
    if access.0.reference != reference {
        return Err(ApiError::not_found(format!("Project {reference} not found")));
    }
    Ok(state.engine.project(reference).await?)
}
