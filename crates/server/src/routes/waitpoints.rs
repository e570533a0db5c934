//! Waitpoint tokens (`/api/v1/waitpoints/tokens…`) and the run-internal waits
//! (`/engine/v1/runs/{runId}/…`), in Trigger.dev's shapes.
//!
//! A token is made through the API and completed through it, or through its callback URL by
//! whoever holds the URL; runs blocked on it go on when it completes, or when its timeout passes
//! (completed with an error, `TIMED_OUT`). Another environment's token is a 404, as a missing one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use stint_protocol::api::Pagination;
use stint_protocol::waitpoints::{
    CompleteTokenRequest, CreateTokenRequest, CreateTokenResponse, SuccessResponse, TokenObject, WaitDurationRequest,
    WaitDurationResponse, WaitpointRef,
};
use stint_store::{EnvironmentRow, WaitpointListParams, WaitpointRow};
use stint_types::{Timestamp, WaitpointId, WaitpointStatus, duration};

use crate::AppState;
use crate::auth::Env;
use crate::callback::{self, Base};
use crate::error::ApiError;
use crate::json::Json;
use crate::routes::runs::{comma_list, detached, page_size, paginate, refuse_unknown, run_id};
use crate::{options, present};

/// `POST /api/v1/waitpoints/tokens`: makes a token, or answers the live one its idempotency key
/// names (`isCached: true`).
pub async fn create(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Base(base): Base,
    Json(request): Json<CreateTokenRequest>,
) -> Result<axum::Json<CreateTokenResponse>, ApiError> {
    let params = options::token_params(request, state.engine.now())?;
    let created = state.engine.create_wait_token(&env, params).await?;
    let secret = callback::secret(&state).await?;
    let id = &created.waitpoint.id;
    Ok(axum::Json(CreateTokenResponse {
        id: id.to_string(),
        is_cached: created.cached,
        url: callback::url(&base, secret, id),
    }))
}

/// `GET /api/v1/waitpoints/tokens/{id}`: the token, with its output once completed.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Base(base): Base,
    Path(id): Path<String>,
) -> Result<axum::Json<TokenObject>, ApiError> {
    let token = state.engine.wait_token(&env, &token_id(&id)?).await?;
    let url = callback::url(&base, callback::secret(&state).await?, &token.id);
    Ok(axum::Json(present::token_object(&token, url, true)))
}

/// `POST /api/v1/waitpoints/tokens/{id}/complete`: completes the token with `data` and resumes
/// the runs waiting on it. A token completed already stays as it was; both answer
/// `{success: true}`, as Trigger.dev does.
pub async fn complete(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    Json(request): Json<CompleteTokenRequest>,
) -> Result<axum::Json<SuccessResponse>, ApiError> {
    let id = token_id(&id)?;
    let data = request.data.map(|value| value.to_string());
    detached(&state, move |engine| async move { engine.complete_wait_token(&env, &id, data).await }).await?;
    Ok(axum::Json(SuccessResponse { success: true }))
}

/// `POST /api/v1/waitpoints/tokens/{id}/callback/{hash}`, without a credential: the hash is the
/// credential. The body, any JSON (an empty one is `null`), becomes the token's output. A hash
/// that does not match is a 401 and changes nothing; only the server can make a matching one.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    Path((id, hash)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<SuccessResponse>, ApiError> {
    let id = token_id(&id)?;
    if !callback::verify(callback::secret(&state).await?, &id, &hash) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Invalid callback URL: its hash does not match the token; use the url the token was made with",
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => crate::json::too_large(),
        status => ApiError::new(status, rejection.body_text()),
    })?;
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?
    };
    let data = Some(data.to_string());
    detached(&state, move |engine| async move { engine.complete_wait_token_by_callback(&id, data).await }).await?;
    Ok(axum::Json(SuccessResponse { success: true }))
}

/// A token id from a path; anything that is not one is a token that does not exist.
fn token_id(text: &str) -> Result<WaitpointId, ApiError> {
    WaitpointId::parse(text).map_err(|_| ApiError::not_found(format!("Waitpoint token {text} not found")))
}

/// `GET /api/v1/waitpoints/tokens`'s answer.
#[derive(Serialize)]
pub struct TokenList {
    data: Vec<TokenObject>,
    pagination: Pagination,
}

