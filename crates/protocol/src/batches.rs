//! Batches in Trigger.dev's shapes: the two-phase API (`POST /api/v3/batches`, then
//! `POST /api/v3/batches/{id}/items` with one item per NDJSON line), the legacy one-request batch
//! triggers (`/api/v1/tasks/batch`, `/api/v2/tasks/batch`, `/api/v1/tasks/{taskId}/batch`) and
//! `GET /api/v1|v2/batches/{id}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stint_types::BatchStatus;

use crate::api::{TriggerOptions, TriggerRequest};

/// Body of `POST /api/v3/batches`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBatchRequest {
    /// How many items the batch will have, 1 to 1,000.
    pub run_count: i64,
    /// The distinct tasks of its items, declared ahead (each a task identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_identifiers: Option<Vec<String>>,
    /// The run waiting for the batch (not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<Value>,
    /// Whether the parent waits for the batch (not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_parent_on_completion: Option<bool>,
    /// A later create with the same key (in the same environment) is answered by this batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The SDK's record of the caller's key and its scope; accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key_options: Option<Value>,
}

/// Response of `POST /api/v3/batches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBatchResponse {
    /// The batch's id (`batch_…`).
    pub id: String,
    /// How many items it has.
    pub run_count: u32,
    /// True when the idempotency key found an existing batch.
    pub is_cached: bool,
    /// The idempotency key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// One line of the NDJSON body of `POST /api/v3/batches/{id}/items`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchItemLine {
    /// The item's place in the batch, from 0: items are deduplicated by it.
    pub index: i64,
    /// The task to run.
    pub task: String,
    /// The task's input.
    #[serde(default)]
    pub payload: Value,
    /// Free-form context, accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The item's trigger options, as a single trigger's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TriggerOptions>,
}

/// Response of `POST /api/v3/batches/{id}/items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamItemsResponse {
    /// The batch's id.
    pub id: String,
    /// Items of this request whose index had not arrived before.
    pub items_accepted: u32,
    /// Items of this request whose index had arrived already: nothing was made for them.
    pub items_deduplicated: u32,
    /// Whether every item of the batch has arrived.
    pub sealed: bool,
    /// Items arrived so far, when not sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_count: Option<u32>,
    /// Items the batch expects, when not sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_count: Option<u32>,
}

/// One item of `POST /api/v1/tasks/batch` and `POST /api/v2/tasks/batch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchTriggerItem {
    /// The task to run.
    pub task: String,
    /// The task's input.
    #[serde(default)]
    pub payload: Value,
    /// Free-form context, accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The item's trigger options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TriggerOptions>,
}

/// Body of `POST /api/v1/tasks/batch` and `POST /api/v2/tasks/batch`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchTriggerRequest {
    /// The items, 1 to 1,000.
    pub items: Vec<BatchTriggerItem>,
    /// Engine v1 only; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_attempt: Option<Value>,
    /// The run waiting for the batch (not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<Value>,
    /// Whether the parent waits for the batch (not supported yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_parent_on_completion: Option<bool>,
}

/// Body of `POST /api/v1/tasks/{taskId}/batch`: items of one task.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskBatchRequest {
    /// The items, 1 to 1,000, each a trigger's body.
    pub items: Vec<TriggerRequest>,
    /// Engine v1 only; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_attempt: Option<Value>,
}

/// Response of `POST /api/v1/tasks/{taskId}/batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskBatchResponse {
    /// The batch's id.
    pub batch_id: String,
    /// Its runs' ids, in item order.
    pub runs: Vec<String>,
}

/// A run of a batch in the answer of a one-request batch trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRunSummary {
    /// The run's id.
    pub id: String,
    /// Its task.
    pub task_identifier: String,
    /// True when the item's idempotency key found an existing run.
    pub is_cached: bool,
    /// The item's idempotency key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Response of `POST /api/v1/tasks/batch` (Trigger.dev's `BatchTriggerTaskV2Response`) and of
/// `POST /api/v2/tasks/batch`. Trigger.dev answers the latter with `{id, runCount}` only, since it
/// makes the runs later; Stint makes them before answering, so it adds the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTriggerResponse {
    /// The batch's id.
    pub id: String,
    /// True when the batch's idempotency key found an existing batch.
    pub is_cached: bool,
    /// The batch's idempotency key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// How many items the batch has (`/api/v2/tasks/batch` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_count: Option<u32>,
    /// Its runs, in item order.
    pub runs: Vec<BatchRunSummary>,
}

/// A batch as `GET /api/v1/batches/{id}` and `GET /api/v2/batches/{id}` return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchObject {
    /// The batch's id.
    pub id: String,
    /// `PENDING` until every item has arrived, `PROCESSING` until every run has finished, then
    /// `COMPLETED`.
    pub status: BatchStatus,
    /// Its idempotency key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: its last item's arrival, or once completed its last run's end.
    pub updated_at: String,
    /// How many items it has.
    pub run_count: u32,
    /// The runs of the items that have arrived, in item order.
    pub runs: Vec<String>,
    /// When every item had become a run (v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_completed_at: Option<String>,
    /// How making its runs went (v2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<BatchProcessing>,
}

/// How making a batch's runs went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchProcessing {
    /// When every item had become a run: the batch's seal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Items that could not become runs: always empty, since an item that cannot is refused
    /// with its request.
    pub errors: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_sdk_shapes() {
        let line: BatchItemLine = serde_json::from_value(json!({
            "index": 3, "task": "t", "payload": {"a": 1}, "options": {"tags": ["x"], "idempotencyKey": "k"}
        }))
        .unwrap();
        assert_eq!((line.index, line.task.as_str()), (3, "t"));
        assert_eq!(line.options.unwrap().idempotency_key.as_deref(), Some("k"));
        let create: CreateBatchRequest =
            serde_json::from_value(json!({"runCount": 2, "taskIdentifiers": ["t"], "idempotencyKey": "b"})).unwrap();
        assert_eq!(create.run_count, 2);
        assert!(serde_json::from_value::<BatchItemLine>(json!({"index": 0, "task": "t", "extra": 1})).is_err());
    }
}
