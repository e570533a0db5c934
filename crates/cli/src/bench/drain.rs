//! W2: a queue of no-op runs drained by worker processes.

use std::time::Instant;

use serde_json::{Value, json};

use super::server::{BenchServer, Storage};
use super::stats;
use super::trigger::Trigger;
use super::workers::BenchWorker;

/// What a drain measured.
pub struct Drain {
    /// (N − 1) / (last start − first start).
    pub runs_per_s: f64,
    /// From spawning the workers to the last run finishing.
    pub wall_incl_startup_s: f64,
}

/// Queues `n` runs on `nodes` servers sharing `storage`, then drains them with one worker per
/// node sharing `concurrency` between them.
pub async fn run(
    storage: &Storage,
    nodes: usize,
    n: usize,
    concurrency: usize,
    clients: usize,
) -> anyhow::Result<Drain> {
    let servers = (0..nodes).map(|_| BenchServer::start(storage)).collect::<anyhow::Result<Vec<_>>>()?;
    Trigger::new(&servers[0].url).many(n, clients).await?;
    let dir = tempfile::tempdir()?;
    let spawned = Instant::now();
    let workers = servers
        .iter()
        .enumerate()
        .map(|(i, server)| BenchWorker::start(&server.url, concurrency / nodes, None, &dir.path().join(i.to_string())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    servers[0].wait_until_drained().await?;
    let wall = spawned.elapsed().as_secs_f64();
    let mut records = Vec::with_capacity(n);
    for worker in workers {
        records.extend(worker.stop()?);
    }

    stats::ensure_each_once(&records, n)?;
    Ok(Drain { runs_per_s: stats::drain_rate(&records), wall_incl_startup_s: wall })
}

impl Drain {
    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({"runs_per_s": self.runs_per_s, "wall_incl_startup_s": self.wall_incl_startup_s})
    }
}