/// Query parameters `GET /api/v1/waitpoints/tokens` understands (Trigger.dev's).
const LIST_PARAMS: [&str; 9] = [
    "page[size]",
    "page[after]",
    "page[before]",
    "filter[status]",
    "filter[idempotencyKey]",
    "filter[tags]",
    "filter[createdAt][period]",
    "filter[createdAt][from]",
    "filter[createdAt][to]",
];

/// `GET /api/v1/waitpoints/tokens`: the environment's tokens, newest first, filtered, with cursor
/// pages as `GET /api/v1/runs`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Base(base): Base,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<TokenList>, ApiError> {
    let (params, statuses) = list_params(&query, state.engine.now())?;
    let size = params.limit;
    let backwards = params.before.is_some() && params.after.is_none();
    let after = params.after.is_some();
    let tokens = read_tokens(&state, &env, params, &statuses).await?;
    let (tokens, pagination) = paginate(tokens, size, backwards, after, |token| token.id.to_string());
    let secret = callback::secret(&state).await?;
    let data = tokens
        .iter()
        .map(|token| present::token_object(token, callback::url(&base, secret, &token.id), false))
        .collect();
    Ok(axum::Json(TokenList { data, pagination }))
}

/// What one read of the store can select of the public statuses: a waitpoint status and whether
/// the output is an error. `None` for both is every token.
type StatusFilter = (Option<WaitpointStatus>, Option<bool>);

/// The tokens of a page and one more, newest first. A set of statuses the store cannot select in
/// one read (`WAITING` with one of the completed ones) is read as two and merged.
async fn read_tokens(
    state: &AppState,
    env: &EnvironmentRow,
    mut params: WaitpointListParams,
    statuses: &[StatusFilter],
) -> Result<Vec<WaitpointRow>, ApiError> {
    params.limit += 1;
    let keep = params.limit as usize;
    let backwards = params.before.is_some() && params.after.is_none();
    let mut tokens = Vec::new();
    for (status, is_error) in statuses {
        let params = WaitpointListParams { status: *status, is_error: *is_error, ..params.clone() };
        tokens.extend(state.engine.wait_tokens(env, params).await?);
    }
    if statuses.len() > 1 {
        // Ids sort by creation time: newest first is descending ids. Each read holds the rows
        // nearest the cursor, so the merged page keeps the nearest of them.
        tokens.sort_by(|a, b| b.id.cmp(&a.id));
        if backwards {
            let extra = tokens.len().saturating_sub(keep);
            tokens.drain(..extra);
        } else {
            tokens.truncate(keep);
        }
    }
    Ok(tokens)
}

/// The filters and page of a token listing, and the reads its `filter[status]` needs; bad
/// parameters are a 400 naming them.
fn list_params(
    query: &HashMap<String, String>,
    now: Timestamp,
) -> Result<(WaitpointListParams, Vec<StatusFilter>), ApiError> {
    refuse_unknown(query, &LIST_PARAMS)?;
    let list = |key: &str| comma_list(query, key);
    let limit = page_size(query)?;
    let cursor = |key: &str| -> Result<Option<WaitpointId>, ApiError> {
        query
            .get(key)
            .map(|text| WaitpointId::parse(text).map_err(|e| ApiError::bad_request(format!("{key}: {e}"))))
            .transpose()
    };
    let statuses = list("filter[status]");
    if let Some(bad) = statuses.iter().find(|s| !["WAITING", "COMPLETED", "TIMED_OUT"].contains(&s.as_str())) {
        return Err(ApiError::bad_request(format!(
            "filter[status]: '{bad}' is not a token status (WAITING, COMPLETED, TIMED_OUT)"
        )));
    }
    let has = |status: &str| statuses.iter().any(|s| s == status);
    let (pending, completed) = (Some(WaitpointStatus::Pending), Some(WaitpointStatus::Completed));
    let reads = match (has("WAITING"), has("COMPLETED"), has("TIMED_OUT")) {
        (false, false, false) | (true, true, true) => vec![(None, None)],
        (true, false, false) => vec![(pending, None)],
        (false, true, false) => vec![(completed, Some(false))],
        (false, false, true) => vec![(completed, Some(true))],
        (false, true, true) => vec![(completed, None)],
        (true, true, false) => vec![(pending, None), (completed, Some(false))],
        (true, false, true) => vec![(pending, None), (completed, Some(true))],
    };
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
    // A period (`7d`) is the time before now; with `from` too, the later of the two applies.
    let period = match query.get("filter[createdAt][period]").map(String::as_str) {
        None | Some("all") => None,
        Some(text) => {
            Some(duration::parse(text).map(|d| now.plus_millis(-(d.as_millis() as i64))).ok_or_else(|| {
                ApiError::bad_request(format!("filter[createdAt][period] must be a duration like 7d, got '{text}'"))
            })?)
        }
    };
    let created_from = time("filter[createdAt][from]")?.into_iter().chain(period).max();
    let params = WaitpointListParams {
        env_id: None,
        status: None,
        is_error: None,
        idempotency_key: query.get("filter[idempotencyKey]").filter(|k| !k.is_empty()).cloned(),
        tags: list("filter[tags]"),
        created_from,
        created_to: time("filter[createdAt][to]")?,
        after: cursor("page[after]")?,
        before: cursor("page[before]")?,
        limit,
    };
    Ok((params, reads))
}

