//! An example Stint worker: a few tasks to copy, run with
//! `STINT_SECRET_KEY=tr_dev_… cargo run -p hello-worker`.
//!
//! Tasks: `hello-world` (greets by name), `flaky` (fails its first attempts), `sleep`, `noop`,
//! `throttled` (a queue limit of 2), `rated` (5 starts a second per concurrency key), `progress`
//! (reports its steps in the run's metadata while it runs), `parent` (triggers a child run),
//! tasks that wait durably (`durable.rs`): `wait-seconds`, `wait-token`, `fan-out` and `steps`,
//! and scheduled tasks: `tick` (for schedules made through the API) and `nightly-report`
//! (declared with the task: 03:00 in London every day).
//!
//! Environment: `STINT_API_URL` (default `http://127.0.0.1:3030`), `STINT_SECRET_KEY`
//! (required), `STINT_WORKER_CONCURRENCY` (default 10), `RUST_LOG` (default `info`) and
//! `STINT_LEDGER` (optional, see `ledger.rs`).

mod durable;
mod ledger;

use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use stint_sdk::{Retry, SchedulePayload, Task, TaskContext, TaskError, TriggerOptions, Worker};
use tracing_subscriber::EnvFilter;

use ledger::Ledger;

/// Payload of `hello-world`.
#[derive(Deserialize)]
struct Hello {
    name: String,
}

/// Greets by name.
async fn hello_world(ctx: TaskContext, payload: Hello) -> Result<Value, TaskError> {
    ctx.logger().info(format!("greeting {}", payload.name));
    Ok(json!({"message": format!("Hello, {}!", payload.name)}))
}

/// Payload of `flaky`.
#[derive(Deserialize)]
struct Flaky {
    fail_times: u32,
}

/// Fails its first `fail_times` attempts, then succeeds: returning an error is all it takes to
/// have the server retry the run, with the delays of the task's `Retry`.
async fn flaky(ctx: TaskContext, payload: Flaky) -> Result<Value, TaskError> {
    let attempt = ctx.attempt();
    if attempt <= payload.fail_times {
        return Err(TaskError::new(format!("failing on attempt {attempt} of {}", payload.fail_times)));
    }
    Ok(json!({"attempts": attempt}))
}

/// Payload of `sleep`.
#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

/// Sleeps, without blocking the worker's threads.
async fn sleep(_ctx: TaskContext, payload: Sleep) -> Result<Value, TaskError> {
    tokio::time::sleep(Duration::from_millis(payload.ms)).await;
    Ok(json!({"slept_ms": payload.ms}))
}

/// Sleeps like `sleep`, in a queue that lets two run at once however many workers there are:
/// the queue's concurrency limit is enforced by the server, across workers and server nodes.
async fn throttled(ctx: TaskContext, payload: Sleep) -> Result<Value, TaskError> {
    sleep(ctx, payload).await
}

/// Payload of `progress`.
#[derive(Deserialize)]
struct Progress {
    steps: u32,
    step_ms: u64,
}

/// Works in steps and reports them in the run's metadata, which the API shows while the run
/// executes (`GET /api/v1/runs/{id}/metadata`): `progress.done` counts the steps, `log` lists them.
async fn progress(ctx: TaskContext, payload: Progress) -> Result<Value, TaskError> {
    let metadata = ctx.metadata();
    metadata.set("$.progress.total", payload.steps)?;
    metadata.set("status", "running")?;
    for step in 1..=payload.steps {
        tokio::time::sleep(Duration::from_millis(payload.step_ms)).await;
        metadata.increment("$.progress.done", 1)?;
        metadata.append("log", format!("step {step}"))?;
    }
    // Sent with the completion: the run ends with it.
    metadata.set("status", "done")?;
    Ok(json!({"steps": payload.steps}))
}

