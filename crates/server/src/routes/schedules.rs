//! The schedules API, as Trigger.dev's: create (an upsert by deduplication key), list, retrieve,
//! update, delete, activate and deactivate; and the time zones a schedule accepts.
//!
//! A schedule belongs to the environment of the key that made it: another environment's is a
//! 404, as a missing one. The engine checks the expression, the time zone and the task, and names
//! the field at fault; this module checks what the engine does not see (the request's shape, the
//! deduplication key, the query).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use stint_engine::{ScheduleParams, ScheduleView};
use stint_protocol::api::IdResponse;
use stint_protocol::queues::PagePosition;
use stint_protocol::schedules::{
    CreateScheduleRequest, GeneratorType, RunSchedule, ScheduleEnvironment, ScheduleGenerator, ScheduleListResponse,
    ScheduleObject, ScheduleType, TimezonesResponse, UpdateScheduleRequest,
};
use stint_store::{EnvironmentRow, ScheduleRow};
use stint_types::ScheduleId;
use stint_types::cron::{self, Cron};

use crate::AppState;
use crate::auth::Env;
use crate::error::ApiError;
use crate::json::Json;
use crate::routes::runs::refuse_unknown;

/// Schedules per page when the request does not say (Trigger.dev's).
const DEFAULT_PER_PAGE: u32 = 10;
/// Most schedules per page; a larger `perPage` is cut to it, as Trigger.dev does.
const MAX_PER_PAGE: u32 = 100;
/// Longest deduplication key or external id.
const MAX_KEY_LEN: usize = 2048;

/// `POST /api/v1/schedules`: makes an imperative schedule, or changes the environment's schedule
/// with the same `deduplicationKey`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Json(request): Json<CreateScheduleRequest>,
) -> Result<axum::Json<ScheduleObject>, ApiError> {
    refuse_window(request.window.as_ref())?;
    if request.deduplication_key.is_empty() {
        return Err(ApiError::invalid("deduplicationKey: must not be empty"));
    }
    check_length("deduplicationKey", Some(&request.deduplication_key))?;
    check_length("externalId", request.external_id.as_ref())?;
    let params = ScheduleParams {
        task_id: request.task,
        cron: request.cron,
        timezone: request.timezone,
        external_id: request.external_id,
        dedup_key: Some(request.deduplication_key),
    };
    let view = state.engine.create_schedule(&env, params).await?;
    Ok(axum::Json(schedule_object(&view, &env)))
}

/// `GET /api/v1/schedules?page=&perPage=&task=`: the environment's schedules, a page at a time,
/// of one task with `task`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<ScheduleListResponse>, ApiError> {
    refuse_unknown(&query, &["page", "perPage", "task"])?;
    let number = |key: &str, default: u32| -> Result<u32, ApiError> {
        match query.get(key) {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(ApiError::bad_request(format!("{key} must be a whole number from 1, got '{text}'"))),
            },
        }
    };
    let page = number("page", 1)?;
    let per_page = number("perPage", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE);
    let task = query.get("task").cloned();
    let (views, count) = state.engine.schedules(&env, task, page, per_page).await?;
    Ok(axum::Json(ScheduleListResponse {
        data: views.iter().map(|view| schedule_object(view, &env)).collect(),
        pagination: PagePosition { current_page: page, total_pages: count.div_ceil(u64::from(per_page)), count },
    }))
}

/// `GET /api/v1/schedules/{id}`.
pub async fn retrieve(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleObject>, ApiError> {
    let view = state.engine.schedule(&env, &schedule_id(&id)?).await?;
    Ok(axum::Json(schedule_object(&view, &env)))
}

/// `PUT /api/v1/schedules/{id}`: replaces an imperative schedule's task, expression, time zone
/// and external id; a declarative one is changed by its task's code only (422).
pub async fn update(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
    Json(request): Json<UpdateScheduleRequest>,
) -> Result<axum::Json<ScheduleObject>, ApiError> {
    let id = schedule_id(&id)?;
    refuse_window(request.window.as_ref())?;
    check_length("externalId", request.external_id.as_ref())?;
    let params = ScheduleParams {
        task_id: request.task,
        cron: request.cron,
        timezone: request.timezone,
        external_id: request.external_id,
        dedup_key: None,
    };
    let view = state.engine.update_schedule(&env, &id, params).await?;
    Ok(axum::Json(schedule_object(&view, &env)))
}

/// `DELETE /api/v1/schedules/{id}`: deletes an imperative schedule → `{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<IdResponse>, ApiError> {
    let deleted = state.engine.delete_schedule(&env, &schedule_id(&id)?).await?;
    Ok(axum::Json(IdResponse { id: deleted.id.to_string() }))
}

