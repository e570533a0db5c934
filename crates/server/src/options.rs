//! Trigger options: checks a trigger request's body and headers and turns them into the
//! engine's parameters, saying what is wrong when they cannot be accepted. Every way of making a
//! run (a trigger, a batch item, a child run a task waits for) goes through here, and so do the
//! options of a waitpoint token and of a run's wait for a duration.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use stint_engine::{Debounce, DebounceMode, Delay, Idempotency, TokenParams, TriggerParams};
use stint_protocol::api::TriggerRequest;
use stint_protocol::waitpoints::CreateTokenRequest;
use stint_types::{RunId, Timestamp, check_version, duration, names};

use crate::error::ApiError;

/// Longest idempotency key (Trigger.dev's limit).
const MAX_IDEMPOTENCY_KEY: usize = 2048;
/// How long an idempotency key applies when the trigger does not say (Trigger.dev's default).
const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(30 * 86_400);
/// Longest debounce key (Trigger.dev's limit).
const MAX_DEBOUNCE_KEY: usize = 512;
/// Largest metadata object, serialized (Trigger.dev's limit).
const MAX_METADATA_BYTES: usize = 256 * 1024;

/// Checks a trigger request and turns it into engine parameters, saying what is wrong if it
/// cannot be accepted.
pub(crate) fn trigger_params(
    task_id: String,
    request: TriggerRequest,
    key_header: Option<String>,
    ttl_header: Option<String>,
) -> Result<TriggerParams, ApiError> {
    let options = request.options.unwrap_or_default();
    let idempotency = match options.idempotency_key.clone().or(key_header) {
        None => None,
        Some(key) => {
            check_idempotency_key(&key)?;
            let ttl = match options.idempotency_key_ttl.as_deref().or(ttl_header.as_deref()) {
                None => DEFAULT_IDEMPOTENCY_TTL,
                Some(text) => parse_ttl(text).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "idempotencyKeyTTL must be digits and a unit (s, m, h or d), like 10m or 7d; got '{text}'"
                    ))
                })?,
            };
            Some(Idempotency { key, ttl })
        }
    };
    let delay = options.delay.as_ref().filter(|v| !v.is_null()).map(parse_delay).transpose()?;
    let ttl_secs = options.ttl.as_ref().filter(|v| !v.is_null()).map(parse_run_ttl).transpose()?;
    let debounce = options.debounce.as_ref().filter(|v| !v.is_null()).map(parse_debounce).transpose()?;
    let unsupported = options.unsupported();
    if !unsupported.is_empty() {
        return Err(ApiError::invalid(format!("Options not supported yet: {}", unsupported.join(", "))));
    }
    let payload_type = options.payload_type.clone().unwrap_or_else(|| "application/json".into());
    let payload = match (payload_type.as_str(), request.payload) {
        ("application/json", payload) => payload.to_string(),
        (_, Value::String(text)) => text,
        (other, _) => {
            return Err(ApiError::invalid(format!("payload must be a string when payloadType is {other}")));
        }
    };
    if let Some(queue) = &options.queue {
        names::check_queue_name(&queue.name).map_err(ApiError::invalid)?;
    }
    let tags = names::normalize_tags(options.tags.unwrap_or_default()).map_err(ApiError::invalid)?;
    let metadata = match options.metadata {
        None | Some(Value::Null) => None,
        Some(object @ Value::Object(_)) => {
            if options.metadata_type.as_deref().is_some_and(|t| t != "application/json") {
                return Err(ApiError::invalid("metadataType must be application/json"));
            }
            let text = object.to_string();
            if text.len() > MAX_METADATA_BYTES {
                return Err(ApiError::invalid(format!(
                    "metadata is {} bytes, over the limit of {MAX_METADATA_BYTES}",
                    text.len()
                )));
            }
            Some(text)
        }
        Some(_) => return Err(ApiError::invalid("metadata must be a JSON object")),
    };
    let max_attempts = match options.max_attempts {
        None => None,
        Some(n @ 1..=250) => Some(n as u32),
        Some(n) => return Err(ApiError::invalid(format!("maxAttempts must be between 1 and 250, got {n}"))),
    };
    let priority_ms = match options.priority {
        None => 0,
        Some(p) if p.is_finite() => (p * 1000.0).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i64,
        Some(_) => return Err(ApiError::invalid("priority must be a finite number of seconds")),
    };
    let max_duration = match options.max_duration {
        None => None,
        Some(s) if s.is_finite() && s >= 1.0 => Some(s.min(f64::from(i32::MAX)).round() as u32),
        Some(s) => return Err(ApiError::invalid(format!("maxDuration must be at least 1 second, got {s}"))),
    };
    let parent_run_id = match &options.parent_run_id {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => {
            Some(RunId::parse(id).map_err(|_| ApiError::invalid(format!("parentRunId: '{id}' is not a run id")))?)
        }
        Some(_) => return Err(ApiError::invalid("parentRunId must be a run id (run_…)")),
    };
    if let Some(key) = &options.concurrency_key
        && (key.is_empty() || key.len() > 1024)
    {
        return Err(ApiError::invalid("concurrencyKey must be 1 to 1024 characters"));
    }
    // Whether the environment has the version is the engine's to say, in the trigger's transaction.
    let lock_to_version = match options.lock_to_version {
        None | Some(Value::Null) => None,
        Some(Value::String(version)) => {
            check_version(&version).map_err(|e| ApiError::invalid(format!("lockToVersion: {e}")))?;
            Some(version)
        }
        Some(_) => return Err(ApiError::invalid("lockToVersion must be a string, a version like 20261130.1")),
    };
    Ok(TriggerParams {
        task_id,
        payload,
        payload_type,
        queue: options.queue.map(|q| q.name),
        concurrency_key: options.concurrency_key,
        max_attempts,
        tags,
        metadata,
        priority_ms,
        is_test: options.test.unwrap_or(false),
        machine: options.machine,
        max_duration,
        replayed_from: None,
        idempotency,
        delay,
        ttl_secs,
        debounce,
        request_key: None,
        lock_to_version,
        parent_run_id,
    })
}

