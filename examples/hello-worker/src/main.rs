//! An example Stint worker: a few tasks to copy, run with
//! `STINT_SECRET_KEY=tr_dev_… cargo run -p hello-worker`.
//!
//! Environment: `STINT_API_URL` (default `http://127.0.0.1:3030`), `STINT_SECRET_KEY`
//! (required), `STINT_WORKER_CONCURRENCY` (default 10), `RUST_LOG` (default `info`) and
//! `STINT_LEDGER` (optional, see `ledger.rs`).

mod ledger;

use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use stint_sdk::{Retry, Task, TaskContext, TaskError, Worker};
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

/// Does nothing, whatever the payload: `IgnoredAny` accepts any JSON without decoding it.
async fn noop(_ctx: TaskContext, _payload: IgnoredAny) -> Result<Value, TaskError> {
    Ok(Value::Null)
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
