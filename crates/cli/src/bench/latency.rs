//! W3: runs triggered one by one at a steady rate into an idle worker; trigger-to-start latency.

use std::time::Duration;

use serde_json::{Value, json};

use super::server::{BenchServer, Storage};
use super::stats::{self, Percentiles};
use super::trigger::Trigger;
use super::workers::BenchWorker;

/// Latency percentiles in ms.
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Runs triggered for warm-up and discarded.
const WARM_UP: usize = 50;

/// Triggers `n` runs at `rate` per second on an absolute schedule, without waiting for earlier
/// calls (open loop), into a worker of `concurrency` that is already waiting.
pub async fn run(storage: &Storage, n: usize, rate: u32, concurrency: usize) -> anyhow::Result<Latency> {
    let server = BenchServer::start(storage)?;
    let dir = tempfile::tempdir()?;
    let worker = BenchWorker::start(&server.url, concurrency, None, dir.path())?;
    let trigger = Trigger::new(&server.url);
    for i in 0..WARM_UP {
        trigger.one(i, "warm-up").await?;
    }
    server.wait_until_drained().await?;

    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(start + interval * u32::try_from(i)?).await;
        let trigger = trigger.clone();
        calls.push(tokio::spawn(async move { trigger.one(WARM_UP + i, "a").await }));
    }
    for call in calls {
        call.await??;
    }
    server.wait_until_drained().await?;
    let records = worker.stop()?;

    let latencies: Vec<f64> =
        records.iter().filter(|r| r.2 >= WARM_UP as i64).map(stats::trigger_to_start_ms).collect();
    anyhow::ensure!(latencies.len() == n, "{} of {n} runs recorded", latencies.len());
    let latencies = Percentiles::new(latencies)?;
    Ok(Latency { p50: latencies.at(0.50), p95: latencies.at(0.95), p99: latencies.at(0.99), max: latencies.max() })
}

impl Latency {
    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({"enqueue_to_start": {"p50_ms": self.p50, "p95_ms": self.p95, "p99_ms": self.p99, "max_ms": self.max}})
    }
}