/// Checks the options of a new waitpoint token: `timeout` a duration like `1h30m` or an ISO 8601
/// date (counted from `now`), `idempotencyKeyTTL` a duration or whole seconds, `tags` a tag or a
/// list normalised as a run's.
pub(crate) fn token_params(request: CreateTokenRequest, now: Timestamp) -> Result<TokenParams, ApiError> {
    if let Some(key) = &request.idempotency_key {
        check_idempotency_key(key)?;
    }
    let ttl = request.idempotency_key_ttl.as_ref().filter(|v| !v.is_null()).map(parse_key_ttl).transpose()?;
    let timeout = match request.timeout.as_ref().filter(|v| !v.is_null()) {
        None => None,
        Some(value) => Some(
            match parse_delay(value).map_err(|_| {
                ApiError::invalid(format!("timeout must be a duration like 1h30m or an ISO 8601 date; got {value}"))
            })? {
                Delay::For(duration) => now.plus(duration),
                Delay::Until(at) => at,
            },
        ),
    };
    let tags = match request.tags {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(tag)) => vec![tag],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(tag) => Ok(tag),
                other => Err(ApiError::invalid(format!("tags must be strings; got {other}"))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::invalid(format!("tags must be a string or an array of strings; got {other}")));
        }
    };
    let count = tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect::<std::collections::HashSet<_>>().len();
    if count > names::MAX_TAGS {
        return Err(ApiError::invalid(format!("tags: a token can have at most {} tags, got {count}", names::MAX_TAGS)));
    }
    let tags = names::normalize_tags(tags).map_err(|e| ApiError::invalid(format!("tags: {e}")))?;
    let idempotency_key_ttl = ttl.filter(|_| request.idempotency_key.is_some());
    Ok(TokenParams { idempotency_key: request.idempotency_key, idempotency_key_ttl, timeout, tags })
}

