//! Tasks that wait durably: their waits free the worker's slot, and they pick up where they left
//! off when the wait is over (see `docs/durable-execution.md`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use stint_sdk::{BatchItem, TaskContext, TaskError};

use crate::ledger::Ledger;

/// Payload of `wait-seconds`.
#[derive(Deserialize)]
pub struct WaitSeconds {
    seconds: u64,
}

/// Waits `seconds` without holding a slot once the wait is long (5 s by default), then returns.
pub async fn wait_seconds(ctx: TaskContext, payload: WaitSeconds) -> Result<Value, TaskError> {
    ctx.wait_for(Duration::from_secs(payload.seconds)).await?;
    Ok(json!({"waited_seconds": payload.seconds}))
}

/// Payload of `wait-token`.
#[derive(Deserialize)]
pub struct WaitToken {
    token_id: String,
}

/// Waits until the token is completed (`POST /api/v1/waitpoints/tokens/{id}/complete`, or its
/// callback URL) and returns the data it was completed with; a token that times out fails the
/// run.
pub async fn wait_token(ctx: TaskContext, payload: WaitToken) -> Result<Value, TaskError> {
    let data: Value = ctx.wait_for_token(&payload.token_id).await??;
    Ok(json!({"data": data}))
}

/// Payload of `fan-out`.
#[derive(Deserialize)]
pub struct FanOut {
    names: Vec<String>,
}

/// Greets every name with a `hello-world` child run, all at once, and returns the greetings in
/// the order of the names.
pub async fn fan_out(ctx: TaskContext, payload: FanOut) -> Result<Value, TaskError> {
    let items = payload.names.iter().map(|name| BatchItem::new("hello-world", json!({"name": name}))).collect();
    let batch = ctx.batch_trigger_and_wait(items).await?;
    let mut messages = Vec::with_capacity(batch.runs.len());
    for run in &batch.runs {
        let output: Value = run.output()?;
        messages.push(output["message"].clone());
    }
    Ok(json!({"messages": messages}))
}

/// Payload of `steps`.
#[derive(Deserialize)]
pub struct Steps {
    /// How long each wait before the last step is, in seconds.
    #[serde(default = "one")]
    wait_seconds: u64,
    /// How many waits there are before the last step: each long one suspends the run, which is
    /// then replayed from the top.
    #[serde(default = "one")]
    waits: u64,
}

fn one() -> u64 {
    1
}

/// How many times each step body of each run ran in this process.
static STEP_RUNS: LazyLock<Mutex<HashMap<(String, usize), u64>>> = LazyLock::new(Mutex::default);

/// Three steps around a wait (or `waits` of them). Each step body counts its runs (in this process, and as a
/// `step` line in the ledger when there is one) and returns the count, so the output says how many
/// times each body ran: 1 each, however often the task was replayed.
pub fn steps(
    ledger: Ledger,
) -> impl Fn(TaskContext, Steps) -> crate::ledger::TaskFuture<Value> + Send + Sync + 'static {
    move |ctx: TaskContext, payload: Steps| {
        let ledger = ledger.clone();
        Box::pin(async move {
            let mut counts = Vec::with_capacity(3);
            for (at, name) in ["reserve", "charge", "ship"].into_iter().enumerate() {
                if at == 2 {
                    for _ in 0..payload.waits {
                        ctx.wait_for(Duration::from_secs(payload.wait_seconds)).await?;
                    }
                }
                let count: u64 = ctx
                    .step(name, || async {
                        ledger.record(&ctx, &format!("step:{name}"));
                        let mut runs = STEP_RUNS.lock().unwrap_or_else(|e| e.into_inner());
                        let count = runs.entry((ctx.run_id().to_string(), at)).or_default();
                        *count += 1;
                        Ok(*count)
                    })
                    .await?;
                counts.push(json!({"step": name, "runs": count}));
            }
            Ok(json!({"steps": counts}))
        })
    }
}
