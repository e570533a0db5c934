//! `stint bench-worker`: the worker process of the drain and latency workloads.
//!
//! It runs `noop`, whose first statement takes the time on `CLOCK_MONOTONIC`, as the peers'
//! handlers do, and keeps `(trigger time, start time, i)` in memory; and `durable`, W5's task
//! (`durable.rs`). It writes what they recorded as JSON to `--out` when it stops: after
//! `--exit-after` executions, or on SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use stint_sdk::{Task, TaskContext, TaskError, Worker};
use tokio::sync::Notify;

use super::clock::monotonic_us;

/// `stint bench-worker`.
#[derive(Args)]
pub struct BenchWorkerArgs {
    /// The server's URL.
    #[arg(long)]
    api_url: String,
    /// The secret key, or a personal access token with `--environments`.
    #[arg(long)]
    secret_key: String,
    /// The environments to serve as a worker pool, comma-separated (`staging,prod`).
    #[arg(long, value_delimiter = ',')]
    environments: Vec<String>,
    /// Attempts at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Stop after this many executions.
    #[arg(long)]
    exit_after: Option<usize>,
    /// Where to write the records.
    #[arg(long)]
    out: PathBuf,
}

/// The payload the bench triggers with.
#[derive(Deserialize)]
struct Payload {
    i: i64,
    t: i64,
}

/// One execution: the trigger time, the start time (both µs on `CLOCK_MONOTONIC`) and `i`.
pub type Record = (i64, i64, i64);

/// Runs the bench worker until it has executed `--exit-after` runs or gets SIGTERM.
pub async fn run(args: BenchWorkerArgs) -> anyhow::Result<()> {
    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let done = Arc::new(Notify::new());
    let task = {
        let (records, done, exit_after) = (records.clone(), done.clone(), args.exit_after);
        Task::new("noop", move |_ctx: TaskContext, payload: Payload| {
            let start = monotonic_us();
            let mut records = records.lock();
            records.push((payload.t, start, payload.i));
            if exit_after == Some(records.len()) {
                done.notify_one();
            }
            async { Ok::<_, TaskError>(Value::Null) }
        })
    };
    let steps = super::durable::Recorded::default();
    let mut worker = Worker::new(args.api_url, args.secret_key)
        .concurrency(args.concurrency)
        .task(task)
        .task(super::durable::task(steps.clone()));
    if !args.environments.is_empty() {
        worker = worker.environments(args.environments);
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    worker
        .run_until(async move {
            tokio::select! {
                () = done.notified() => {}
                _ = terminate.recv() => {}
            }
        })
        .await?;
    let records = std::mem::take(&mut *records.lock());
    std::fs::write(&args.out, serde_json::to_vec(&records)?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    steps.write(&super::durable::path_beside(&args.out))
}
