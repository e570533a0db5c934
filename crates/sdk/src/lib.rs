//! Write Stint tasks in Rust and run them in a worker process.
//!
//! A task is an async function from a payload to an output, both serde types. A [`Worker`]
//! registers its tasks with a Stint server, takes runs, executes them with bounded concurrency,
//! reports heartbeats and results, and stops gracefully on SIGTERM or ctrl-c: it disconnects so
//! the server stops handing it runs at once, lets the attempts in progress finish within a grace
//! period and sends their results. It speaks the worker protocol in `docs/worker-protocol.md`.
//!
//! ```no_run
//! use serde::Deserialize;
//! use serde_json::{Value, json};
//! use stint_sdk::{Task, TaskContext, TaskError, Worker};
//!
//! #[derive(Deserialize)]
//! struct Hello {
//!     name: String,
//! }
//!
//! async fn hello_world(ctx: TaskContext, payload: Hello) -> Result<Value, TaskError> {
//!     ctx.logger().info(format!("greeting {}", payload.name));
//!     Ok(json!({"message": format!("Hello, {}!", payload.name)}))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), stint_sdk::Error> {
//!     Worker::from_env()?.task(Task::new("hello-world", hello_world)).run().await
//! }
//! ```
//!
//! Errors a task returns fail the attempt; the server retries it according to the task's
//! [`Retry`] settings unless the error is [fatal](TaskError::fatal). A panic fails only its
//! attempt. A payload that does not decode into the task's input type fails the run without
//! retries.

mod client;
mod context;
mod error;
mod metadata;
mod retry;
mod runtime;
mod task;
mod task_error;
mod trigger_options;
mod worker;

pub use client::{BatchHandle, BatchItem, Client, TriggerHandle};
pub use context::{Logger, TaskContext};
pub use error::Error;
pub use metadata::{Metadata, MetadataError};
pub use retry::Retry;
pub use task::Task;
pub use task_error::TaskError;
pub use trigger_options::{Debounce, DebounceMode, TriggerOptions, When};
pub use worker::{
    DEFAULT_API_URL, DEFAULT_CONCURRENCY, DEFAULT_DEQUEUE_WAIT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_VERSION, Worker,
};

/// The wire and domain types the SDK speaks, for tests and tools built on it.
pub use stint_protocol as protocol;
