//! The worker's runtime: register, then take runs, run them, send heartbeats and completions
//! until asked to stop, then stop gracefully: disconnect so the server answers the dequeue call
//! in flight at once, let the attempts in progress finish within the grace period, and send the
//! last completions.
//!
//! Five kinds of tokio task share one [`Shared`]: the dequeue loop, one task per attempt, the
//! heartbeat loop, the completion flusher and the metadata flusher. Concurrency is a semaphore of slots: a dequeue call
//! holds the slots it asks runs for, each attempt holds one until its completion is queued.

pub(crate) mod api;
mod attempt;
pub(crate) mod backoff;
mod completions;
mod dequeue;
mod durable;
mod heartbeat;
mod metadata;
pub(crate) mod running;
pub(crate) mod session;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use stint_protocol::worker::RegisterRequest;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::Triggers;
use crate::task::Handler;
use crate::{Client, Task};
use completions::Completions;
use running::Running;
use session::Session;

/// Most slots the worker waits for after stopping the attempts left at the end of the grace
/// period; only an attempt blocking its thread takes longer to let go.
const STOPPED_ATTEMPTS_WAIT: Duration = Duration::from_secs(1);

/// How a worker runs, as configured on [`Worker`](crate::Worker).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) api_url: String,
    pub(crate) secret_key: String,
    pub(crate) version: String,
    pub(crate) concurrency: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) dequeue_wait: Duration,
    /// The environments a pool worker serves; `secret_key` is then a personal access token.
    pub(crate) environments: Option<Vec<String>>,
}

/// What the runtime's tasks share.
pub(crate) struct Shared {
    pub(crate) session: Session,
    pub(crate) tasks: HashMap<String, TaskEntry>,
    /// One permit per attempt that may run at once.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) running: Running,
    pub(crate) completions: Completions,
    /// The metadata of the attempts in progress, sent while they run.
    pub(crate) metadata: metadata::Flushes,
    /// How tasks trigger other runs.
    pub(crate) triggers: Triggers,
    pub(crate) dequeue_wait: Duration,
    /// Fires when the worker stops taking runs.
    pub(crate) stopping: CancellationToken,
    /// Fires when the worker gives up on calls still being retried.
    pub(crate) halt: CancellationToken,
    /// The first error that made the worker stop.
    failure: Mutex<Option<crate::Error>>,
}

/// A task's code and default maximum duration.
pub(crate) struct TaskEntry {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) max_duration: Option<Duration>,
}

impl Shared {
    /// The shared state of a worker that has not started anything yet.
    pub(crate) fn new(
        session: Session,
        tasks: HashMap<String, TaskEntry>,
        concurrency: usize,
        dequeue_wait: Duration,
        triggers: Triggers,
    ) -> Shared {
        Shared {
            session,
            tasks,
            slots: Arc::new(Semaphore::new(concurrency)),
            running: Running::default(),
            completions: Completions::default(),
            metadata: metadata::Flushes::default(),
            triggers,
            dequeue_wait,
            stopping: CancellationToken::new(),
            halt: CancellationToken::new(),
            failure: Mutex::new(None),
        }
    }

    /// Records an error that makes the worker stop, and starts stopping. The first error wins.
    pub(crate) fn fail(&self, error: crate::Error) {
        self.failure.lock().get_or_insert(error);
        self.stopping.cancel();
    }
}

