//! W4: fairness between two tenants, told apart by their concurrency keys in one queue, or as two
//! environments served by one worker pool.
//!
//! Tenant A queues a backlog while no worker runs; the worker starts; once enough of A's runs
//! have started, tenant B triggers a few runs at once. How long B waits, and how many of A's runs
//! start after B's last, show whether B waited behind A's backlog or went ahead of it.

use std::time::Duration;

use serde_json::{Value, json};

use super::clock::monotonic_us;
use super::server::{BenchServer, KEY, STAGING_KEY, Storage};
use super::stats::{self, Percentiles};
use super::trigger::Trigger;
use super::worker::Record;
use super::workers::BenchWorker;

/// Tenant A's runs, `i` in `0..A_RUNS`.
pub const A_RUNS: usize = 10_000;
/// Tenant B's runs, `i` in `A_RUNS..A_RUNS + B_RUNS`.
pub const B_RUNS: usize = 100;
/// A's runs started before B triggers.
pub const A_STARTED_BEFORE_B: usize = 1_000;
/// The concurrency keys of the two tenants.
const A_KEY: &str = "tenant-a";
const B_KEY: &str = "tenant-b";

/// How the two tenants are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenants {
    /// Concurrency keys `tenant-a` and `tenant-b` of one queue in one environment, one worker.
    Keys,
    /// Environments staging (A) and prod (B) of one project, one worker pool serving both.
    Environments,
}
/// How often the queue is looked at while waiting for A's runs to start.
const POLL: Duration = Duration::from_millis(25);

/// What the fairness workload measured.
pub struct Fairness {
    /// Median of B's trigger-to-start latencies in ms.
    pub b_p50: f64,
    /// Their 99th percentile.
    pub b_p99: f64,
    /// Largest.
    pub b_max: f64,
    /// A's runs started after B's last run started.
    pub a_started_after_last_b: usize,
    /// A's runs not yet started when B's triggers were sent.
    pub a_backlog_when_b_triggered: usize,
    /// (N − 1) / (last start − first start) over all runs of both tenants.
    pub runs_per_s: f64,
    /// From sending B's triggers until all 100 were answered, in ms: how long they took to commit.
    pub b_triggers_ms: f64,
    /// From sending B's triggers until B's first run started, in ms.
    pub b_first_start_ms: f64,
}

/// Queues A's runs from `clients` concurrent clients, starts one worker of `concurrency`, and
/// triggers B's runs with one call each, all at once, when A's queue has shrunk by
/// [`A_STARTED_BEFORE_B`].
pub async fn run(storage: &Storage, tenants: Tenants, concurrency: usize, clients: usize) -> anyhow::Result<Fairness> {
    let server = BenchServer::start(storage)?;
    let (a_env, b_env, a_ck, b_ck) = match tenants {
        Tenants::Keys => (KEY, KEY, Some(A_KEY), Some(B_KEY)),
        Tenants::Environments => (STAGING_KEY, KEY, None, None),
    };
    let (a_trigger, b_trigger) = (Trigger::with_key(&server.url, a_env), Trigger::with_key(&server.url, b_env));
    a_trigger.many_with_key(A_RUNS, clients, A_KEY, a_ck).await?;
    // B's calls go out at once on connections opened beforehand.
    b_trigger.open(B_RUNS).await?;

    let dir = tempfile::tempdir()?;
    let worker = match tenants {
        Tenants::Keys => BenchWorker::start(&server.url, concurrency, None, dir.path())?,
        Tenants::Environments => {
            let token = server.access_token().await?;
            BenchWorker::start_pool(&server.url, &token, "staging,prod", concurrency, dir.path())?
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut found = false;
    loop {
        // Runs leave the queue's waiting count as their attempts start.
        let queued = server.queued("noop", a_env).await?;
        found |= queued.is_some();
        if queued.is_some_and(|queued| queued <= (A_RUNS - A_STARTED_BEFORE_B) as u64) {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "fewer than {A_STARTED_BEFORE_B} of tenant A's runs started within 120 s{}",
            if found { "" } else { " (GET /api/v1/queues/noop?type=task answered 404 throughout)" }
        );
        tokio::time::sleep(POLL).await;
    }
    let b_sent = monotonic_us();
    let calls: Vec<_> = (A_RUNS..A_RUNS + B_RUNS)
        .map(|i| {
            let trigger = b_trigger.clone();
            tokio::spawn(async move { trigger.one_with_key(i, B_KEY, b_ck).await })
        })
        .collect();
    for call in calls {
        call.await??;
    }
    let b_committed = monotonic_us();
    server.wait_until_drained().await?;
    let records = worker.stop()?;

    stats::ensure_each_once(&records, A_RUNS + B_RUNS)?;
    let (b, a): (Vec<&Record>, Vec<&Record>) = records.iter().partition(|r| r.2 >= A_RUNS as i64);
    let b_last_start = b.iter().map(|r| r.1).max().unwrap_or_default();
    let latencies = Percentiles::new(b.iter().map(|r| stats::trigger_to_start_ms(r)).collect())?;
    Ok(Fairness {
        b_p50: latencies.at(0.50),
        b_p99: latencies.at(0.99),
        b_max: latencies.max(),
        a_started_after_last_b: a.iter().filter(|r| r.1 > b_last_start).count(),
        a_backlog_when_b_triggered: a.iter().filter(|r| r.1 > b_sent).count(),
        b_triggers_ms: (b_committed - b_sent) as f64 / 1_000.0,
        b_first_start_ms: b.iter().map(|r| r.1).min().map_or(0.0, |first| (first - b_sent) as f64 / 1_000.0),
        runs_per_s: stats::drain_rate(&records),
    })
}

impl Fairness {
    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({
            "b_trigger_to_start": {"p50_ms": self.b_p50, "p99_ms": self.b_p99, "max_ms": self.b_max},
            "a_jobs_started_after_last_b": self.a_started_after_last_b,
            "a_backlog_when_b_triggered": self.a_backlog_when_b_triggered,
            "runs_per_s": self.runs_per_s,
            "b_triggers_committed_ms": self.b_triggers_ms,
            "b_first_start_ms": self.b_first_start_ms,
        })
    }
}
