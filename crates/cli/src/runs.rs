//! `stint trigger` and `stint runs …`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::{Table, presets};
use serde_json::Value;
use stint_protocol::api::{
    IdResponse, ListRunsResponse, QueueOption, RunObject, TriggerOptions, TriggerRequest, TriggerResponse,
};
use stint_protocol::batches::{BatchObject, CreateBatchResponse, StreamItemsResponse};
use stint_protocol::types::BatchStatus;

use crate::client::{Client, Connection};

/// `stint trigger`.
#[derive(Args)]
pub struct TriggerArgs {
    /// The task's identifier.
    #[arg(required_unless_present = "batch")]
    task: Option<String>,
    /// Trigger a batch instead: a file with one `{task, payload, options?}` per line (at most
    /// 1,000), sent through the batch API; prints the batch's id, then its runs' ids.
    #[arg(long, value_name = "FILE.ndjson", conflicts_with_all = ["task", "payload", "queue", "tags", "max_attempts", "concurrency_key", "priority", "metadata"])]
    batch: Option<PathBuf>,
    /// The payload, as JSON.
    #[arg(long, default_value = "null")]
    payload: String,
    /// Run in this queue instead of the task's.
    #[arg(long)]
    queue: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Attempts allowed, overriding the task's retry settings.
    #[arg(long)]
    max_attempts: Option<i64>,
    /// The concurrency key.
    #[arg(long)]
    concurrency_key: Option<String>,
    /// Seconds of priority.
    #[arg(long)]
    priority: Option<f64>,
    /// Metadata, as a JSON object.
    #[arg(long)]
    metadata: Option<String>,
    /// Queue the run later: a duration like `1h30m` or an ISO 8601 date.
    #[arg(long)]
    delay: Option<String>,
    /// Expire the run if it has not started this long after it is queued, like `10m`.
    #[arg(long)]
    ttl: Option<String>,
    /// At most one live run of the task holds this key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Seconds an attempt may run before the run ends `TIMED_OUT`.
    #[arg(long)]
    max_duration: Option<f64>,
    /// Wait for the run to end and print it.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    connection: Connection,
}