/// Payload of `parent`.
#[derive(Deserialize)]
struct Parent {
    /// The child's task; `hello-world` by default.
    #[serde(default = "default_child")]
    child: String,
    /// The child's payload.
    #[serde(default = "default_child_payload")]
    payload: Value,
}

fn default_child() -> String {
    "hello-world".into()
}

fn default_child_payload() -> Value {
    json!({"name": "child"})
}

/// Triggers a child run: its `parentRunId` is this run, so each shows the other in
/// `relatedRuns` (`GET /api/v3/runs/{id}`).
async fn parent(ctx: TaskContext, payload: Parent) -> Result<Value, TaskError> {
    let child = ctx.trigger(&payload.child, payload.payload, TriggerOptions::new().tag("child")).await?;
    ctx.logger().info(format!("triggered {} as {}", payload.child, child.id));
    Ok(json!({"child": child.id}))
}

/// Does nothing, whatever the payload: `IgnoredAny` accepts any JSON without decoding it.
async fn noop(_ctx: TaskContext, _payload: IgnoredAny) -> Result<Value, TaskError> {
    Ok(Value::Null)
}

/// A task for schedules made through the API (`stint schedules create --task tick --cron
/// '* * * * *'`): says which schedule fired it and for when.
async fn tick(ctx: TaskContext, payload: SchedulePayload) -> Result<Value, TaskError> {
    ctx.logger().info(format!("{} fired for {}", payload.schedule_id, payload.timestamp.to_rfc3339()));
    Ok(json!({"timestamp": payload.timestamp.to_rfc3339(), "scheduleId": payload.schedule_id}))
}

/// Declares its own schedule in `main`: every day at 03:00 in London, GMT or BST. Reports the
/// day it covers and when it runs next.
async fn nightly_report(_ctx: TaskContext, payload: SchedulePayload) -> Result<Value, TaskError> {
    Ok(json!({
        "reportFor": payload.timestamp.to_rfc3339(),
        "previous": payload.last_timestamp.map(|t| t.to_rfc3339()),
        "next": payload.upcoming.first().map(|t| t.to_rfc3339()),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let ledger = Ledger::from_env()?;

    // Short retry delays keep tests of retries quick; the defaults start at 1 s, randomised.
    let quick_retries = Retry {
        max_attempts: 5,
        factor: 2.0,
        min_timeout: Duration::from_millis(100),
        max_timeout: Duration::from_secs(1),
        randomize: false,
    };
    Worker::from_env()?
        .task(Task::new("hello-world", ledger.around(hello_world)))
        .task(Task::new("flaky", ledger.around(flaky)).retry(quick_retries))
        .task(Task::new("sleep", ledger.around(sleep)))
        .task(Task::new("throttled", ledger.around(throttled)).queue("throttled", Some(2)))
        .task(Task::new("noop", ledger.around(noop)))
        // At most 5 starts a second for each concurrency key (a burst of 5, then one every
        // 200 ms); runs over the rate wait in the queue.
        .task(Task::new("rated", ledger.around(noop)).rate_limit(5, Duration::from_secs(1), true))
        .task(Task::new("progress", ledger.around(progress)))
        .task(Task::new("parent", ledger.around(parent)))
        .task(Task::new("wait-seconds", ledger.around(durable::wait_seconds)))
        .task(Task::new("wait-token", ledger.around(durable::wait_token)))
        .task(Task::new("fan-out", ledger.around(durable::fan_out)))
        .task(Task::new("steps", ledger.around(durable::steps(ledger.clone()))))
        .task(Task::new("tick", ledger.around(tick)))
        .task(Task::new("nightly-report", ledger.around(nightly_report)).schedule(
            "0 3 * * *",
            "Europe/London",
            ["dev", "staging", "prod", "preview"],
        ))
        .run()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noop_accepts_any_payload() {
        for payload in [json!(null), json!({"a": [1, 2]}), json!("text")] {
            serde_json::from_value::<IgnoredAny>(payload).unwrap();
        }
    }
}
