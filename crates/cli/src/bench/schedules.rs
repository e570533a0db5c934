//! W6, schedules: 10,000 active schedules firing every minute.
//!
//! The schedules trigger `noop` in the staging environment, where no worker runs, so their runs
//! stay queued and apart from the drain. Measured:
//!
//! - the lag of each fired run, from its nominal fire time (the minute) to the run's `createdAt`,
//!   at a minute with nothing else going on. A run made ahead of its time (the server makes them
//!   over the half-minute before it) has its time as `createdAt`, as in Trigger.dev: lag 0; one
//!   made late has the moment it was made;
//! - a W2 drain of production runs a quarter-minute after a minute, with no schedule work during
//!   it (the next minute's runs are made from 30 s before it);
//! - the same drain centred a quarter-minute before the next minute, while that minute's runs are
//!   being made;
//! - the same drain centred on that minute, with the minute's lag.
//!
//! Three such rounds are run; the effect of the schedules on the drain is the median rate of the
//! busy drains (the slower of the two kinds) against the median of the quiet ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use serde_json::{Value, json};
use stint_types::Timestamp;

use super::server::{BenchServer, STAGING_KEY, Storage};
use super::stats::{self, Percentiles};
use super::trigger::Trigger;
use super::workers::BenchWorker;

/// Active schedules.
pub const SCHEDULES: usize = 10_000;
/// Every minute.
const CRON: &str = "* * * * *";
/// Pairs of drains, quiet and with a fire; the median of each is reported.
pub const ROUNDS: usize = 3;

/// What W6 measured.
pub struct ScheduleLoad {
    /// Schedules created per second through the API, from 32 clients.
    pub created_per_s: f64,
    /// Fire-time-to-created lags of an idle minute, in ms.
    pub idle: Lag,
    /// The same for the minutes fired during the drains, together.
    pub busy: Lag,
    /// The median drain with no schedule work during it, runs/s.
    pub drain_quiet: f64,
    /// The median drain while a minute's runs were being made, runs/s.
    pub drain_making: f64,
    /// The median drain with a minute in its middle, runs/s.
    pub drain_firing: f64,
}

