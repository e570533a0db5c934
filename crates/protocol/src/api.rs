//! The public REST API in Trigger.dev's shapes (reference §4 and §6).
//!
//! Request types refuse unknown fields, so a misspelt option is an error instead of being
//! silently ignored; they still list every option Trigger.dev's SDK may send, so the real SDK is
//! accepted. Response types accept unknown fields, so older clients keep working as the API grows.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use stint_types::metadata::Operation;
use stint_types::{RunStatus, SerializedError};

use crate::schedules::RunSchedule;

/// Body of `POST /api/v1/tasks/{taskId}/trigger`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// The task's input. Any JSON value for `application/json`; a string for other payload types.
    #[serde(default)]
    pub payload: Value,
    /// Free-form context, accepted for compatibility and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Trigger options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TriggerOptions>,
}

/// Options of a trigger request, with Trigger.dev's names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerOptions {
    /// The queue to run in; defaults to the task's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueOption>,
    /// Splits the queue into one sub-queue per key.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "string_or_number")]
    pub concurrency_key: Option<String>,
    /// Overrides the task's `retry.maxAttempts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
    /// Up to 10 tags, each at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "one_or_many")]
    pub tags: Option<Vec<String>>,
    /// A JSON object the run carries and the task can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The metadata's content type; only `application/json` is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_type: Option<String>,
    /// Seconds the run pretends to have been queued earlier, moving it ahead in its queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// The payload's content type; `application/json` unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_type: Option<String>,
    /// Size of the payload before offloading, measured by the SDK (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_size: Option<u64>,
    /// Seconds an attempt may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<f64>,
    /// Marks the run as a test run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<bool>,
    /// Machine preset name; accepted and recorded, runs use the worker's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// Region name; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The version of the environment's workers to run on, `YYYYMMDD.N`: the run is locked to it
    /// and only workers of that version take it. A string; anything else is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_to_version: Option<Value>,
    /// Deployment pinning (not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_deployment_id: Option<Value>,
    /// Delay before the run is queued: a duration like `1h30m` or an ISO 8601 date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Value>,
    /// How long the run may wait for its first attempt once queued: a duration like `10m` or
    /// whole seconds; `0` for none. Development environments default to 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Value>,
    /// At most one run per environment, task and key while the key applies (≤ 2048 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// How long the idempotency key applies: digits and a unit, `s`, `m`, `h` or `d` (default 30 days).
    #[serde(default, rename = "idempotencyKeyTTL", skip_serializing_if = "Option::is_none")]
    pub idempotency_key_ttl: Option<String>,
    /// The SDK's record of the caller's key and its scope; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key_options: Option<Value>,
    /// Debounce settings: `{key, delay, mode?: leading|trailing, maxDelay?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Value>,
    /// The run triggering this one from inside a task (`run_…`), a run of the same environment;
    /// the SDK sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<Value>,
    /// Whether the parent waits for this run (not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_parent_on_completion: Option<Value>,
    /// Batch membership (internal to Trigger.dev; not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_batch: Option<Value>,
    /// Bulk action membership (internal to Trigger.dev; not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_action_id: Option<Value>,
    /// Named concurrency limits (SDK 4.8; accepted and ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Value>,
    /// Engine v1 only; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_attempt: Option<Value>,
    /// Engine v1 only; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_attempt: Option<Value>,
    /// Engine v1 only; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_batch: Option<Value>,
}

impl TriggerOptions {
    /// Options that are recognised but not implemented yet, by name, when set.
    pub fn unsupported(&self) -> Vec<&'static str> {
        let named = [
            ("externalDeploymentId", &self.external_deployment_id),
            ("resumeParentOnCompletion", &self.resume_parent_on_completion),
            ("parentBatch", &self.parent_batch),
            ("bulkActionId", &self.bulk_action_id),
        ];
        named
            .into_iter()
            .filter(|(_, value)| value.as_ref().is_some_and(|v| !v.is_null()))
            .map(|(name, _)| name)
            .collect()
    }
}

/// The `queue` trigger option.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueOption {
    /// The queue's name.
    pub name: String,
    /// Deprecated in Trigger.dev (limits belong to the queue's declaration); accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<Value>,
}

/// Response of a trigger: the new run's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerResponse {
    /// The run's id (`run_…`).
    pub id: String,
    /// True when an existing run was returned instead of a new one.
    #[serde(default)]
    pub is_cached: bool,
}

/// Response of cancel and replay (a run's id) and of a schedule's delete (the schedule's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdResponse {
    /// The id.
    pub id: String,
}

/// Fields every run view shares (Trigger.dev's `CommonRunFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCommon {
    /// The run's id.
    pub id: String,
    /// Public status.
    pub status: RunStatus,
    /// The task's identifier.
    pub task_identifier: String,
    /// The idempotency key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The worker version the run is locked to (`YYYYMMDD.N`): the version of the worker that first
    /// started it, the one `lockToVersion` named, or for a replay the environment's current one;
    /// absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Status helper.
    pub is_queued: bool,
    /// Status helper.
    pub is_executing: bool,
    /// Status helper.
    pub is_waiting: bool,
    /// Status helper.
    pub is_completed: bool,
    /// Status helper.
    pub is_success: bool,
    /// Status helper.
    pub is_failed: bool,
    /// Status helper.
    pub is_cancelled: bool,
    /// Whether this is a test run.
    pub is_test: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When a delayed run is (or was) due to be queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_until: Option<String>,
    /// How long the run may wait for its first attempt once queued, like `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// When the run expired, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Always 0: Stint does not bill.
    pub cost_in_cents: f64,
    /// Always 0: Stint does not bill.
    pub base_cost_in_cents: f64,
    /// Milliseconds spent executing, summed over attempts.
    pub duration_ms: i64,
    /// The run's metadata object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// `STANDARD` for task runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kind: Option<String>,
}

