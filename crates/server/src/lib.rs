//! Stint's server: the HTTP API in Trigger.dev's shapes, the worker protocol, the admin API,
//! credential checks, and the wiring of the engine to a store. This is the only crate that names
//! a concrete store.

mod app;
mod auth;
pub mod bootstrap;
mod callback;
mod error;
mod json;
mod key_cache;
mod options;
mod present;
mod rate_limit;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use stint_engine::{Engine, Ids, SystemClock};
use stint_store::Store;
use stint_store_postgres::{Options as PostgresOptions, PostgresStore};
use stint_store_sqlite::{Durability, Options, SqliteStore};
use stint_types::EnvironmentType;
use tokio::net::TcpListener;

pub use app::{API_BODY_LIMIT, router};
pub use error::ApiError;
pub use rate_limit::ApiRateLimit;

/// What the handlers share.
pub struct AppState {
    /// The run engine.
    pub engine: Arc<Engine>,
    /// What secret keys and personal access tokens open, cached by hash.
    pub keys: key_cache::Keys,
    /// Hex SHA-256 of the instance's admin token.
    pub admin_hash: String,
    /// The API request buckets of the environments; no limit when `None`.
    pub limiter: Option<rate_limit::Limiter>,
    /// The instance's secret for signing token callback URLs, read from the engine at first use.
    pub signing_secret: tokio::sync::OnceCell<String>,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database and generated keys live.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Commit durability of the SQLite store.
    pub durability: Durability,
    /// A PostgreSQL URL (`postgres://…`) to use instead of the SQLite file in the data directory.
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub pool_size: u32,
    /// Engine settings.
    pub engine: stint_engine::Config,
    /// How often to look for stalled runs.
    pub sweep_interval: Duration,
    /// Keys to create on first start, instead of generated ones.
    pub initial_keys: Vec<(EnvironmentType, String)>,
    /// API requests each environment may make; unlimited when `None`.
    pub api_rate_limit: Option<ApiRateLimit>,
    /// The admin token to store on first start (`STINT_ADMIN_TOKEN`), instead of a generated one.
    pub admin_token: Option<String>,
    /// How long a node trusts what it found a credential opens (or that it opens nothing) before
    /// asking the database again: a key revoked through another node stops working within it.
    pub key_cache_ttl: Duration,
}

impl Config {
    /// Defaults: `./.stint`, `127.0.0.1:3030`, full durability, Trigger.dev's timeouts, a sweep
    /// every second, API requests limited to bursts of 2,000 per environment refilled at 1,000/s,
    /// credentials cached for 5 s.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 3030)),
            durability: Durability::Full,
            database_url: None,
            pool_size: 16,
            engine: stint_engine::Config::default(),
            sweep_interval: Duration::from_secs(1),
            initial_keys: Vec::new(),
            api_rate_limit: Some(ApiRateLimit::DEFAULT),
            admin_token: None,
            key_cache_ttl: key_cache::DEFAULT_TTL,
        }
    }
}

impl Config {
    /// Where the data lives, for people: the SQLite file, or the PostgreSQL URL without its
    /// password.
    pub fn database_description(&self) -> String {
        match &self.database_url {
            None => self.data_dir.join("stint.db").display().to_string(),
            Some(url) => PostgresOptions::new(url.as_str()).redacted_url(),
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or socket could not be used.
    #[error("{0}")]
    Io(String),
    /// The database failed.
    #[error("database: {0}")]
    Engine(#[from] stint_engine::Error),
}

/// A server that has opened its database and bound its address, ready to serve.
pub struct Server {
    state: Arc<AppState>,
    listener: TcpListener,
    sweep_interval: Duration,
}

impl Server {
    /// Opens the database, creates the default project on first start and binds the address.
    pub async fn start(config: Config) -> Result<Server, Error> {
        let store = open_store(&config).await?;
        let engine = Arc::new(Engine::new(store, Arc::new(SystemClock), Ids::from_entropy(), config.engine));
        let admin =
            bootstrap::ensure(&engine, &config.data_dir, &config.initial_keys, config.admin_token.as_deref()).await?;
        let keys = key_cache::Keys::new(config.key_cache_ttl);
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Io(format!("listening on {}: {e}", config.listen)))?;
        let limiter = config.api_rate_limit.map(rate_limit::Limiter::new);
        let state = Arc::new(AppState {
            engine,
            keys,
            admin_hash: admin.token_hash,
            limiter,
            signing_secret: tokio::sync::OnceCell::new(),
        });
        Ok(Server { state, listener, sweep_interval: config.sweep_interval })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then stops taking requests, ends waiting long polls
    /// and finishes the requests in progress.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let engine = self.state.engine.clone();
        let node = format!("node_{:016x}", rand::random::<u64>());
        let maintenance = tokio::spawn(maintain(engine.clone(), self.sweep_interval, node.clone()));
        let stopping = async move {
            shutdown.await;
            tracing::info!("shutting down");
            engine.stop_waiting();
        };
        // Responses go out at once rather than waiting for the client's acknowledgement of the last
        // packet (Nagle), which would add latency to every small answer.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, router(self.state.clone())).with_graceful_shutdown(stopping).await;
        maintenance.abort();
        if let Err(error) = self.state.engine.resign(&node).await {
            tracing::warn!(%error, "could not give up the maintenance lease; another node takes it when it expires");
        }
        served.map_err(|e| Error::Io(format!("serving: {e}")))
    }
}

/// Opens the configured store, bringing its schema up to date: the SQLite file in the data
/// directory, or the PostgreSQL database of `database_url`.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Error> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Error::Io(format!("creating data directory {}: {e}", config.data_dir.display())))?;
    match &config.database_url {
        None => {
            let options = Options { durability: config.durability, ..Options::new(config.data_dir.join("stint.db")) };
            Ok(Arc::new(SqliteStore::open(&options).map_err(stint_engine::Error::Store)?))
        }
        Some(url) => {
            let options = postgres_options(url, config.pool_size)?;
            Ok(Arc::new(PostgresStore::open(&options).await.map_err(stint_engine::Error::Store)?))
        }
    }
}

fn postgres_options(url: &str, pool_size: u32) -> Result<PostgresOptions, Error> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Config(
            "the database URL must start with postgres:// or postgresql:// (SQLite needs none: it is the default)"
                .into(),
        ));
    }
    let mut options = PostgresOptions::new(url);
    options.max_connections = pool_size.max(1);
    Ok(options)
}