/// Checks a creator's idempotency key: 1 to 2,048 characters (Trigger.dev's limit).
pub(crate) fn check_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid(format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters")));
    }
    Ok(())
}

/// The `idempotencyKeyTTL` of a token or a wait: digits and a unit as a trigger's (`10m`, `7d`),
/// any duration like `1h30m`, or a whole number of seconds.
pub(crate) fn parse_key_ttl(value: &Value) -> Result<Duration, ApiError> {
    let parsed = match value {
        Value::String(text) => parse_ttl(text).or_else(|| duration::parse(text)),
        Value::Number(n) => n.as_u64().map(Duration::from_secs),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ApiError::invalid(format!(
            "idempotencyKeyTTL must be a duration like 10m or 7d, or a whole number of seconds; got {value}"
        ))
    })
}

/// The `delay` option: a duration like `1h30m`, or an ISO 8601 date (a date already past means no
/// delay).
pub(crate) fn parse_delay(value: &Value) -> Result<Delay, ApiError> {
    let invalid = || ApiError::invalid(format!("delay must be a duration like 1h30m or an ISO 8601 date; got {value}"));
    let Value::String(text) = value else { return Err(invalid()) };
    if let Some(delay) = duration::parse(text) {
        return Ok(Delay::For(delay));
    }
    Timestamp::parse_date(text).map(Delay::Until).ok_or_else(invalid)
}

/// The `ttl` option: a duration like `10m` or whole seconds; `0` means no TTL.
fn parse_run_ttl(value: &Value) -> Result<u32, ApiError> {
    let seconds = match value {
        Value::String(text) => duration::parse(text).map(|d| d.as_secs()),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    seconds.and_then(|s| u32::try_from(s).ok()).ok_or_else(|| {
        ApiError::invalid(format!("ttl must be a duration like 10m or a whole number of seconds; got {value}"))
    })
}

/// The `debounce` option as Trigger.dev's SDK sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DebounceOption {
    key: String,
    delay: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    max_delay: Option<String>,
}

/// The `debounce` option: `{key, delay, mode?, maxDelay?}`.
fn parse_debounce(value: &Value) -> Result<Debounce, ApiError> {
    let option: DebounceOption = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::invalid(format!("debounce must be {{key, delay, mode?, maxDelay?}}: {e}")))?;
    if option.key.is_empty() || option.key.chars().count() > MAX_DEBOUNCE_KEY {
        return Err(ApiError::invalid(format!("debounce.key must be 1 to {MAX_DEBOUNCE_KEY} characters")));
    }
    let delay = duration::parse(&option.delay).filter(|d| d.as_secs() >= 1).ok_or_else(|| {
        ApiError::invalid(format!("debounce.delay must be a duration of at least 1s like 5s; got '{}'", option.delay))
    })?;
    let mode = match option.mode.as_deref() {
        None | Some("leading") => DebounceMode::Leading,
        Some("trailing") => DebounceMode::Trailing,
        Some(other) => {
            return Err(ApiError::invalid(format!("debounce.mode must be leading or trailing; got '{other}'")));
        }
    };
    let max_delay = match option.max_delay.as_deref() {
        None => None,
        Some(text) => match duration::parse(text) {
            Some(max) if max > delay => Some(max),
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "debounce.maxDelay ({text}) must be longer than debounce.delay ({})",
                    option.delay
                )));
            }
            None => {
                return Err(ApiError::invalid(format!("debounce.maxDelay must be a duration like 1m; got '{text}'")));
            }
        },
    };
    Ok(Debounce { key: option.key, delay, mode, max_delay })
}

/// An idempotency key's time to live as Trigger.dev writes it: digits and one unit, `s`, `m`,
/// `h` or `d`.
fn parse_ttl(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let amount: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    amount.checked_mul(seconds).map(Duration::from_secs)
}