/// A run as `GET /api/v3/runs/{runId}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunObject {
    /// The shared fields.
    #[serde(flatten)]
    pub common: RunCommon,
    /// Nesting depth; 0 for runs triggered from outside a task.
    pub depth: u32,
    /// How the run was triggered: `trigger`, or `batchTrigger` for a run of a batch.
    pub trigger_function: String,
    /// The batch the run was triggered in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The payload, decoded when it is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// The output, decoded when it is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The error of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SerializedError>,
    /// The schedule that fired the run, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<RunSchedule>,
    /// Parent, root and children.
    pub related_runs: RelatedRuns,
    /// Attempts started so far.
    pub attempt_count: u32,
    /// The run this one replays, if any (Stint addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_from: Option<String>,
}

/// Runs related to a run through the runs that triggered them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RelatedRuns {
    /// The first run of the chain of parents; absent for a run triggered from outside a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RelatedRun>,
    /// The run that triggered this one from inside a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RelatedRun>,
    /// The runs this one triggered, oldest first, at most 100; absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<RelatedRun>>,
}

/// A related run as `relatedRuns` shows it (Trigger.dev's `RelatedRunDetails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedRun {
    /// The shared fields.
    #[serde(flatten)]
    pub common: RunCommon,
    /// Nesting depth; 0 for runs triggered from outside a task.
    pub depth: u32,
    /// How the run was triggered (`trigger`).
    pub trigger_function: String,
}

/// Body of `POST /api/v1/runs/{runId}/tags`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddTagsRequest {
    /// A tag or several; merged with the run's tags.
    #[serde(deserialize_with = "one_or_many_required")]
    pub tags: Vec<String>,
}

/// An answer that is only a message, such as `{"message": "Successfully set 2 new tags."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageResponse {
    /// What happened.
    pub message: String,
}

/// Body of `PUT /api/v1/runs/{runId}/metadata`: a replacement object, operations, or both (the
/// replacement first).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMetadataRequest {
    /// Replaces the run's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// The replacement's content type; only `application/json` is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_type: Option<String>,
    /// Operations on the run's metadata, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<Operation>>,
    /// Operations on the parent run's metadata; ignored when the run has no parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_operations: Option<Vec<Operation>>,
    /// Operations on the root run's metadata; ignored when the run has no root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_operations: Option<Vec<Operation>>,
}

/// Answer of `GET` and `PUT /api/v1/runs/{runId}/metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// The run's metadata; an empty object when it has none.
    pub metadata: Value,
}

/// A run as `GET /api/v1/runs` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunListItem {
    /// The shared fields.
    #[serde(flatten)]
    pub common: RunCommon,
    /// The environment the run belongs to.
    pub env: RunEnvironment,
}

/// The environment of a listed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEnvironment {
    /// The environment's id.
    pub id: String,
    /// Its slug (`dev`, `staging`, `prod`).
    pub name: String,
}

/// Response of `GET /api/v1/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListRunsResponse {
    /// The page.
    pub data: Vec<RunListItem>,
    /// Cursors to the neighbouring pages.
    pub pagination: Pagination,
}

/// Cursor pagination: pass `next` as `page[after]` or `previous` as `page[before]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    /// Cursor of the next (older) page, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Cursor of the previous (newer) page, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// Accepts a string or an array of strings.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => None,
        Some(OneOrMany::One(tag)) => Some(vec![tag]),
        Some(OneOrMany::Many(tags)) => Some(tags),
    })
}

/// Accepts a string or an array of strings, and requires one of them.
fn one_or_many_required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    one_or_many(deserializer)?.ok_or_else(|| serde::de::Error::custom("tags must be a string or an array of strings"))
}

/// Accepts a string or a number, as Trigger.dev coerces concurrency keys.
fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrNumber {
        String(String),
        Number(serde_json::Number),
    }
    Ok(match Option::<StringOrNumber>::deserialize(deserializer)? {
        None => None,
        Some(StringOrNumber::String(key)) => Some(key),
        Some(StringOrNumber::Number(key)) => Some(key.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_sdk_shapes() {
        let request: TriggerRequest = serde_json::from_value(json!({
            "payload": {"name": "x"},
            "options": {"tags": "one", "concurrencyKey": 7, "queue": {"name": "q"}, "payloadType": "application/json"}
        }))
        .unwrap();
        let options = request.options.unwrap();
        assert_eq!(options.tags, Some(vec!["one".to_string()]));
        assert_eq!(options.concurrency_key.as_deref(), Some("7"));
        assert!(options.unsupported().is_empty());
    }

    #[test]
    fn refuses_misspelt_options_and_reports_unsupported_ones() {
        let err = serde_json::from_value::<TriggerRequest>(json!({"options": {"maxAttempt": 3}}));
        assert!(err.unwrap_err().to_string().contains("maxAttempt"));
        let request: TriggerRequest =
            serde_json::from_value(json!({"options": {"delay": "1h", "externalDeploymentId": "abc", "ttl": null}}))
                .unwrap();
        assert_eq!(request.options.unwrap().unsupported(), vec!["externalDeploymentId"]);
    }
}
