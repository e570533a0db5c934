//! W1b: trigger throughput through the batch API. 100,000 no-op runs as 100 batches of 1,000,
//! each made with Trigger.dev's two calls (`POST /api/v3/batches`, then the items as NDJSON),
//! from one or several concurrent clients; runs/s from the first call to the last answer. Then
//! one worker process (concurrency 50) drains them, as W2 does.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use serde_json::{Value, json};

use super::clock::monotonic_us;
use super::server::{BenchServer, Storage};
use super::stats;
use super::trigger::Trigger;
use super::workers::BenchWorker;

/// Batches per measurement.
pub const BATCHES: usize = 100;
/// Runs per batch: the most a batch may have.
pub const BATCH_SIZE: usize = 1_000;

/// What W1b measured.
pub struct Batched {
    /// Concurrent clients.
    pub clients: usize,
    /// Runs made per second, from the first call to the last answer.
    pub runs_per_s: f64,
    /// Seconds from the first call to the last answer.
    pub seconds: f64,
    /// The drain rate of the runs, as W2 computes it.
    pub drain_runs_per_s: f64,
    /// From spawning the worker to the last run finishing.
    pub drain_wall_s: f64,
}

/// Makes the batches from `clients` connections on a fresh server, then drains them.
pub async fn run(storage: &Storage, clients: usize, concurrency: usize) -> anyhow::Result<Batched> {
    let server = BenchServer::start(storage)?;
    let trigger = Trigger::new(&server.url);
    // The bodies are made before the clock starts: the driver measures the server.
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..BATCHES).map(items).collect());
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(trigger.connect().await?);
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for mut connection in connections {
        let (next, bodies) = (next.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(at) else { return Ok::<_, anyhow::Error>(()) };
                let create = Bytes::from(json!({"runCount": BATCH_SIZE}).to_string());
                let created = connection.post("/api/v3/batches", "application/json", create).await?;
                let created: Value = serde_json::from_slice(&created)?;
                let id = created["id"].as_str().context("the batch has no id")?;
                let path = format!("/api/v3/batches/{id}/items");
                let answer = connection.post(&path, "application/x-ndjson", body.clone()).await?;
                let answer: Value = serde_json::from_slice(&answer)?;
                anyhow::ensure!(
                    answer["sealed"] == json!(true) && answer["itemsAccepted"] == json!(BATCH_SIZE),
                    "the batch was not made whole: {answer}"
                );
            }
        }));
    }
    for task in tasks {
        task.await.context("a batch client panicked")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let runs = BATCHES * BATCH_SIZE;

    let dir = tempfile::tempdir()?;
    let spawned = Instant::now();
    let worker = BenchWorker::start(&server.url, concurrency, None, dir.path())?;
    server.wait_until_drained().await?;
    let drain_wall_s = spawned.elapsed().as_secs_f64();
    let records = worker.stop()?;
    stats::ensure_each_once(&records, runs)?;
    Ok(Batched {
        clients,
        runs_per_s: runs as f64 / seconds,
        seconds,
        drain_runs_per_s: stats::drain_rate(&records),
        drain_wall_s,
    })
}

/// The NDJSON items of batch `batch`: `noop` runs with the payload `{i, t, tenant}` of W1, `i`
/// numbering all the runs of the workload.
fn items(batch: usize) -> Bytes {
    let mut body = String::with_capacity(BATCH_SIZE * 96);
    for index in 0..BATCH_SIZE {
        let payload = json!({"i": batch * BATCH_SIZE + index, "t": monotonic_us(), "tenant": "a"});
        body.push_str(&json!({"index": index, "task": "noop", "payload": payload}).to_string());
        body.push('\n');
    }
    Bytes::from(body)
}

impl Batched {
    /// The figures as JSON.
    pub fn json(&self, storage: &Storage) -> Value {
        json!({
            "clients": self.clients,
            "batches": BATCHES,
            "batch_size": BATCH_SIZE,
            "storage": storage.describe(),
            "runs_per_s": self.runs_per_s,
            "seconds": self.seconds,
            "drain_runs_per_s": self.drain_runs_per_s,
            "drain_wall_s": self.drain_wall_s,
        })
    }
}