/// Runs the worker until `shutdown` completes or the server refuses it, then stops gracefully.
pub(crate) async fn run(
    settings: Settings,
    tasks: Vec<Task>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::Error> {
    let concurrency =
        u32::try_from(settings.concurrency).ok().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(|| {
            crate::Error::Config(format!("concurrency must be 1 to 1000000, not {}", settings.concurrency))
        })?;
    let declarations: Vec<_> = tasks.iter().map(Task::declaration).collect();
    for declaration in &declarations {
        if let Some(retry) = &declaration.retry {
            retry
                .validate()
                .map_err(|reason| crate::Error::Config(format!("task \"{}\": {reason}", declaration.id)))?;
        }
    }
    let request = RegisterRequest {
        version: settings.version.clone(),
        sdk_version: Some(format!("stint-sdk {}", env!("CARGO_PKG_VERSION"))),
        tasks: declarations,
        environments: settings.environments.clone(),
    };
    let mut entries = HashMap::with_capacity(tasks.len());
    for task in tasks {
        let entry = TaskEntry { handler: task.handler, max_duration: task.max_duration };
        if entries.insert(task.id.clone(), entry).is_some() {
            return Err(crate::Error::Config(format!("two tasks have the identifier \"{}\"", task.id)));
        }
    }
    let api = api::Api::new(&settings.api_url, &settings.secret_key)?;
    let triggers = match &settings.environments {
        None => Triggers::Client(Client::from_api(api.clone())),
        Some(_) => Triggers::Unavailable(
            "a task of a worker pool cannot trigger runs: the pool holds a personal access token, and triggering \
             needs the secret key of the run's environment (run a worker with STINT_SECRET_KEY, or trigger with a \
             stint_sdk::Client made with that key)",
        ),
    };
    let session = Session::new(api, request);
    let shared = Arc::new(Shared::new(session, entries, settings.concurrency, settings.dequeue_wait, triggers));

    let shutdown = async {
        shutdown.await;
        tracing::info!("shutdown requested");
    };
    tokio::pin!(shutdown);
    tokio::select! {
        registered = shared.session.ensure_registered(0, &shared.stopping) => {
            if let Err(failure) = registered {
                return failure.into_error("register").map_or(Ok(()), Err);
            }
        }
        () = &mut shutdown => return Ok(()),
    }

    let flusher = tokio::spawn({
        let shared = Arc::clone(&shared);
        async move {
            if let Err(error) = completions::flush(&shared.completions, &shared.session, &shared.halt).await {
                shared.fail(error);
            }
        }
    });
    let heartbeats = tokio::spawn({
        let shared = Arc::clone(&shared);
        async move { heartbeat::heartbeat_loop(&shared).await }
    });
    let metadata = tokio::spawn({
        let shared = Arc::clone(&shared);
        async move { metadata::flush_loop(&shared).await }
    });
    let dequeuer = tokio::spawn(dequeue::dequeue_loop(Arc::clone(&shared)));
    let _abandon = Abandon {
        shared: Arc::clone(&shared),
        tasks: vec![
            flusher.abort_handle(),
            heartbeats.abort_handle(),
            metadata.abort_handle(),
            dequeuer.abort_handle(),
        ],
    };
    tokio::select! {
        () = &mut shutdown => shared.stopping.cancel(),
        () = shared.stopping.cancelled() => {}
    }

    // Disconnecting makes the server answer the dequeue call in flight now rather than at the end
    // of its wait. It matters only until the dequeue loop has ended, so the drain bounds it.
    let drained = drain(&shared, dequeuer, concurrency, settings.shutdown_grace);
    tokio::pin!(drained);
    tokio::select! {
        () = &mut drained => {}
        () = dequeue::disconnect(&shared) => drained.await,
    }
    // Heartbeats go on while the last completions are sent, so their runs do not stall meanwhile.
    // Every attempt has ended, so its last metadata changes went with its completion.
    metadata.abort();
    flush_remaining(&shared, flusher, settings.shutdown_grace).await;
    heartbeats.abort();
    tracing::info!("worker stopped");
    shared.failure.lock().take().map_or(Ok(()), Err)
}

/// Stops everything the runtime spawned when the future of [`run`] is dropped before it returns,
/// so a caller that gives up on a worker (a test's timeout, say) does not leave it running.
/// After a normal return everything has stopped already and this changes nothing.
struct Abandon {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        self.shared.stopping.cancel();
        self.shared.halt.cancel();
        self.shared.running.stop_all();
        self.tasks.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

/// Lets the dequeue call in flight (answered at once after a disconnect) and the attempts in
/// progress, including any that call brought, finish within `grace`, then stops whatever is left
/// without completing it: the server retries those runs once their heartbeats stop.
async fn drain(shared: &Shared, mut dequeuer: tokio::task::JoinHandle<()>, concurrency: u32, grace: Duration) {
    let deadline = Instant::now() + grace;
    tracing::info!(grace = ?grace, "stopped taking runs; waiting for attempts in progress");
    let drained = tokio::time::timeout_at(deadline, async {
        if let Err(error) = (&mut dequeuer).await {
            tracing::error!(%error, "the dequeue loop failed");
        }
        // Every slot back means no dequeue call in flight and no attempt running.
        shared.slots.acquire_many(concurrency).await.map(drop)
    });
    if drained.await.is_ok() {
        return;
    }
    dequeuer.abort();
    let stopped = shared.running.stop_all();
    tracing::warn!(stopped, "grace period over; attempts still running were stopped without completing");
    // Stopped attempts let go of their slots when next polled. Waiting for that also waits for
    // attempts that finished just before the stop and are queueing their completions.
    if tokio::time::timeout(STOPPED_ATTEMPTS_WAIT, shared.slots.acquire_many(concurrency)).await.is_err() {
        tracing::warn!("some attempts did not stop; a task may be blocking its thread");
    }
}

/// Sends the completions still queued, giving up after `grace` if the server cannot be reached.
async fn flush_remaining(shared: &Shared, mut flusher: tokio::task::JoinHandle<()>, grace: Duration) {
    shared.completions.close();
    if tokio::time::timeout(grace, &mut flusher).await.is_ok() {
        return;
    }
    shared.halt.cancel();
    flusher.abort();
    tracing::error!(
        queued = shared.completions.len(),
        "could not send all completions before the grace period ended; the server retries those runs after their heartbeat timeout"
    );
}
