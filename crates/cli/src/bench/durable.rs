//! W5, durable step overhead: runs of a task making 10 `ctx.step` calls and then waiting 6 s,
//! long enough to be suspended (the server's threshold is 5 s) and resumed through the queue.
//!
//! Per step: the time the `ctx.step` call took in the run's first execution, whose steps run
//! and are recorded on the server (the step bodies do nothing). Per run: the resume latency, from
//! the end of the wait (the time the task waited until, which its first step recorded) to the
//! moment the replayed task gets past the wait — the waitpoint's completion by the server, the
//! run queued again, taken by the waiting worker with its journal, and 10 steps replayed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stint_sdk::{Task, TaskContext, TaskError};

use super::clock::monotonic_us;
use super::server::{BenchServer, Storage};
use super::stats::Percentiles;
use super::trigger::Trigger;
use super::workers::BenchWorker;

/// Steps per run.
const STEPS: usize = 10;
/// The wait of each run.
const WAIT: Duration = Duration::from_secs(6);
/// Runs measured.
pub const RUNS: usize = 100;
/// Runs triggered per second: their steps barely overlap.
const RATE: u64 = 50;

/// What the `durable` task records, shared by its executions in one worker process.
#[derive(Clone, Default)]
pub struct Recorded(Arc<Mutex<Samples>>);

/// Step times and resume latencies, in µs.
#[derive(Default, Serialize, Deserialize)]
pub struct Samples {
    /// The time of each step call that ran its step.
    pub steps_us: Vec<i64>,
    /// From the end of a run's wait to its replay getting past it, for runs that were suspended.
    pub resumes_us: Vec<i64>,
    /// The same, for runs whose wait ended while their attempt was alive.
    pub in_place_us: Vec<i64>,
}

impl Recorded {
    /// Writes the samples as JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_vec(&*self.0.lock())?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Where a worker writing its records to `out` writes its `durable` samples.
pub fn path_beside(out: &Path) -> PathBuf {
    out.with_extension("durable.json")
}

/// Microseconds since the Unix epoch: the time the server's waits are kept in.
fn wall_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The `durable` task: 10 steps, then a wait of 6 s.
pub fn task(recorded: Recorded) -> Task {
    Task::new("durable", move |ctx: TaskContext, _payload: Value| {
        let recorded = recorded.clone();
        async move {
            let mut steps = Vec::with_capacity(STEPS);
            let mut until_us = 0;
            for k in 0..STEPS {
                let ran = AtomicBool::new(false);
                let before = monotonic_us();
                let value: i64 = ctx
                    .step(&format!("step-{k}"), || async {
                        ran.store(true, Ordering::Relaxed);
                        // The first step fixes when the wait ends, so the replay knows it too.
                        Ok(if k == 0 { wall_us() + i64::try_from(WAIT.as_micros()).unwrap_or(0) } else { 0 })
                    })
                    .await?;
                if ran.load(Ordering::Relaxed) {
                    steps.push(monotonic_us() - before);
                }
                if k == 0 {
                    until_us = value;
                }
            }
            // Kept now: a suspended execution never gets past the wait.
            let replayed = steps.is_empty();
            recorded.0.lock().steps_us.extend(steps);
            let until = UNIX_EPOCH + Duration::from_micros(u64::try_from(until_us).unwrap_or(0));
            ctx.wait_until(until).await?;
            let late = wall_us() - until_us;
            let mut samples = recorded.0.lock();
            if replayed {
                samples.resumes_us.push(late);
            } else {
                samples.in_place_us.push(late);
            }
            Ok::<_, TaskError>(Value::Null)
        }
    })
}

/// W5's figures, in ms.
pub struct StepOverhead {
    /// Step call p50 / p99.
    pub step_p50: f64,
    /// Step call p99.
    pub step_p99: f64,
    /// Resume p50.
    pub resume_p50: f64,
    /// Resume p99.
    pub resume_p99: f64,
    /// Resume max.
    pub resume_max: f64,
    /// Steps measured.
    pub steps: usize,
    /// Runs resumed after a suspension.
    pub resumed: usize,
}

/// Runs W5 on a fresh server.
pub async fn run(storage: &Storage) -> anyhow::Result<StepOverhead> {
    let server = BenchServer::start(storage)?;
    let dir = tempfile::tempdir()?;
    let worker = BenchWorker::start(&server.url, RUNS, None, dir.path())?;
    let trigger = Trigger::new(&server.url);
    let mut connection = trigger.connect().await?;
    let interval = Duration::from_micros(1_000_000 / RATE);
    let start = tokio::time::Instant::now();
    for i in 0..RUNS {
        tokio::time::sleep_until(start + interval * u32::try_from(i)?).await;
        let body = json!({"payload": {"i": i}}).to_string();
        connection.post("/api/v1/tasks/durable/trigger", "application/json", Bytes::from(body)).await?;
    }
    server.wait_until_drained().await?;
    let samples_path = worker.durable_out();
    worker.stop()?;
    let samples: Samples = serde_json::from_slice(&std::fs::read(&samples_path)?)?;
    anyhow::ensure!(
        samples.steps_us.len() == RUNS * STEPS,
        "{} of {} steps recorded",
        samples.steps_us.len(),
        RUNS * STEPS
    );
    anyhow::ensure!(
        samples.resumes_us.len() + samples.in_place_us.len() == RUNS,
        "{} of {RUNS} runs got past their wait",
        samples.resumes_us.len() + samples.in_place_us.len()
    );
    let ms = |us: &[i64]| us.iter().map(|v| *v as f64 / 1_000.0).collect::<Vec<_>>();
    let steps = Percentiles::new(ms(&samples.steps_us))?;
    let resumes = Percentiles::new(ms(&samples.resumes_us)).context("no run was suspended")?;
    Ok(StepOverhead {
        step_p50: steps.at(0.50),
        step_p99: steps.at(0.99),
        resume_p50: resumes.at(0.50),
        resume_p99: resumes.at(0.99),
        resume_max: resumes.max(),
        steps: samples.steps_us.len(),
        resumed: samples.resumes_us.len(),
    })
}

impl StepOverhead {
    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({
            "step_ms": {"p50": self.step_p50, "p99": self.step_p99, "n": self.steps},
            "resume_ms": {"p50": self.resume_p50, "p99": self.resume_p99, "max": self.resume_max, "n": self.resumed},
        })
    }
}
