//! `stint`: run the server, trigger runs and look at them, manage schedules, administer projects and their keys.

mod admin;
mod bench;
mod client;
mod runs;
mod schedules;
mod server;

use clap::{Parser, Subcommand};

/// mimalloc: the server allocates and frees many small buffers per request, where it is faster
/// than the system allocator. With its `override` feature it also serves the C allocations of
/// the bundled SQLite, which copies every text value it binds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stint: durable background jobs in one binary.
#[derive(Parser)]
#[command(name = "stint", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, engine and stall sweeper, on a SQLite file in the data directory.
    Server(server::ServerArgs),
    /// Trigger a run of a task and print its id.
    Trigger(runs::TriggerArgs),
    /// List, inspect, cancel and replay runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Make, list, activate, deactivate and delete schedules: runs of a task at cron times.
    #[command(subcommand)]
    Schedules(schedules::SchedulesCommand),
    /// Create and list projects (admin token).
    #[command(subcommand)]
    Projects(admin::ProjectsCommand),
    /// Create, list and revoke the secret keys of a project's environments (admin token).
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Create, list and revoke a project's personal access tokens (admin token).
    #[command(subcommand)]
    Tokens(admin::TokensCommand),
    /// Show and set an environment's concurrency limit, burst factor and pause (admin token).
    #[command(subcommand)]
    Environments(admin::EnvironmentsCommand),
    /// Measure trigger throughput, drain rate and latency against a server of its own.
    Bench(bench::BenchArgs),
    /// The worker process `stint bench` starts.
    #[command(hide = true)]
    BenchWorker(bench::worker::BenchWorkerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Server(_)) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    // The bench driver is a client on one thread, as the peers' drivers are; it leaves the other
    // core to the server and workers it starts.
    let runtime = if matches!(cli.command, Command::Bench(_)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Trigger(args) => runs::trigger(args).await,
            Command::Runs(command) => runs::run(command).await,
            Command::Schedules(command) => schedules::run(command).await,
            Command::Projects(command) => admin::projects(command).await,
            Command::Keys(command) => admin::keys(command).await,
            Command::Tokens(command) => admin::tokens(command).await,
            Command::Environments(command) => admin::environments(command).await,
            Command::Bench(args) => bench::run(args).await,
            Command::BenchWorker(args) => bench::worker::run(args).await,
        }
    })
}
