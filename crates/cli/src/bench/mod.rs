//! `stint bench`: the workloads the peers are measured with (`../shared/bench/peers`), against a
//! server this command starts on a fresh data directory for each workload.
//!
//! - W1: 20,000 `trigger` calls, from one client awaiting each call and from 32 concurrent
//!   clients; runs/s. Measured with full durability and with `--durability normal`.
//! - W2: 20,000 queued `noop` runs drained by one worker process with concurrency 50;
//!   (N − 1) / (last start − first start), plus the wall time from worker spawn to the last
//!   completion.
//! - W3: 2,000 runs at 200/s into an idle worker; trigger-to-start p50/p95/p99/max in ms, both
//!   times from `CLOCK_MONOTONIC`.
//! - W4, fairness (not run by default; `--workloads w4`): 10,000 `noop` runs of concurrency key
//!   `tenant-a` queued, then one worker process with concurrency 50; once 1,000 of them have
//!   started (the queue's `queued` count, polled every 25 ms), 100 runs of `tenant-b` triggered
//!   by as many calls at once. B's trigger-to-start p50/p99/max in ms, how many of A's runs
//!   started after B's last, A's backlog when B triggered, and the drain rate over all 10,100
//!   runs as W2 computes it.
//! - W1b, batch trigger (`--workloads w1b`, not run by default): 100,000 `noop` runs as 100
//!   batches of 1,000 through the two-phase batch API, from one client and from
//!   `--batch-clients` clients; runs/s from the first call to the last answer, then the drain of
//!   those runs by one worker process with concurrency 50, as W2.
//! - W4e, fairness across environments (`--workloads w4e`): the same with tenant A's runs in the
//!   staging environment and B's in prod, no concurrency keys, and one worker pool (a personal
//!   access token, `--environments staging,prod`) serving both.
//! - W5, durable step overhead (`--workloads w5`, not run by default): 100 runs, 50 a second, of
//!   a task making 10 `ctx.step` calls and then waiting 6 s (suspended at the server's 5 s
//!   threshold, resumed through the queue); the step calls' p50/p99 and the resume latency from
//!   the end of the wait to the replay getting past it, p50/p99/max (see `durable.rs`).
//! - W6, schedules (`--workloads w6`, not run by default): 10,000 schedules firing every minute
//!   in staging; the fire-time-to-created lag p50/p99/max at an idle minute, and W2 drains of
//!   `--n` production runs with no schedule work, while a minute's runs are made and centred on
//!   a minute, with that minute's lag (see `schedules.rs`).

mod batch;
mod clock;
mod drain;
mod durable;
mod fairness;
mod latency;
mod schedules;
mod server;
mod stats;
mod trigger;
pub mod worker;
mod workers;

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use comfy_table::{Table, presets};
use serde_json::{Value, json};

use fairness::Tenants;
use server::{BenchServer, FreshDatabase, Storage};
use trigger::Trigger;

/// `stint bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Runs per throughput workload.
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Concurrent clients of the many-clients trigger workload.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Workloads to run, comma-separated: w1, w1b, w2, w3, w4, w4e, w5, w6.
    #[arg(long, default_value = "w1,w2,w3", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Concurrent clients of the batch workload (W1b), besides one client alone.
    #[arg(long, default_value_t = 4)]
    batch_clients: usize,
    /// Directory for the JSON results.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Run the servers on PostgreSQL: a fresh database is made on this server (the URL of any
    /// database there) for each workload, and dropped after it.
    #[arg(long, env = "STINT_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Schedules of W6; 0 runs its drains without any, as a control.
    #[arg(long, default_value_t = schedules::SCHEDULES)]
    schedules: usize,
    /// Server nodes sharing the PostgreSQL database in W2, each with a worker process of its
    /// own (the 50 slots are split between them).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

/// The storage of one workload: a SQLite file, or a fresh PostgreSQL database kept alive by the
/// returned guard.
async fn storage(args: &BenchArgs, durability: &'static str) -> anyhow::Result<(Storage, Option<FreshDatabase>)> {
    match &args.database_url {
        None => Ok((Storage::Sqlite(durability), None)),
        Some(admin) => {
            let database = FreshDatabase::create(admin).await?;
            Ok((Storage::Postgres(database.url.clone()), Some(database)))
        }
    }
}

/// One measured figure.
struct Row {
    workload: &'static str,
    setting: String,
    value: String,
    json: Value,
}