/// `POST /engine/v1/runs/{runId}/wait/duration`: blocks the executing run until `date`, or
/// answers the live wait its idempotency key names (whose `waitUntil` may differ).
pub async fn wait_for_duration(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    Json(request): Json<WaitDurationRequest>,
) -> Result<axum::Json<WaitDurationResponse>, ApiError> {
    let run_id = run_id(&id)?;
    let until = Timestamp::parse(&request.date).ok_or_else(|| {
        ApiError::invalid(format!("date must be an ISO 8601 date or milliseconds, got '{}'", request.date))
    })?;
    let idempotency = match request.idempotency_key {
        None => None,
        Some(key) => {
            options::check_idempotency_key(&key)?;
            let ttl = request
                .idempotency_key_ttl
                .as_ref()
                .filter(|v| !v.is_null())
                .map(options::parse_key_ttl)
                .transpose()?;
            Some((key, ttl))
        }
    };
    let waitpoint = state.engine.wait_for_duration(&env, &run_id, until, idempotency).await?;
    Ok(axum::Json(WaitDurationResponse {
        wait_until: waitpoint.completed_after.unwrap_or(until).to_rfc3339(),
        waitpoint: WaitpointRef { id: waitpoint.id.to_string() },
    }))
}

/// `POST /engine/v1/runs/{runId}/waitpoints/tokens/{waitpointId}/wait`: blocks the executing run
/// on a token of its environment.
pub async fn wait_for_token(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path((run, token)): Path<(String, String)>,
) -> Result<axum::Json<SuccessResponse>, ApiError> {
    let run = run_id(&run)?;
    state.engine.block_on_token(&env, &run, &token_id(&token)?).await?;
    Ok(axum::Json(SuccessResponse { success: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn status_filters_become_the_reads_that_select_them() {
        let now = Timestamp(1_700_000_000_000);
        let reads = |statuses: &str| list_params(&query(&[("filter[status]", statuses)]), now).unwrap().1;
        let (pending, completed) = (Some(WaitpointStatus::Pending), Some(WaitpointStatus::Completed));
        assert_eq!(reads("WAITING"), vec![(pending, None)]);
        assert_eq!(reads("COMPLETED"), vec![(completed, Some(false))]);
        assert_eq!(reads("TIMED_OUT"), vec![(completed, Some(true))]);
        assert_eq!(reads("COMPLETED,TIMED_OUT"), vec![(completed, None)]);
        assert_eq!(reads("TIMED_OUT, WAITING"), vec![(pending, None), (completed, Some(true))]);
        assert_eq!(reads("WAITING,COMPLETED,TIMED_OUT"), vec![(None, None)]);
        let error = list_params(&query(&[("filter[status]", "WAITING,DONE")]), now).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_period_and_a_start_take_the_later() {
        let now = Timestamp(1_700_000_000_000);
        let day = 86_400_000;
        let from = |pairs: &[(&str, &str)]| list_params(&query(pairs), now).unwrap().0.created_from;
        assert_eq!(from(&[("filter[createdAt][period]", "1d")]), Some(Timestamp(now.0 - day)));
        let later = Timestamp(now.0 - 1000).to_rfc3339();
        assert_eq!(
            from(&[("filter[createdAt][period]", "1d"), ("filter[createdAt][from]", &later)]),
            Some(Timestamp(now.0 - 1000))
        );
        assert_eq!(from(&[("filter[createdAt][period]", "all")]), None);
        assert!(list_params(&query(&[("filter[createdAt][period]", "lately")]), now).is_err());
        assert!(list_params(&query(&[("filter[tag]", "a")]), now).is_err(), "runs' filter name is not the tokens'");
    }
}
