//! Waitpoint tokens in Trigger.dev's shapes (`/api/v1/waitpoints/tokens`), and the run-internal
//! wait endpoints (`/engine/v1/runs/{runId}/…`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `POST /api/v1/waitpoints/tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A key: a create with a key the environment's live token holds answers that token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// How long the key holds: a duration (`"1h"`) or seconds; for ever when absent.
    #[serde(default, rename = "idempotencyKeyTTL", skip_serializing_if = "Option::is_none")]
    pub idempotency_key_ttl: Option<Value>,
    /// When the token times out: a duration (`"10m"`) or an ISO 8601 date; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
    /// A tag or a list of up to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Value>,
}

/// Response of a token create.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenResponse {
    /// The token's id, `waitpoint_…`.
    pub id: String,
    /// Whether its idempotency key named an existing token.
    pub is_cached: bool,
    /// The callback URL that completes it without credentials: POST a JSON body to it.
    pub url: String,
}

/// A token as `GET /api/v1/waitpoints/tokens/{id}` and the list show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenObject {
    /// Its id.
    pub id: String,
    /// Its callback URL.
    pub url: String,
    /// `WAITING`, `COMPLETED` or `TIMED_OUT`.
    pub status: String,
    /// When it was completed or timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// When it times out, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_at: Option<String>,
    /// Its creator's idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// When that key stops applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key_expires_at: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Creation time.
    pub created_at: String,
    /// What it was completed with, as stored text (a JSON document for `application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The output's content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    /// Whether the output is an error (the token timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_is_error: Option<bool>,
}

/// Body of `POST /api/v1/waitpoints/tokens/{id}/complete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteTokenRequest {
    /// What the waiting runs get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `{"success": true}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuccessResponse {
    /// Always true.
    pub success: bool,
}

/// Body of `POST /engine/v1/runs/{runId}/wait/duration`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitDurationRequest {
    /// When the wait ends, ISO 8601.
    pub date: String,
    /// A key: a wait with a key the environment's live wait holds is that wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// How long the key holds.
    #[serde(default, rename = "idempotencyKeyTTL", skip_serializing_if = "Option::is_none")]
    pub idempotency_key_ttl: Option<Value>,
}

/// Response of a wait for a duration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitDurationResponse {
    /// When the wait ends.
    pub wait_until: String,
    /// The waitpoint.
    pub waitpoint: WaitpointRef,
}

/// A waitpoint's id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitpointRef {
    /// `waitpoint_…`.
    pub id: String,
}
