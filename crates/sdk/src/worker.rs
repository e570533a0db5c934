//! [`Worker`]: the tasks of a process and how it connects to the server.

use std::future::Future;
use std::time::Duration;

use crate::runtime::{self, Settings};
use crate::{Error, Task};

/// The server a worker talks to when `STINT_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:3030";
/// Attempts a worker runs at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 10;
/// The build label a worker registers with unless configured otherwise.
pub const DEFAULT_VERSION: &str = "0.0.0";
/// How long a stopping worker lets attempts in progress finish, unless configured otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a dequeue call waits on the server for a run, unless configured otherwise.
pub const DEFAULT_DEQUEUE_WAIT: Duration = Duration::from_secs(10);
/// The longest dequeue wait the protocol allows.
const MAX_DEQUEUE_WAIT: Duration = Duration::from_secs(30);

/// A worker process: the tasks it offers and how it reaches the server.
///
/// ```no_run
/// # async fn example() -> Result<(), stint_sdk::Error> {
/// use stint_sdk::{Task, TaskContext, TaskError, Worker};
///
/// async fn noop(_ctx: TaskContext, _payload: serde_json::Value) -> Result<(), TaskError> {
///     Ok(())
/// }
///
/// Worker::from_env()?.concurrency(50).task(Task::new("noop", noop)).run().await
/// # }
/// ```
#[derive(Debug)]
pub struct Worker {
    settings: Settings,
    tasks: Vec<Task>,
}

impl Worker {
    /// A worker for the server at `api_url` (`http://host:port`) using the environment's
    /// `secret_key`, with the defaults for everything else and no tasks. Reads no environment
    /// variables, so tests can run several side by side.
    pub fn new(api_url: impl Into<String>, secret_key: impl Into<String>) -> Worker {
        Worker {
            settings: Settings {
                api_url: api_url.into(),
                secret_key: secret_key.into(),
                version: DEFAULT_VERSION.into(),
                concurrency: DEFAULT_CONCURRENCY,
                shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
                dequeue_wait: DEFAULT_DEQUEUE_WAIT,
                environments: None,
            },
            tasks: Vec::new(),
        }
    }

