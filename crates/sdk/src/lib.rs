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
//!
//! # Durable execution
//!
//! A task can record the results of its work in the run's journal and wait for time, tokens or
//! child runs for as long as it takes, without holding a worker while it waits:
//! [`TaskContext::step`], [`TaskContext::wait_for`], [`TaskContext::wait_until`],
//! [`TaskContext::wait_for_token`], [`TaskContext::trigger_and_wait`] and
//! [`TaskContext::batch_trigger_and_wait`] are its durable calls.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use stint_sdk::{TaskContext, TaskError, TriggerOptions};
//!
//! async fn onboard(ctx: TaskContext, user: String) -> Result<String, TaskError> {
//!     // Runs once per run: a replay gets the recorded id back.
//!     let account: String = ctx.step("create-account", || async { Ok(format!("acct-{user}")) }).await?;
//!     // A long wait suspends the run and frees the worker.
//!     ctx.wait_for(Duration::from_secs(24 * 3_600)).await?;
//!     let report = ctx.trigger_and_wait("send-report", &account, TriggerOptions::new()).await?;
//!     let sent: bool = report.output()?;
//!     Ok(format!("{account}: report sent {sent}"))
//! }
//! ```
//!
//! A wait that the server cannot answer at once blocks the run. The attempt first waits in place,
//! holding its slot; after the server's threshold (5 s by default) the server suspends the run:
//! the attempt ends without a result and frees its slot. When the waits complete the run is
//! queued again, and a worker *replays* it: it runs the task again from the top, and each durable
//! call whose result the journal holds returns that result at once instead of being made again.
//! A failed attempt's retry replays the same way. So a task must follow these rules:
//!
//! - **The same durable calls, in the same order, on every replay.** Calls are numbered in call
//!   order from 0, and each is checked against the journal's entry at its position: its kind, and
//!   a step's name, a token's id, a child's task identifier, a batch's item count (not a wait's
//!   time, which `wait_for` computes anew). Branch only on what a replay sees the same: the
//!   payload, and results of durable calls. Not on the clock, randomness, or data read outside a
//!   step. A call that does not match fails the run with `NonDeterminismError`, without retries.
//! - **Code outside steps runs again on every replay**, including logging and metadata changes
//!   (put changes that must happen once inside a step). Only a step's closure is skipped once its
//!   output is recorded.
//! - **Steps must be idempotent.** A step runs until it succeeds once, and can run again after
//!   succeeding if the worker crashes or loses the server between running it and recording its
//!   output. A step that fails records nothing, so the next attempt runs it again.
//! - **One durable call at a time.** Do not join or spawn them side by side, do not make one
//!   inside a step, and do not drop one unfinished (a `select!` or a timeout around it): the run
//!   then fails with `ConcurrentDurableCallError`. Clones of a [`TaskContext`] share one counter.
//! - **Outputs round-trip through JSON.** A replay reads a step's output back from the journal as
//!   JSON, so its type must deserialize from what it serializes to, and must not change between
//!   the attempt that records it and the ones that replay it.
//!
//! Every durable call returns a [`DurableError`] when it cannot give its result; `?` turns it into
//! the [`TaskError`] it stands for.
//!
//! # Schedules
//!
//! [`Task::cron`] and [`Task::schedule`] declare a cron schedule with the task; schedules can
//! also be made through the API (`POST /api/v1/schedules`, `stint schedules create`) for any
//! task. Either way each run's payload is a [`SchedulePayload`]: the schedule's id, the time the
//! run was due, the time before, the schedule's external id and time zone, and its next times.
//!
//! ```no_run
//! use stint_sdk::{SchedulePayload, Task, TaskContext, TaskError};
//!
//! async fn tick(_ctx: TaskContext, payload: SchedulePayload) -> Result<String, TaskError> {
//!     Ok(format!("due at {}", payload.timestamp.to_rfc3339()))
//! }
//!
//! let task = Task::new("tick", tick).cron("*/5 * * * *");
//! ```

mod client;
mod context;
mod durable;
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
pub use durable::{BatchResult, ChildRunError, DurableError, RunResult, TokenTimeout};
pub use error::Error;
pub use metadata::{Metadata, MetadataError};
pub use retry::Retry;
pub use task::Task;
pub use task_error::TaskError;
pub use trigger_options::{Debounce, DebounceMode, TriggerOptions, When};

/// The payload of a run a schedule fired ([`Task::cron`], [`Task::schedule`], or a schedule made
/// through the API), and its kind.
pub use stint_protocol::schedules::{SchedulePayload, ScheduleType};
/// A point in time, as the SDK's types carry it: ms since the Unix epoch, in UTC.
pub use stint_protocol::types::Timestamp;
pub use worker::{
    DEFAULT_API_URL, DEFAULT_CONCURRENCY, DEFAULT_DEQUEUE_WAIT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_VERSION, Worker,
};

/// The wire and domain types the SDK speaks, for tests and tools built on it.
pub use stint_protocol as protocol;
