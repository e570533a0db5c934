//! W6, schedules: 10,000 active schedules firing every minute.
//!
//! The schedules trigger `noop` in the staging environment, where no worker runs, so their runs
//! stay queued and apart from the drain. Measured:
//!
//! - the lag of each fired run, from its nominal fire time (the minute) to the run's `createdAt`,
//!   at a minute with nothing else going on. A run made ahead of its time (the server makes them
//!   over the half-minute before it) has its time as `createdAt`, as in Trigger.dev: lag 0; one
//!   made late has the moment it was made;
//! - a W2 drain of production runs from 5 s after a minute, with no schedule work during it (the
//!   next minute's runs are made from 30 s before it);
//! - the same drain centred 20 s before a minute, while that minute's runs are being made;
//! - the same drain centred on that minute, with the minute's lag.
//!
//! Five such rounds are run; the effect of the schedules on the drain is the median rate of the
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

/// Active schedules, unless the bench is told otherwise (`--schedules`; 0 for a control run).
pub const SCHEDULES: usize = 10_000;
/// Every minute.
const CRON: &str = "* * * * *";
/// Pairs of drains, quiet and with a fire; the median of each is reported.
pub const ROUNDS: usize = 5;

/// What W6 measured.
pub struct ScheduleLoad {
    /// Active schedules.
    pub schedules: usize,
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
    /// Every drain's rate, runs/s: quiet, while made and across the minute, one list each.
    pub rounds: [Vec<f64>; 3],
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
pub async fn run(
    storage: &Storage,
    schedules: usize,
    n: usize,
    concurrency: usize,
    clients: usize,
) -> anyhow::Result<ScheduleLoad> {
    let server = BenchServer::start(storage)?;
    register_staging(&server).await?;
    let created_per_s = create(&server, schedules, clients).await?;

    let idle = Lag::of(lags(&server, schedules, next_minute(now_ms())).await?)?;
    // A quiet drain's wall time: the busy drains start half of it before their moment.
    let mut lead_ms = 1_000;
    let (mut quiet, mut making, mut firing, mut busy) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        // Quiet: after a minute's runs are made and before the next minute's begin, 30 s ahead.
        let (rate, wall_ms) = drain(&server, n, concurrency, clients, |now| {
            let minute = now.div_euclid(60_000) * 60_000;
            if now + 2 * lead_ms < minute + 28_000 { now.max(minute + 5_000) } else { minute + 65_000 }
        })
        .await?;
        quiet.push(rate);
        lead_ms = wall_ms / 2;
        // While a minute's runs are made: centred 20 s before it.
        let mut minute = 0;
        making.push(
            drain(&server, n, concurrency, clients, |now| {
                minute = minute_after(now + 20_000 + lead_ms);
                minute - 20_000 - lead_ms
            })
            .await?
            .0,
        );
        // Across the minute (the next one, if queueing took past this one's start).
        firing.push(
            drain(&server, n, concurrency, clients, |now| {
                if now + lead_ms >= minute {
                    minute = minute_after(now + lead_ms);
                }
                minute - lead_ms
            })
            .await?
            .0,
        );
        busy.extend(lags(&server, schedules, minute).await?);
    }
    Ok(ScheduleLoad {
        schedules,
        created_per_s,
        idle,
        busy: Lag::of(busy)?,
        drain_quiet: median(quiet.clone()),
        drain_making: median(making.clone()),
        drain_firing: median(firing.clone()),
        rounds: [quiet, making, firing],
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

/// Creates `schedules` schedules of `noop` in staging from `clients` connections; schedules/s.
async fn create(server: &BenchServer, schedules: usize, clients: usize) -> anyhow::Result<f64> {
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
                if i >= schedules {
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
    Ok(schedules as f64 / started.elapsed().as_secs_f64())
}

/// Queues `n` production runs, then drains them with one worker started at the time (ms since
/// the epoch) `start` picks given the time the runs were queued by. Returns the drain rate and the
/// wall time in ms from the worker's start to the last run.
async fn drain(
    server: &BenchServer,
    n: usize,
    concurrency: usize,
    clients: usize,
    start: impl FnOnce(i64) -> i64,
) -> anyhow::Result<(f64, i64)> {
    Trigger::new(&server.url).many(n, clients).await?;
    sleep_until_ms(start(now_ms())).await;
    let dir = tempfile::tempdir()?;
    let spawned = Instant::now();
    let worker = BenchWorker::start(&server.url, concurrency, Some(n), dir.path())?;
    let records = worker.wait()?;
    let wall_ms = i64::try_from(spawned.elapsed().as_millis())?;
    stats::ensure_each_once(&records, n)?;
    Ok((stats::drain_rate(&records), wall_ms))
}

/// Waits for the runs fired for `minute` (ms since the epoch) and returns their lags in ms.
async fn lags(server: &BenchServer, schedules: usize, minute: i64) -> anyhow::Result<Vec<f64>> {
    sleep_until_ms(minute).await;
    if schedules == 0 {
        return Ok(Vec::new());
    }
    let deadline = Instant::now() + Duration::from_secs(50);
    loop {
        let created = fired_at(server, minute).await?;
        if created.len() >= schedules || Instant::now() >= deadline {
            anyhow::ensure!(
                created.len() == schedules,
                "{} of {schedules} schedules fired for {} within 50 s",
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
        if runs == 0 {
            return Ok(Lag { runs, min: 0.0, p50: 0.0, p99: 0.0, max: 0.0 });
        }
        let lags = Percentiles::new(lags)?;
        Ok(Lag { runs, min: lags.at(0.0), p50: lags.at(0.5), p99: lags.at(0.99), max: lags.max() })
    }
}

/// The creation times (ms) of the staging runs created from `minute` to a minute later.
async fn fired_at(server: &BenchServer, minute: i64) -> anyhow::Result<Vec<i64>> {
    let (from, to) = (Timestamp(minute).to_rfc3339(), Timestamp(minute + 59_999).to_rfc3339());
    let mut created = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("filter[createdAt][from]", from.as_str()), ("filter[createdAt][to]", to.as_str())];
        query.push(("page[size]", "100"));
        if let Some(cursor) = &after {
            query.push(("page[after]", cursor));
        }
        let page = server.runs_page(STAGING_KEY, &query).await?;
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
    minute_after(ms + 2_000)
}

/// The first whole minute after `ms`.
fn minute_after(ms: i64) -> i64 {
    (ms.div_euclid(60_000) + 1) * 60_000
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
            "schedules": self.schedules,
            "created_per_s": self.created_per_s,
            "fire_to_created_idle": lag(&self.idle),
            "fire_to_created_during_drain": lag(&self.busy),
            "drain_quiet_runs_per_s": self.drain_quiet,
            "drain_making_runs_per_s": self.drain_making,
            "drain_firing_runs_per_s": self.drain_firing,
            "drains_runs_per_s": {"quiet": self.rounds[0], "making": self.rounds[1], "across_the_minute": self.rounds[2]},
            "drain_effect": self.drain_effect(),
        })
    }
}