/// The lags of one minute's runs, in ms.
pub struct Lag {
    /// Runs fired for that minute.
    pub runs: usize,
    /// The first run's.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Runs W6 on a fresh server: `n` runs per drain, worker concurrency `concurrency`, `clients`
/// connections creating schedules and queueing runs.
pub async fn run(storage: &Storage, n: usize, concurrency: usize, clients: usize) -> anyhow::Result<ScheduleLoad> {
    let server = BenchServer::start(storage)?;
    register_staging(&server).await?;
    let created_per_s = create(&server, clients).await?;

    let mut minute = next_minute(now_ms());
    let idle = Lag::of(lags(&server, minute).await?)?;
    let (mut quiet, mut making, mut firing, mut busy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        // A quiet drain: the minute's runs are made and the next minute's are not begun.
        sleep_until_ms(minute + 15_000).await;
        let (rate, wall_s) = drain(&server, n, concurrency, clients, None).await?;
        quiet.push(rate);
        // The next minute with time enough to queue the busy drains' runs before each starts.
        minute = next_minute(now_ms() + 30_000);
        making.push(drain(&server, n, concurrency, clients, Some((minute - 15_000, wall_s))).await?.0);
        firing.push(drain(&server, n, concurrency, clients, Some((minute, wall_s))).await?.0);
        busy.extend(lags(&server, minute).await?);
    }
    Ok(ScheduleLoad {
        created_per_s,
        idle,
        busy: Lag::of(busy)?,
        drain_quiet: median(quiet),
        drain_making: median(making),
        drain_firing: median(firing),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Registers `noop` in staging with a worker that stops once it is known there.
async fn register_staging(server: &BenchServer) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let worker = BenchWorker::start_with_key(&server.url, STAGING_KEY, 1, dir.path())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.queued("noop", STAGING_KEY).await?.is_none() {
        anyhow::ensure!(Instant::now() < deadline, "the staging worker did not register noop within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop()?;
    Ok(())
}

/// Creates [`SCHEDULES`] schedules of `noop` in staging from `clients` connections; schedules/s.
async fn create(server: &BenchServer, clients: usize) -> anyhow::Result<f64> {
    let trigger = Trigger::with_key(&server.url, STAGING_KEY);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut connection = trigger.connect().await?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= SCHEDULES {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = json!({"task": "noop", "cron": CRON, "deduplicationKey": format!("bench-{i}")});
                connection.post("/api/v1/schedules", "application/json", Bytes::from(body.to_string())).await?;
            }
        }));
    }
    for task in tasks {
        task.await.context("a schedule client panicked")??;
    }
    Ok(SCHEDULES as f64 / started.elapsed().as_secs_f64())
}

/// Queues `n` production runs, then drains them with one worker; when `centre` is given as (a
/// time in ms since the epoch, the wall time of a quiet drain in s), the worker starts so that
/// the time falls in the middle of the drain. Returns the drain rate and the wall time from the
/// worker's start to the last run.
async fn drain(
    server: &BenchServer,
    n: usize,
    concurrency: usize,
    clients: usize,
    centre: Option<(i64, f64)>,
) -> anyhow::Result<(f64, f64)> {
    Trigger::new(&server.url).many(n, clients).await?;
    if let Some((at, quiet_wall_s)) = centre {
        let lead_ms = (quiet_wall_s * 500.0) as i64;
        anyhow::ensure!(
            now_ms() < at - lead_ms,
            "queueing the runs took past the moment the drain had to start; try a smaller --n"
        );
        sleep_until_ms(at - lead_ms).await;
    }
    let dir = tempfile::tempdir()?;
    let spawned = Instant::now();
    let worker = BenchWorker::start(&server.url, concurrency, Some(n), dir.path())?;
    let records = worker.wait()?;
    let wall = spawned.elapsed().as_secs_f64();
    stats::ensure_each_once(&records, n)?;
    Ok((stats::drain_rate(&records), wall))
}

/// Waits for the runs fired for `minute` (ms since the epoch) and returns their lags in ms.
async fn lags(server: &BenchServer, minute: i64) -> anyhow::Result<Vec<f64>> {
    sleep_until_ms(minute).await;
    let deadline = Instant::now() + Duration::from_secs(50);
    loop {
        let created = fired_at(server, minute).await?;
        if created.len() >= SCHEDULES || Instant::now() >= deadline {
            anyhow::ensure!(
                created.len() == SCHEDULES,
                "{} of {SCHEDULES} schedules fired for {} within 50 s",
                created.len(),
                Timestamp(minute).to_rfc3339()
            );
            return Ok(created.iter().map(|at| (at - minute) as f64).collect());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Lag {
    fn of(lags: Vec<f64>) -> anyhow::Result<Lag> {
        let runs = lags.len();
        let lags = Percentiles::new(lags)?;
        Ok(Lag { runs, min: lags.at(0.0), p50: lags.at(0.5), p99: lags.at(0.99), max: lags.max() })
    }
}

/// The creation times (ms) of the staging runs created from `minute` to a minute later.
async fn fired_at(server: &BenchServer, minute: i64) -> anyhow::Result<Vec<i64>> {
    let client = reqwest::Client::new();
    let (from, to) = (Timestamp(minute).to_rfc3339(), Timestamp(minute + 59_999).to_rfc3339());
    let mut created = Vec::with_capacity(SCHEDULES);
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("filter[createdAt][from]", from.clone()),
            ("filter[createdAt][to]", to.clone()),
            ("page[size]", "100".to_string()),
        ];
        if let Some(cursor) = &after {
            query.push(("page[after]", cursor.clone()));
        }
        let page: Value = client
            .get(format!("{}/api/v1/runs", server.url))
            .query(&query)
            .bearer_auth(STAGING_KEY)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for run in page["data"].as_array().context("a runs page without data")? {
            let at = run["createdAt"].as_str().and_then(Timestamp::parse).context("a run without createdAt")?;
            created.push(at.millis());
        }
        match page["pagination"]["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(created),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The first whole minute after `ms`, at least 2 s away.
fn next_minute(ms: i64) -> i64 {
    ((ms + 2_000) / 60_000 + 1) * 60_000
}

async fn sleep_until_ms(ms: i64) {
    let wait = ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    }
}

impl ScheduleLoad {
    /// The slower busy drain's rate as a fraction of the quiet one's, less one: −0.04 is 4 %
    /// slower.
    pub fn drain_effect(&self) -> f64 {
        self.drain_making.min(self.drain_firing) / self.drain_quiet - 1.0
    }

    /// The figures as JSON.
    pub fn json(&self) -> Value {
        let lag = |l: &Lag| json!({"runs": l.runs, "min_ms": l.min, "p50_ms": l.p50, "p99_ms": l.p99, "max_ms": l.max});
        json!({
            "schedules": SCHEDULES,
            "created_per_s": self.created_per_s,
            "fire_to_created_idle": lag(&self.idle),
            "fire_to_created_during_drain": lag(&self.busy),
            "drain_quiet_runs_per_s": self.drain_quiet,
            "drain_making_runs_per_s": self.drain_making,
            "drain_firing_runs_per_s": self.drain_firing,
            "drain_effect": self.drain_effect(),
        })
    }
}