/// Runs the chosen workloads, prints a table and writes the figures as JSON.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for workload in &args.workloads {
        match workload.as_str() {
            "w1" => rows.extend(w1(&args).await?),
            "w1b" => rows.extend(w1b(&args).await?),
            "w2" => {
                anyhow::ensure!(args.nodes == 1 || args.database_url.is_some(), "several nodes need --database-url");
                let (storage, _database) = storage(&args, "full").await?;
                let drain = drain::run(&storage, args.nodes.max(1), args.n, 50, args.clients).await?;
                eprintln!("W2 drain: {:.0} runs/s, {:.2} s wall", drain.runs_per_s, drain.wall_incl_startup_s);
                let workers = if args.nodes > 1 {
                    format!("{} nodes, a worker process on each, concurrency {} each", args.nodes, 50 / args.nodes)
                } else {
                    "1 worker process, concurrency 50".into()
                };
                rows.push(Row {
                    workload: "W2 drain",
                    setting: format!("{} no-op runs, {workers}, {}", args.n, storage.describe()),
                    value: format!(
                        "{:.0} runs/s ({:.2} s wall incl. start-up)",
                        drain.runs_per_s, drain.wall_incl_startup_s
                    ),
                    json: drain.json(),
                });
            }
            "w3" => {
                let (storage, _database) = storage(&args, "full").await?;
                let latency = latency::run(&storage, 2_000, 200, 50).await?;
                eprintln!(
                    "W3 latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
                    latency.p50, latency.p95, latency.p99
                );
                rows.push(Row {
                    workload: "W3 trigger→start",
                    setting: format!("2,000 runs at 200/s into an idle worker, {}", storage.describe()),
                    value: format!(
                        "p50 {:.2} / p95 {:.2} / p99 {:.2} / max {:.2} ms",
                        latency.p50, latency.p95, latency.p99, latency.max
                    ),
                    json: latency.json(),
                });
            }
            "w4" | "w4e" => {
                let (storage, _database) = storage(&args, "full").await?;
                let tenants = if workload.as_str() == "w4" { Tenants::Keys } else { Tenants::Environments };
                let fairness = fairness::run(&storage, tenants, 50, args.clients).await?;
                let (name, split) = match tenants {
                    Tenants::Keys => ("W4 fairness", "of key tenant-a, then {B} of tenant-b"),
                    Tenants::Environments => {
                        ("W4 fairness, environments", "in staging, then {B} in prod, one worker pool serving both,")
                    }
                };
                eprintln!(
                    "{name}: B p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (B's triggers answered within {:.2} ms, its \
                     first run started at {:.2} ms); A started after B's last: {}; drain {:.0} runs/s",
                    fairness.b_p50,
                    fairness.b_p99,
                    fairness.b_max,
                    fairness.b_triggers_ms,
                    fairness.b_first_start_ms,
                    fairness.a_started_after_last_b,
                    fairness.runs_per_s
                );
                rows.push(Row {
                    workload: name,
                    setting: format!(
                        "{} queued runs {} once {} have started ({} of A still queued); 1 worker process, \
                         concurrency 50, {}",
                        thousands(fairness::A_RUNS),
                        split.replace("{B}", &fairness::B_RUNS.to_string()),
                        thousands(fairness::A_STARTED_BEFORE_B),
                        thousands(fairness.a_backlog_when_b_triggered),
                        storage.describe()
                    ),
                    value: format!(
                        "B p50 {:.2} / p99 {:.2} / max {:.2} ms; {} A runs started after B's last; {:.0} runs/s",
                        fairness.b_p50,
                        fairness.b_p99,
                        fairness.b_max,
                        thousands(fairness.a_started_after_last_b),
                        fairness.runs_per_s
                    ),
                    json: fairness.json(),
                });
            }
            "w5" => {
                let (storage, _database) = storage(&args, "full").await?;
                let w5 = durable::run(&storage).await?;
                eprintln!(
                    "W5 durable steps: step p50 {:.2} ms, p99 {:.2} ms; resume p50 {:.2} ms, p99 {:.2} ms",
                    w5.step_p50, w5.step_p99, w5.resume_p50, w5.resume_p99
                );
                rows.push(Row {
                    workload: "W5 durable steps",
                    setting: format!(
                        "{} runs of 10 ctx.step calls and a 6 s wait (suspended at 5 s), 50 runs/s, 1 worker \
                         process, concurrency {}, {}",
                        durable::RUNS,
                        durable::RUNS,
                        storage.describe()
                    ),
                    value: format!(
                        "step p50 {:.2} / p99 {:.2} ms; resume after the wait p50 {:.2} / p99 {:.2} / max {:.2} ms \
                         ({} of {} runs suspended)",
                        w5.step_p50,
                        w5.step_p99,
                        w5.resume_p50,
                        w5.resume_p99,
                        w5.resume_max,
                        w5.resumed,
                        durable::RUNS
                    ),
                    json: w5.json(),
                });
            }
            "w6" => {
                let (storage, _database) = storage(&args, "full").await?;
                let w6 = schedules::run(&storage, args.schedules, args.n, 50, args.clients).await?;
                let lag = |l: &schedules::Lag| {
                    format!("min {:.0} / p50 {:.0} / p99 {:.0} / max {:.0} ms", l.min, l.p50, l.p99, l.max)
                };
                let value = format!(
                    "fire→created {} idle, {} during a drain; drain {:.0} runs/s quiet, {:.0} while a minute's \
                     runs are made, {:.0} across a minute ({:+.1} %); {:.0} schedules/s created",
                    lag(&w6.idle),
                    lag(&w6.busy),
                    w6.drain_quiet,
                    w6.drain_making,
                    w6.drain_firing,
                    w6.drain_effect() * 100.0,
                    w6.created_per_s
                );
                eprintln!("W6 schedules: {value}");
                rows.push(Row {
                    workload: "W6 schedules",
                    setting: format!(
                        "{} schedules every minute; drains of {} no-op runs, 1 worker process, concurrency 50, {}",
                        thousands(w6.schedules),
                        thousands(args.n),
                        storage.describe()
                    ),
                    value,
                    json: w6.json(),
                });
            }
            other => anyhow::bail!("unknown workload '{other}': expected w1, w1b, w2, w3, w4, w4e, w5 or w6"),
        }
    }
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(["workload", "setting", "result"]);
    for row in &rows {
        table.add_row([row.workload.to_string(), row.setting.clone(), row.value.clone()]);
    }
    println!("{table}");
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let stamp = stint_types::Timestamp(i64::try_from(now.as_millis())?).to_rfc3339().replace(':', "");
    let path = args.out.join(format!("stint-{stamp}.json"));
    let report = json!({
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "n": args.n,
        "results": rows.iter().map(|r| json!({"workload": r.workload, "setting": r.setting, "values": r.json})).collect::<Vec<_>>(),
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!("Results written to {}", path.display());
    Ok(())
}

async fn w1(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    // PostgreSQL always syncs its commits; the durability setting is SQLite's.
    let durabilities: &[&'static str] = if args.database_url.is_some() { &["full"] } else { &["full", "normal"] };
    for &durability in durabilities {
        for clients in [1, args.clients] {
            let (storage, _database) = storage(args, durability).await?;
            let server = BenchServer::start(&storage)?;
            let trigger = Trigger::new(&server.url);
            trigger.many(100, clients).await?;
            let rate = trigger.many(args.n, clients).await?;
            let setting = format!("{clients} client{}, {}", if clients == 1 { "" } else { "s" }, storage.describe());
            eprintln!("W1 {setting}: {rate:.0} runs/s");
            rows.push(Row {
                workload: "W1 trigger",
                setting,
                value: format!("{rate:.0} runs/s"),
                json: json!({"clients": clients, "durability": durability, "runs_per_s": rate}),
            });
        }
    }
    Ok(rows)
}

async fn w1b(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut counts = vec![1, args.batch_clients.max(1)];
    counts.dedup();
    for clients in counts {
        let (storage, _database) = storage(args, "full").await?;
        let batched = batch::run(&storage, clients, 50).await?;
        let setting = format!(
            "{} batches of {} no-op runs (create + NDJSON items), {clients} client{}, {}",
            batch::BATCHES,
            thousands(batch::BATCH_SIZE),
            if clients == 1 { "" } else { "s" },
            storage.describe()
        );
        eprintln!(
            "W1b {setting}: {:.0} runs/s ({:.2} s); drain {:.0} runs/s, {:.2} s wall",
            batched.runs_per_s, batched.seconds, batched.drain_runs_per_s, batched.drain_wall_s
        );
        rows.push(Row {
            workload: "W1b batch trigger",
            setting,
            value: format!(
                "{:.0} runs/s ({:.2} s); then drained at {:.0} runs/s ({:.2} s wall incl. start-up)",
                batched.runs_per_s, batched.seconds, batched.drain_runs_per_s, batched.drain_wall_s
            ),
            json: batched.json(&storage),
        });
    }
    Ok(rows)
}

/// `n` with a comma between thousands, as the settings write their counts.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The log filter of the servers and workers a benchmark starts: `STINT_BENCH_LOG`, to look into
/// a run, or warnings only.
fn child_log() -> String {
    std::env::var("STINT_BENCH_LOG").unwrap_or_else(|_| "warn".into())
}
