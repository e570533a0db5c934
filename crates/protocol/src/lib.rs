//! Stint's wire types.
//!
//! [`api`] holds the public REST API in Trigger.dev's paths and JSON shapes; [`admin`] the tenancy
//! administration and project-level endpoints; [`schedules`] the schedules API and the payload of a
//! scheduled run; [`worker`] holds the worker protocol that SDK
//! workers speak. Both the server and the SDK depend on this crate, so a
//! worker never links the server.

pub mod admin;
pub mod api;
pub mod batches;
pub mod durable;
pub mod environments;
pub mod queues;
pub mod schedules;
pub mod waitpoints;
pub mod worker;

pub use stint_types as types;

/// The body of every error response: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// What is wrong, in words a user can act on.
    pub error: String,
    /// A stable code where one applies (for example `STALE_SNAPSHOT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}
