//! The admin API (`/api/v1/admin/…`), opened only by the instance's admin token: projects, their
//! environments' secret keys and their personal access tokens. A key or token is shown whole only
//! in the answer to its creation; listings show its prefix.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use stint_engine::{KeyView, NewKey, NewToken, ProjectView};
use stint_protocol::admin::{
    CreateKeyRequest, CreateProjectRequest, CreateTokenRequest, EnvironmentObject, KeyList, KeyObject,
    OrganizationObject, ProjectList, ProjectObject, TokenList, TokenObject,
};
use stint_store::AccessTokenRow;
use stint_types::{EnvironmentType, KeyId, TokenId};

use crate::AppState;
use crate::auth::{Admin, generate_access_token, generate_additional_key, generate_key, hash_key, key_prefix};
use crate::error::ApiError;
use crate::json::Json;

/// The organization of a project created without one.
const DEFAULT_ORGANIZATION: &str = "default";

/// `POST /api/v1/admin/projects` `{name, organization?}` → 201 with the project and, once, each
/// environment's secret key.
pub async fn create_project(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Json(request): Json<CreateProjectRequest>,
) -> Result<(StatusCode, axum::Json<ProjectObject>), ApiError> {
    let organization = request.organization.unwrap_or_else(|| DEFAULT_ORGANIZATION.into());
    let texts: Vec<(EnvironmentType, String)> =
        stint_engine::PROJECT_ENVIRONMENTS.iter().map(|&kind| (kind, generate_key(kind))).collect();
    let keys = texts.iter().map(|(kind, key)| new_key(*kind, key)).collect();
    let (view, created) = state.engine.create_project(request.name, organization, keys).await?;
    let mut project = project_object(&view);
    for env in &mut project.environments {
        let key = created.iter().find(|k| k.key.env_id.as_str() == env.id);
        let text = key.and_then(|k| texts.iter().find(|(kind, _)| *kind == k.kind)).map(|(_, text)| text.clone());
        env.api_key = text;
    }
    for key in &created {
        state.keys.forget(&key.key.key_hash);
    }
    Ok((StatusCode::CREATED, axum::Json(project)))
}

/// `GET /api/v1/admin/projects`: every project, without keys.
pub async fn list_projects(State(state): State<Arc<AppState>>, _: Admin) -> Result<axum::Json<ProjectList>, ApiError> {
    let projects = state.engine.projects().await?;
    Ok(axum::Json(ProjectList { data: projects.iter().map(project_object).collect() }))
}

/// `GET /api/v1/admin/projects/{ref}`.
pub async fn get_project(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(reference): Path<String>,
) -> Result<axum::Json<ProjectObject>, ApiError> {
    Ok(axum::Json(project_object(&state.engine.project(&reference).await?)))
}

/// `POST /api/v1/admin/projects/{ref}/keys` `{environment, name?}` → 201 with the key, shown only
/// here.
pub async fn create_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(reference): Path<String>,
    Json(request): Json<CreateKeyRequest>,
) -> Result<(StatusCode, axum::Json<KeyObject>), ApiError> {
    let kind = environment(&request.environment).map_err(ApiError::invalid)?;
    let text = generate_additional_key(kind);
    let created = state.engine.create_key(&reference, request.name, new_key(kind, &text)).await?;
    state.keys.forget(&created.key.key_hash);
    let mut key = key_object(&created);
    key.key = Some(text);
    Ok((StatusCode::CREATED, axum::Json(key)))
}

/// `GET /api/v1/admin/projects/{ref}/keys?environment=&prefix=`: the project's keys, revoked
/// ones included, without their text.
pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(reference): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<KeyList>, ApiError> {
    if let Some(unknown) = query.keys().find(|k| !["environment", "prefix"].contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Unsupported query parameter '{unknown}'; supported: environment, prefix"
        )));
    }
    let kind = query.get("environment").map(|text| environment(text)).transpose().map_err(ApiError::bad_request)?;
    let prefix = query.get("prefix").cloned();
    let keys = state.engine.keys(&reference, kind, prefix).await?;
    Ok(axum::Json(KeyList { data: keys.iter().map(key_object).collect() }))
}

