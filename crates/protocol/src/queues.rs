//! The queues API in Trigger.dev's shapes (`GET /api/v1/queues`, pause, concurrency override),
//! and Stint's rate limit override.

use serde::{Deserialize, Serialize};

/// How a queue is named in a path: by id, or by a task's id or a queue name with `type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueRefType {
    /// The path holds the queue's id, `queue_…`.
    #[default]
    Id,
    /// The path holds a task's id: the task's own queue.
    Task,
    /// The path holds the name of a declared queue.
    Custom,
}

/// A queue (Trigger.dev's `QueueItem`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// The queue's id.
    pub id: String,
    /// The queue's name; a task's queue is named by the task's id.
    pub name: String,
    /// `task` for a task's own queue, `custom` for a declared one.
    #[serde(rename = "type")]
    pub kind: QueueKind,
    /// Runs executing now.
    pub running: u32,
    /// Runs waiting.
    pub queued: u64,
    /// Whether the queue is paused: it starts no run until resumed.
    pub paused: bool,
    /// The limit in force; `null` for unlimited.
    pub concurrency_limit: Option<u32>,
    /// Where the limit in force comes from.
    pub concurrency: QueueConcurrency,
    /// Always `true`: a run holds no slot while it waits. Kept for Trigger.dev's clients.
    pub release_concurrency_on_waitpoint: bool,
    /// The rate limit on the queue's starts in force; `null` for none. Stint's own: Trigger.dev
    /// has no such field.
    pub rate_limit: Option<QueueRate>,
}

/// A queue's rate limit in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueRate {
    /// Most starts per period.
    pub limit: u32,
    /// The period in ms.
    pub period_ms: u64,
    /// Whether each concurrency key gets the limit on its own.
    pub per_key: bool,
    /// When it was set through the API (ISO 8601); absent when it is the declared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden_at: Option<String>,
}

/// A queue's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// A task's own queue, `task/<taskId>`.
    Task,
    /// A queue declared by name.
    Custom,
}

/// A queue's limit in force, the declared one and the override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConcurrency {
    /// The limit in force.
    pub current: Option<u32>,
    /// The limit the tasks declare.
    pub base: Option<u32>,
    /// The override, if one is set.
    pub r#override: Option<u32>,
    /// When the override was set (ISO 8601).
    pub overridden_at: Option<String>,
    /// Who set the override; always `null` (Stint has no users yet).
    pub overridden_by: Option<String>,
}

/// A page of queues, numbered from 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueListResponse {
    /// The page.
    pub data: Vec<QueueItem>,
    /// Where the page is.
    pub pagination: PagePosition,
}

/// Offset pagination (Trigger.dev's `OffsetLimitPage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PagePosition {
    /// This page's number, from 1.
    pub current_page: u32,
    /// How many pages there are.
    pub total_pages: u64,
    /// How many items there are in all.
    pub count: u64,
}

/// Body of `POST /api/v1/queues/{queue}/pause`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseQueueRequest {
    /// How the path names the queue.
    #[serde(default, rename = "type")]
    pub kind: QueueRefType,
    /// What to do.
    pub action: PauseAction,
}

/// Pause or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseAction {
    /// Start no run of the queue.
    Pause,
    /// Start runs again.
    Resume,
}

/// Body of `POST /api/v1/queues/{queue}/concurrency/override`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideLimitRequest {
    /// How the path names the queue.
    #[serde(default, rename = "type")]
    pub kind: QueueRefType,
    /// The limit to put in force, 0 to 100,000.
    pub concurrency_limit: u32,
}

/// Body of `POST /api/v1/queues/{queue}/concurrency/reset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetLimitRequest {
    /// How the path names the queue.
    #[serde(default, rename = "type")]
    pub kind: QueueRefType,
}

/// Body of `POST /api/v1/queues/{queue}/rate-limit/override`: puts this rate limit in force
/// instead of the declared one, until it is reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideRateRequest {
    /// How the path names the queue.
    #[serde(default, rename = "type")]
    pub kind: QueueRefType,
    /// Most starts per period, 1 to 100,000.
    pub limit: u32,
    /// The period in ms, 1,000 to 86,400,000.
    pub period_ms: u64,
    /// Whether each concurrency key gets the limit on its own; `false` when absent.
    #[serde(default)]
    pub per_key: bool,
}

/// Body of `POST /api/v1/queues/{queue}/rate-limit/reset`: puts the declared rate limit (or none)
/// back in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRateRequest {
    /// How the path names the queue.
    #[serde(default, rename = "type")]
    pub kind: QueueRefType,
}