/// `stint runs …`.
#[derive(Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only runs with this status (QUEUED, EXECUTING, COMPLETED, FAILED, …); repeat for more.
        #[arg(long)]
        status: Vec<String>,
        /// Only runs of this task; repeat for more.
        #[arg(long)]
        task: Vec<String>,
        /// Only runs with this tag; repeat for more.
        #[arg(long)]
        tag: Vec<String>,
        /// Most runs to show (1–100).
        #[arg(long, default_value_t = 25)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show a run as JSON.
    Get {
        /// The run's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Cancel a run.
    Cancel {
        /// The run's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Start a new run with the task and payload of a run, and print its id.
    Replay {
        /// The run's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Move a delayed run's due time.
    Reschedule {
        /// The run's id.
        id: String,
        /// The new due time: a duration from now like `10m`, or an ISO 8601 date.
        #[arg(long)]
        delay: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Triggers a run and prints its id, or with `--wait` the run once it ended; with `--batch`, a
/// batch.
pub async fn trigger(args: TriggerArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection)?;
    if let Some(file) = &args.batch {
        return trigger_batch(&client, file, args.wait).await;
    }
    let task = args.task.context("a task to trigger, or --batch FILE")?;
    let payload: Value = serde_json::from_str(&args.payload).context("--payload is not valid JSON")?;
    let metadata =
        args.metadata.as_deref().map(serde_json::from_str).transpose().context("--metadata is not valid JSON")?;
    let options = TriggerOptions {
        queue: args.queue.map(|name| QueueOption { name, concurrency_limit: None }),
        tags: (!args.tags.is_empty()).then_some(args.tags),
        max_attempts: args.max_attempts,
        concurrency_key: args.concurrency_key,
        priority: args.priority,
        metadata,
        delay: args.delay.map(Value::String),
        ttl: args.ttl.map(Value::String),
        idempotency_key: args.idempotency_key,
        max_duration: args.max_duration,
        ..TriggerOptions::default()
    };
    let request = TriggerRequest { payload, context: None, options: Some(options) };
    let path = format!("/api/v1/tasks/{task}/trigger");
    let response: TriggerResponse = client.post(&path, &request).await?;
    if !args.wait {
        println!("{}", response.id);
        return Ok(());
    }
    let run = wait_for_end(&client, &response.id).await?;
    println!("{}", serde_json::to_string_pretty(&run)?);
    Ok(())
}

/// Triggers the items of an NDJSON file as one batch, through Trigger.dev's two-phase batch API,
/// and prints the batch's id and its runs' ids (with `wait`: the batch once all its runs ended).
async fn trigger_batch(client: &Client, file: &Path, wait: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut items = String::with_capacity(text.len() + text.len() / 4);
    let mut count = 0usize;
    for (at, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut item: Value =
            serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", file.display(), at + 1))?;
        let object = item
            .as_object_mut()
            .filter(|o| o.get("task").is_some_and(Value::is_string))
            .with_context(|| format!("{} line {}: expected {{\"task\": …, \"payload\": …}}", file.display(), at + 1))?;
        object.insert("index".into(), count.into());
        items.push_str(&item.to_string());
        items.push('\n');
        count += 1;
    }
    anyhow::ensure!(count > 0, "{} has no items", file.display());
    anyhow::ensure!(count <= 1_000, "{} has {count} items; a batch has at most 1,000", file.display());
    let created: CreateBatchResponse = client.post("/api/v3/batches", &serde_json::json!({"runCount": count})).await?;
    let path = format!("/api/v3/batches/{}/items", created.id);
    let answer: StreamItemsResponse = client.post_ndjson(&path, items).await?;
    anyhow::ensure!(answer.sealed, "the server sealed no batch: {answer:?}");
    let batch_path = format!("/api/v2/batches/{}", created.id);
    let mut batch: BatchObject = client.get(&batch_path, &[]).await?;
    if wait {
        while batch.status != BatchStatus::Completed {
            tokio::time::sleep(Duration::from_millis(200)).await;
            batch = client.get(&batch_path, &[]).await?;
        }
        println!("{}", serde_json::to_string_pretty(&batch)?);
        return Ok(());
    }
    println!("{}", created.id);
    for run in &batch.runs {
        println!("{run}");
    }
    Ok(())
}

async fn wait_for_end(client: &Client, id: &str) -> anyhow::Result<RunObject> {
    let hint_at = std::time::Instant::now() + Duration::from_secs(10);
    let mut hinted = false;
    loop {
        let run: RunObject = client.get(&format!("/api/v3/runs/{id}"), &[]).await?;
        if run.common.status.is_final() {
            return Ok(run);
        }
        if !hinted && run.common.status.is_queued() && std::time::Instant::now() > hint_at {
            eprintln!(
                "{id} is still {} after 10 s: is a worker with task '{}' running in this environment?",
                run.common.status, run.common.task_identifier
            );
            hinted = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a `stint runs` subcommand.
pub async fn run(command: RunsCommand) -> anyhow::Result<()> {
    match command {
        RunsCommand::List { status, task, tag, limit, json, connection } => {
            let client = Client::new(&connection)?;
            let mut query = vec![("page[size]".to_string(), limit.to_string())];
            for (key, values) in [("filter[status]", status), ("filter[taskIdentifier]", task), ("filter[tag]", tag)] {
                if !values.is_empty() {
                    query.push((key.to_string(), values.join(",")));
                }
            }
            let page: ListRunsResponse = client.get("/api/v1/runs", &query).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                println!("{}", table(&page));
            }
        }
        RunsCommand::Get { id, connection } => {
            let run: RunObject = Client::new(&connection)?.get(&format!("/api/v3/runs/{id}"), &[]).await?;
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        RunsCommand::Cancel { id, connection } => {
            let path = format!("/api/v2/runs/{id}/cancel");
            let response: IdResponse = Client::new(&connection)?.post(&path, &serde_json::json!({})).await?;
            println!("{}", response.id);
        }
        RunsCommand::Replay { id, connection } => {
            let path = format!("/api/v1/runs/{id}/replay");
            let response: IdResponse = Client::new(&connection)?.post(&path, &serde_json::json!({})).await?;
            println!("{}", response.id);
        }
        RunsCommand::Reschedule { id, delay, connection } => {
            let path = format!("/api/v1/runs/{id}/reschedule");
            let run: RunObject = Client::new(&connection)?.post(&path, &serde_json::json!({ "delay": delay })).await?;
            println!("{} is due at {}", run.common.id, run.common.delayed_until.unwrap_or_default());
        }
    }
    Ok(())
}

fn table(page: &ListRunsResponse) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(["id", "task", "status", "created", "duration ms", "tags"]);
    for item in &page.data {
        let run = &item.common;
        table.add_row([
            run.id.clone(),
            run.task_identifier.clone(),
            run.status.to_string(),
            run.created_at.clone(),
            run.duration_ms.to_string(),
            run.tags.join(","),
        ]);
    }
    table
}
