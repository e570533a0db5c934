//! W2: a queue of no-op runs drained by one worker process.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{Value, json};

use super::server::BenchServer;
use super::trigger::Trigger;
use super::workers::BenchWorker;

/// What a drain measured.
pub struct Drain {
    /// (N − 1) / (last start − first start).
    pub runs_per_s: f64,
    /// From spawning the worker to its exit after the last completion.
    pub wall_incl_startup_s: f64,
}

/// Queues `n` runs, then drains them with one worker of `concurrency`.
pub async fn run(n: usize, concurrency: usize, clients: usize) -> anyhow::Result<Drain> {
    let server = BenchServer::start("full")?;
    Trigger::new(&server.url).many(n, clients).await?;
    let dir = tempfile::tempdir()?;
    let spawned = Instant::now();
    let records = BenchWorker::start(&server.url, concurrency, Some(n), dir.path())?.wait()?;
    let wall = spawned.elapsed().as_secs_f64();

    let distinct: HashSet<i64> = records.iter().map(|r| r.2).collect();
    anyhow::ensure!(
        records.len() == n && distinct.len() == n,
        "{} executions of {} distinct runs, expected {n}",
        records.len(),
        distinct.len()
    );
    anyhow::ensure!(server.unfinished().await? == 0, "runs left unfinished after the drain");
    let first = records.iter().map(|r| r.1).min().unwrap_or(0);
    let last = records.iter().map(|r| r.1).max().unwrap_or(0);
    let span_s = (last - first) as f64 / 1e6;
    Ok(Drain { runs_per_s: (n - 1) as f64 / span_s, wall_incl_startup_s: wall })
}

impl Drain {
    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({"runs_per_s": self.runs_per_s, "wall_incl_startup_s": self.wall_incl_startup_s})
    }
}
