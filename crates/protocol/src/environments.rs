//! An environment's limits as the admin API shows and sets them: Trigger.dev's environment
//! concurrency limit and burst factor, and pausing the environment.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET|PATCH /api/v1/admin/projects/{ref}/environments/{env}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentLimits {
    /// The environment's id.
    pub id: String,
    /// Its slug: `dev`, `staging`, `prod` or `preview`.
    pub slug: String,
    /// The base limit: no queue of the environment runs more at once; `null` for none.
    pub concurrency_limit: Option<u32>,
    /// The environment's queues together run up to `concurrencyLimit × burstFactor`.
    pub burst_factor: f64,
    /// `⌊concurrencyLimit × burstFactor⌋`, or `null` without a limit.
    pub burst_limit: Option<u32>,
    /// Whether the environment is paused: none of its queues starts a run.
    pub paused: bool,
    /// Runs of the environment executing now.
    pub running: u64,
}

/// `PATCH /api/v1/admin/projects/{ref}/environments/{env}`: the fields given change, the others
/// stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetEnvironmentLimits {
    /// A whole number from 0, or `null` to remove the limit; absent leaves it as it is.
    #[serde(default, deserialize_with = "given", skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<Value>,
    /// From 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_factor: Option<f64>,
    /// Pause or resume the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// A field that is present, `null` included: absent fields stay `None` through `default`.
fn given<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}