    /// A worker configured from the environment: `STINT_SECRET_KEY` (required),
    /// `STINT_API_URL` (default [`DEFAULT_API_URL`]), `STINT_WORKER_CONCURRENCY` (default
    /// [`DEFAULT_CONCURRENCY`]) and `STINT_WORKER_VERSION` (default [`DEFAULT_VERSION`]).
    /// With `STINT_WORKER_ENVIRONMENTS` (`staging,prod`), a worker pool serving those
    /// environments of a project, authenticated by `STINT_ACCESS_TOKEN` (a `tr_pat_…` of the
    /// project) instead of a secret key. Builder methods called afterwards override these.
    pub fn from_env() -> Result<Worker, Error> {
        Worker::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Worker::from_env`] with the variables looked up by `get`.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Worker, Error> {
        let present = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        let environments = present("STINT_WORKER_ENVIRONMENTS")
            .map(|list| list.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect::<Vec<_>>());
        let credential = match &environments {
            None => present("STINT_SECRET_KEY").ok_or(Error::MissingEnv {
                name: "STINT_SECRET_KEY",
                hint: "set it to the secret key (tr_dev_…) of the environment whose runs this worker executes",
            })?,
            Some(_) => present("STINT_ACCESS_TOKEN").ok_or(Error::MissingEnv {
                name: "STINT_ACCESS_TOKEN",
                hint: "a worker pool (STINT_WORKER_ENVIRONMENTS) needs a personal access token (tr_pat_…) of the project",
            })?,
        };
        let api_url = present("STINT_API_URL").unwrap_or_else(|| DEFAULT_API_URL.into());
        let mut worker = Worker::new(api_url, credential.trim());
        if let Some(environments) = environments {
            worker = worker.environments(environments);
        }
        if let Some(value) = present("STINT_WORKER_CONCURRENCY") {
            let concurrency =
                value.trim().parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| Error::InvalidEnv {
                    name: "STINT_WORKER_CONCURRENCY",
                    value: value.clone(),
                    reason: "expected a whole number of at least 1".into(),
                })?;
            worker = worker.concurrency(concurrency);
        }
        if let Some(version) = present("STINT_WORKER_VERSION") {
            worker = worker.version(version);
        }
        Ok(worker)
    }

    /// Uses the server at `api_url`.
    pub fn api_url(mut self, api_url: impl Into<String>) -> Worker {
        self.settings.api_url = api_url.into();
        self
    }

    /// Uses this secret key.
    pub fn secret_key(mut self, secret_key: impl Into<String>) -> Worker {
        self.settings.secret_key = secret_key.into();
        self
    }

    /// Serves these environments of a project (`dev`, `staging`, `prod`, `preview`) as one worker
    /// pool, taking their runs in turn so that none starves another; the credential is then a
    /// personal access token (`tr_pat_…`) of the project, given as the secret key.
    pub fn environments<S: Into<String>>(mut self, environments: impl IntoIterator<Item = S>) -> Worker {
        self.settings.environments = Some(environments.into_iter().map(Into::into).collect());
        self
    }

    /// Registers with this build label. The server gives each distinct registration (label and
    /// tasks) a version `YYYYMMDD.N`, logged at start; runs lock to the version that first starts
    /// them, so a new label makes a new version even when the tasks are the same.
    pub fn version(mut self, version: impl Into<String>) -> Worker {
        self.settings.version = version.into();
        self
    }

    /// Runs at most `concurrency` attempts at once in this process.
    pub fn concurrency(mut self, concurrency: usize) -> Worker {
        self.settings.concurrency = concurrency;
        self
    }

    /// Lets attempts in progress run for up to `grace` once the worker is stopping; attempts
    /// still running then are stopped without completing, and the server retries them after
    /// their heartbeat timeout. Sending the last completions may take as long again.
    pub fn shutdown_grace(mut self, grace: Duration) -> Worker {
        self.settings.shutdown_grace = grace;
        self
    }

    /// Lets a dequeue call wait up to `wait` (at most 30 s) on the server for a run. A longer
    /// wait means fewer calls from an idle worker. It does not delay stopping: a stopping worker
    /// disconnects, and the server answers the call in flight at once. Only if the server cannot
    /// be told does the worker wait for that call, whose runs the server may already have
    /// started, up to the end of the wait or of the grace period.
    pub fn dequeue_wait(mut self, wait: Duration) -> Worker {
        self.settings.dequeue_wait = wait.min(MAX_DEQUEUE_WAIT);
        self
    }

    /// Offers this task.
    pub fn task(mut self, task: Task) -> Worker {
        self.tasks.push(task);
        self
    }

    /// Runs until SIGTERM or ctrl-c, then stops gracefully: it disconnects from the server, which
    /// answers its waiting dequeue call at once, so it takes no new runs (runs that call already
    /// took are executed like the others); attempts in progress finish within the
    /// [grace period](Worker::shutdown_grace); and their completions are sent. An idle worker
    /// whose server is reachable stops within a fraction of a second.
    ///
    /// Returns an error if the configuration is invalid or the server refuses the worker.
    /// While the server cannot be reached the worker keeps trying.
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(termination()).await
    }

    /// Like [`Worker::run`], but stops gracefully, in the same way, when `shutdown` completes
    /// instead of on a signal.
    ///
    /// Dropping the returned future instead stops everything at once: attempts in progress are
    /// stopped without completing and the dequeue call in flight is abandoned, so the server
    /// retries those runs after their heartbeat timeout.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        runtime::run(self.settings, self.tasks, shutdown).await
    }
}

/// Completes on SIGTERM or ctrl-c. If the handlers cannot be installed it never completes, so
/// the worker keeps running rather than stopping at once.
async fn termination() {
    let ctrl_c = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("received ctrl-c"),
            Err(error) => {
                tracing::error!(%error, "could not listen for ctrl-c");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signals) => {
                signals.recv().await;
                tracing::info!("received SIGTERM");
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn environment_sets_url_key_concurrency_and_version() {
        let worker = Worker::from_lookup(lookup(&[
            ("STINT_SECRET_KEY", "tr_dev_x"),
            ("STINT_API_URL", "http://server:1"),
            ("STINT_WORKER_CONCURRENCY", "25"),
            ("STINT_WORKER_VERSION", "2.0.0"),
        ]))
        .unwrap();
        assert_eq!(worker.settings.secret_key, "tr_dev_x");
        assert_eq!(worker.settings.api_url, "http://server:1");
        assert_eq!(worker.settings.concurrency, 25);
        assert_eq!(worker.settings.version, "2.0.0");
        let defaults = Worker::from_lookup(lookup(&[("STINT_SECRET_KEY", "tr_dev_x")])).unwrap();
        assert_eq!(defaults.settings.api_url, DEFAULT_API_URL);
        assert_eq!(defaults.settings.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(defaults.concurrency(50).settings.concurrency, 50);
    }

    #[test]
    fn a_pool_serves_the_environments_named_with_an_access_token() {
        let pool = Worker::from_lookup(lookup(&[
            ("STINT_WORKER_ENVIRONMENTS", "staging, prod"),
            ("STINT_ACCESS_TOKEN", "tr_pat_x"),
            ("STINT_SECRET_KEY", "tr_dev_x"),
        ]))
        .unwrap();
        assert_eq!(pool.settings.secret_key, "tr_pat_x");
        assert_eq!(pool.settings.environments, Some(vec!["staging".to_string(), "prod".to_string()]));
        let missing = Worker::from_lookup(lookup(&[("STINT_WORKER_ENVIRONMENTS", "prod")])).unwrap_err();
        assert!(missing.to_string().starts_with("STINT_ACCESS_TOKEN is not set"), "{missing}");
    }

    #[test]
    fn a_missing_key_or_bad_concurrency_is_a_clear_error() {
        let missing = Worker::from_lookup(lookup(&[("STINT_SECRET_KEY", " ")])).unwrap_err();
        assert!(missing.to_string().starts_with("STINT_SECRET_KEY is not set"), "{missing}");
        let bad =
            Worker::from_lookup(lookup(&[("STINT_SECRET_KEY", "k"), ("STINT_WORKER_CONCURRENCY", "0")])).unwrap_err();
        assert!(bad.to_string().contains("STINT_WORKER_CONCURRENCY"), "{bad}");
    }

    #[tokio::test]
    async fn invalid_configurations_are_refused_before_any_call() {
        async fn noop(_ctx: crate::TaskContext, _payload: serde_json::Value) -> Result<(), crate::TaskError> {
            Ok(())
        }
        // Port 9 (discard) is never served here, but neither error gets as far as a call.
        let worker = || Worker::new("http://127.0.0.1:9", "tr_dev_x").task(Task::new("a", noop));
        let duplicate = worker().task(Task::new("a", noop)).run_until(std::future::pending()).await;
        assert!(matches!(duplicate, Err(Error::Config(ref m)) if m.contains("\"a\"")));
        let zero = worker().concurrency(0).run_until(std::future::pending()).await;
        assert!(matches!(zero, Err(Error::Config(ref m)) if m.contains("concurrency")));
        let no_attempts = crate::Retry { max_attempts: 0, ..crate::Retry::default() };
        let bad_retry = worker().task(Task::new("b", noop).retry(no_attempts)).run_until(std::future::pending()).await;
        assert!(matches!(bad_retry, Err(Error::Config(ref m)) if m.contains("\"b\"") && m.contains("maxAttempts")));
    }

    #[tokio::test]
    async fn stopping_while_the_server_is_unreachable_returns_promptly() {
        let worker = Worker::new("http://127.0.0.1:9", "tr_dev_x");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(worker.run_until(async {
            let _ = stopped.await;
        }));
        stop.send(()).unwrap();
        assert!(running.await.unwrap().is_ok());
    }
}