/// `DELETE /api/v1/admin/projects/{ref}/keys/{id}`: revokes the key; it opens nothing from now
/// on, on this node at once and on the others within the credential cache's time to live.
/// Revoking it again answers the same.
pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path((reference, id)): Path<(String, String)>,
) -> Result<axum::Json<KeyObject>, ApiError> {
    let id = KeyId::parse(&id).map_err(|_| ApiError::not_found(format!("Key {id} not found")))?;
    let revoked = state.engine.revoke_key(&reference, &id).await?;
    state.keys.forget(&revoked.key.key_hash);
    Ok(axum::Json(key_object(&revoked)))
}

/// `POST /api/v1/admin/projects/{ref}/tokens` `{name?}` → 201 with the personal access token,
/// shown only here.
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(reference): Path<String>,
    Json(request): Json<CreateTokenRequest>,
) -> Result<(StatusCode, axum::Json<TokenObject>), ApiError> {
    let text = generate_access_token();
    let token = NewToken { hash: hash_key(&text), prefix: key_prefix(&text) };
    let created = state.engine.create_token(&reference, request.name, token).await?;
    state.keys.forget(&created.token_hash);
    let mut token = token_object(&created);
    token.token = Some(text);
    Ok((StatusCode::CREATED, axum::Json(token)))
}

/// `GET /api/v1/admin/projects/{ref}/tokens`: the project's tokens, revoked ones included.
pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(reference): Path<String>,
) -> Result<axum::Json<TokenList>, ApiError> {
    let tokens = state.engine.tokens(&reference).await?;
    Ok(axum::Json(TokenList { data: tokens.iter().map(token_object).collect() }))
}

/// `DELETE /api/v1/admin/projects/{ref}/tokens/{id}`: revokes the token. Revoking it again
/// answers the same.
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path((reference, id)): Path<(String, String)>,
) -> Result<axum::Json<TokenObject>, ApiError> {
    let id = TokenId::parse(&id).map_err(|_| ApiError::not_found(format!("Token {id} not found")))?;
    let revoked = state.engine.revoke_token(&reference, &id).await?;
    state.keys.forget(&revoked.token_hash);
    Ok(axum::Json(token_object(&revoked)))
}

/// An environment kind named as in paths and flags (`prod`) or as stored (`PRODUCTION`).
fn environment(text: &str) -> Result<EnvironmentType, String> {
    text.parse().map_err(|e| format!("environment: {e}"))
}

fn new_key(kind: EnvironmentType, text: &str) -> NewKey {
    NewKey { kind, hash: hash_key(text), prefix: key_prefix(text) }
}

/// A project as the admin API and the project-level endpoints show it, without keys.
pub(crate) fn project_object(view: &ProjectView) -> ProjectObject {
    let ProjectView { project, organization, environments } = view;
    ProjectObject {
        id: project.id.to_string(),
        reference: project.reference.clone(),
        external_ref: project.reference.clone(),
        name: project.name.clone(),
        organization: OrganizationObject {
            id: organization.id.to_string(),
            title: organization.title.clone(),
            slug: organization.slug.clone(),
            created_at: organization.created_at.to_rfc3339(),
        },
        created_at: project.created_at.to_rfc3339(),
        environments: environments
            .iter()
            .map(|env| EnvironmentObject {
                id: env.id.to_string(),
                kind: env.kind.as_str().into(),
                slug: env.kind.slug().into(),
                api_key: None,
            })
            .collect(),
    }
}

fn key_object(view: &KeyView) -> KeyObject {
    KeyObject {
        id: view.key.id.to_string(),
        name: view.key.name.clone(),
        prefix: view.key.key_prefix.clone(),
        environment: view.kind.slug().into(),
        created_at: view.key.created_at.to_rfc3339(),
        revoked_at: view.key.revoked_at.map(|t| t.to_rfc3339()),
        key: None,
    }
}

fn token_object(token: &AccessTokenRow) -> TokenObject {
    TokenObject {
        id: token.id.to_string(),
        name: token.name.clone(),
        prefix: token.token_prefix.clone(),
        created_at: token.created_at.to_rfc3339(),
        revoked_at: token.revoked_at.map(|t| t.to_rfc3339()),
        token: None,
    }
}