/// Brings the database's schema up to date and returns: `stint server --migrate-only`.
pub async fn migrate(config: &Config) -> Result<(), Error> {
    match &config.database_url {
        None => open_store(config).await.map(drop),
        Some(url) => {
            let options = postgres_options(url, config.pool_size)?;
            stint_store_postgres::migrate(&options).await.map_err(|e| Error::Engine(stint_engine::Error::Store(e)))
        }
    }
}

/// Every `interval`, does the maintenance work (the stall sweep and the work that is due) if
/// this node holds the maintenance lease or can take it. The lease lasts five intervals (at least
/// 2 s): a node that dies is replaced within that time. Between sweeps, the holder looks for due
/// work every [`DUE_EVERY`] (a read, unless something is due), and sleeps only until the next due
/// time when that comes sooner, so a wait ends, a delayed run is queued and a run past its TTL
/// expires at its time (a due time set on another node since the last look is found within
/// [`DUE_EVERY`]).
async fn maintain(engine: Arc<Engine>, interval: Duration, node: String) {
    let lease = (interval * 5).max(Duration::from_secs(2));
    let tick = interval.min(DUE_EVERY);
    let mut leading = false;
    let mut swept_at: Option<tokio::time::Instant> = None;
    let mut next_due: Option<stint_types::Timestamp> = None;
    loop {
        let until_due = next_due.map(|at| u64::try_from(at.millis() - engine.now().millis()).unwrap_or(0));
        let nap = until_due.map_or(tick, |ms| Duration::from_millis(ms).clamp(Duration::from_millis(1), tick));
        tokio::time::sleep(nap).await;
        let now = tokio::time::Instant::now();
        if swept_at.is_some_and(|at| now.duration_since(at) < interval) {
            if leading {
                match engine.run_due().await {
                    Ok(due) => {
                        next_due = due.next;
                        log_due(due);
                    }
                    Err(error) => tracing::warn!(%error, "queueing due runs failed; retrying at the next tick"),
                }
            }
            continue;
        }
        swept_at = Some(now);
        match engine.maintain(&node, lease).await {
            Ok(Some(done)) => {
                next_due = done.due.next;
                if !leading {
                    tracing::info!(node, "this node does the maintenance work now");
                    leading = true;
                }
                if done.stalled > 0 {
                    tracing::info!(runs = done.stalled, "handled stalled runs");
                }
                log_due(done.due);
            }
            Ok(None) => {
                next_due = None;
                if leading {
                    tracing::info!(node, "another node does the maintenance work now");
                    leading = false;
                }
            }
            Err(error) => {
                leading = false;
                tracing::warn!(%error, "maintenance failed; retrying at the next tick")
            }
        }
    }
}

/// How often the maintenance node looks for delayed runs that are due and runs past their TTL.
const DUE_EVERY: Duration = Duration::from_millis(100);

fn log_due(due: stint_engine::Due) {
    if due.queued > 0 || due.expired > 0 || due.waitpoints > 0 {
        tracing::debug!(queued = due.queued, expired = due.expired, waitpoints = due.waitpoints, "handled due work");
    }
}
