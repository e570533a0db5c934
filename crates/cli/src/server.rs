//! `stint server`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use stint_server::{ApiRateLimit, Config, Server};
use stint_store_sqlite::Durability;
use stint_types::EnvironmentType;

/// Settings of `stint server`; each flag can also be set by the environment variable shown.
#[derive(Args)]
pub struct ServerArgs {
    /// Directory of the database and generated keys.
    #[arg(long, env = "STINT_DATA_DIR", default_value = "./.stint")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "STINT_LISTEN", default_value = "127.0.0.1:3030")]
    listen: SocketAddr,
    /// `full` syncs every commit to disk (survives power loss); `normal` survives a crash of the
    /// process but may lose the last commits on power loss. SQLite only.
    #[arg(long, env = "STINT_DURABILITY", default_value = "full")]
    durability: Durability,
    /// Use this PostgreSQL database (`postgres://user:password@host:5432/db`) instead of the
    /// SQLite file, so that several servers can share it.
    #[arg(long, env = "STINT_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "STINT_POOL_SIZE", default_value_t = 16)]
    pool_size: u32,
    /// Bring the database's schema up to date and exit.
    #[arg(long)]
    migrate_only: bool,
    /// How long an executing attempt may go without a heartbeat before it is retried.
    #[arg(long, env = "STINT_EXECUTING_TIMEOUT", default_value = "300s", value_parser = humantime::parse_duration)]
    executing_timeout: Duration,
    /// How long a worker has to confirm a cancel before the run is cancelled without it.
    #[arg(long, env = "STINT_PENDING_CANCEL_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pending_cancel_timeout: Duration,
    /// How long a run may wait on waitpoints with its attempt alive, holding its concurrency
    /// slot, before the attempt is suspended and the slot given back.
    #[arg(long, env = "STINT_SUSPEND_AFTER", default_value = "5s", value_parser = humantime::parse_duration)]
    suspend_after: Duration,
    /// How often to look for stalled runs.
    #[arg(long, env = "STINT_SWEEP_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    sweep_interval: Duration,
    /// API requests each environment may make per second on this node, or `off`. Over the limit
    /// the API answers 429 with `x-ratelimit-*` headers; the worker protocol is not limited.
    #[arg(long, env = "STINT_API_RATE_LIMIT", default_value = "1000", value_parser = per_second)]
    // Spelled out so that clap takes the parser's `Option` as the value, not as "may be absent".
    api_rate_limit: std::option::Option<NonZeroU32>,
    /// API requests an environment may make at once, before the per-second rate applies.
    #[arg(long, env = "STINT_API_RATE_BURST", default_value_t = ApiRateLimit::DEFAULT.burst)]
    api_rate_burst: NonZeroU32,
}

/// A rate in requests per second, or `off`.
fn per_second(text: &str) -> Result<Option<NonZeroU32>, String> {
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("expected a whole number of requests per second above 0, or off, got '{text}'"))
}

/// Starts the server and serves until SIGTERM or ctrl-c.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let mut config = Config::new(&args.data_dir);
    config.listen = args.listen;
    config.durability = args.durability;
    config.database_url = args.database_url;
    config.pool_size = args.pool_size;
    config.engine.timeouts.executing = args.executing_timeout;
    config.engine.timeouts.pending_cancel = args.pending_cancel_timeout;
    config.engine.suspend_after = args.suspend_after;
    config.sweep_interval = args.sweep_interval;
    config.api_rate_limit =
        args.api_rate_limit.map(|per_second| ApiRateLimit { burst: args.api_rate_burst, per_second });
    for kind in EnvironmentType::DEFAULTS {
        if let Ok(key) = std::env::var(stint_server::bootstrap::key_variable(kind)) {
            config.initial_keys.push((kind, key));
        }
    }
    config.admin_token = std::env::var(stint_server::bootstrap::ADMIN_TOKEN_VARIABLE).ok();
    if args.migrate_only {
        stint_server::migrate(&config).await?;
        println!("The database schema is up to date.");
        return Ok(());
    }
    let database = config.database_description();
    let server = Server::start(config).await?;
    println!("Stint is listening on http://{} (data in {database})", server.local_addr());
    server.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