/// `POST /api/v1/schedules/{id}/activate`: the schedule triggers runs again.
pub async fn activate(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleObject>, ApiError> {
    let view = state.engine.set_schedule_active(&env, &schedule_id(&id)?, true).await?;
    Ok(axum::Json(schedule_object(&view, &env)))
}

/// `POST /api/v1/schedules/{id}/deactivate`: the schedule triggers no run until activated; its
/// times go on.
pub async fn deactivate(
    State(state): State<Arc<AppState>>,
    Env(env): Env,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleObject>, ApiError> {
    let view = state.engine.set_schedule_active(&env, &schedule_id(&id)?, false).await?;
    Ok(axum::Json(schedule_object(&view, &env)))
}

/// `GET /api/v1/timezones?excludeUtc=true|false`: the IANA time zones a schedule accepts, `UTC`
/// first (unless `excludeUtc=true`), then the others by name, as Trigger.dev lists them.
pub async fn timezones(
    Env(_env): Env,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<TimezonesResponse>, ApiError> {
    refuse_unknown(&query, &["excludeUtc"])?;
    let exclude_utc = match query.get("excludeUtc").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(ApiError::bad_request(format!("excludeUtc must be true or false, got '{other}'"))),
    };
    let mut zones: Vec<String> = cron::timezones().into_iter().filter(|z| *z != "UTC").map(String::from).collect();
    zones.sort();
    if !exclude_utc {
        zones.insert(0, "UTC".into());
    }
    Ok(axum::Json(TimezonesResponse { timezones: zones }))
}

/// The schedule a run shows: the one that fired it.
pub(crate) fn run_schedule(schedule: &ScheduleRow) -> RunSchedule {
    RunSchedule {
        id: schedule.id.to_string(),
        external_id: schedule.external_id.clone(),
        deduplication_key: schedule.dedup_key.clone(),
        generator: generator(schedule, describe(schedule)),
    }
}

/// A schedule id from a path; anything that is not one is a schedule that does not exist.
fn schedule_id(text: &str) -> Result<ScheduleId, ApiError> {
    ScheduleId::parse(text).map_err(|_| ApiError::not_found(format!("Schedule {text} not found")))
}

/// Trigger.dev's `window` (a spread of fire times) is not built: refused rather than ignored.
fn refuse_window(window: Option<&serde_json::Value>) -> Result<(), ApiError> {
    match window {
        Some(value) if !value.is_null() => Err(ApiError::invalid("window: not supported yet; send no window")),
        _ => Ok(()),
    }
}

fn check_length(field: &str, value: Option<&String>) -> Result<(), ApiError> {
    match value {
        Some(text) if text.len() > MAX_KEY_LEN => {
            Err(ApiError::invalid(format!("{field}: must be at most {MAX_KEY_LEN} bytes, got {}", text.len())))
        }
        _ => Ok(()),
    }
}

/// A schedule as the API shows it, in the environment that owns it.
fn schedule_object(view: &ScheduleView, env: &EnvironmentRow) -> ScheduleObject {
    let schedule = &view.schedule;
    ScheduleObject {
        id: schedule.id.to_string(),
        kind: schedule_type(&schedule.kind),
        task: schedule.task_id.clone(),
        active: schedule.active,
        deduplication_key: schedule.dedup_key.clone(),
        external_id: schedule.external_id.clone(),
        generator: generator(schedule, view.description.clone()),
        timezone: schedule.timezone.clone(),
        next_run: schedule.next_run.map(|t| t.to_rfc3339()),
        environments: vec![ScheduleEnvironment { id: env.id.to_string(), kind: env.kind, user_name: None }],
    }
}

fn schedule_type(kind: &str) -> ScheduleType {
    if kind == "DECLARATIVE" { ScheduleType::Declarative } else { ScheduleType::Imperative }
}

fn generator(schedule: &ScheduleRow, description: String) -> ScheduleGenerator {
    ScheduleGenerator { kind: GeneratorType::Cron, expression: schedule.cron.clone(), description }
}

/// The schedule's expression in words; the expression itself if it no longer parses.
fn describe(schedule: &ScheduleRow) -> String {
    Cron::parse(&schedule.cron, Some(&schedule.timezone)).map_or_else(|_| schedule.cron.clone(), |c| c.describe())
}
