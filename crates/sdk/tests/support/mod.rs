//! The real Stint server, started in-process for each test on its own temporary data directory and
//! port with a known key, and a record of the SDK's log events, which is how a test sees what a
//! worker is doing without a fake server.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use stint_sdk::Worker;
use stint_sdk::protocol::types::EnvironmentType;
use stint_server::{Config, Server};
use stint_testkit::Api;
use tokio::sync::oneshot;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// The production key every test server accepts. Production, because there a stalled attempt is
/// retried like a failed one; in development it ends the run `CANCELED`, as in Trigger.dev.
pub const KEY: &str = "tr_prod_sdktestsdktestsdktest01";
/// Keys of the other default environments, given so the server generates and prints none.
const OTHER_KEYS: [(EnvironmentType, &str); 2] = [
    (EnvironmentType::Development, "tr_dev_sdktestsdktestsdktest01"),
    (EnvironmentType::Staging, "tr_stg_sdktestsdktestsdktest01"),
];
/// How long a test waits for a run or a log event before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A server serving in the background until stopped or dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// A client of the public API with [`KEY`].
    pub api: Api,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), stint_server::Error>>,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the settings of [`TestServer::start_with`].
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server on a free port of 127.0.0.1 whose attempts stall after 2 s without a heartbeat,
    /// so it asks workers for a heartbeat every 500 ms and a cancel reaches them that quickly,
    /// with a stall sweep every 100 ms; `adjust` changes these settings before it starts.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        TestServer::start_on(dir, SocketAddr::from(([127, 0, 0, 1], 0)), adjust).await
    }

    /// A server on the data directory `dir`, listening on `listen`, with the settings of
    /// [`TestServer::start_with`].
    async fn start_on(dir: tempfile::TempDir, listen: SocketAddr, adjust: impl FnOnce(&mut Config)) -> TestServer {
        install_recorder();
        let mut config = Config::new(dir.path());
        config.listen = listen;
        config.initial_keys = std::iter::once((EnvironmentType::Production, KEY))
            .chain(OTHER_KEYS)
            .map(|(kind, key)| (kind, key.to_string()))
            .collect();
        config.engine.timeouts.executing = Duration::from_secs(2);
        config.sweep_interval = Duration::from_millis(100);
        adjust(&mut config);
        let server = Server::start(config).await.expect("the server starts");
        let address = server.local_addr();
        let url = format!("http://{address}");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer { api: Api::new(&url, KEY), url, address, stop, serving, dir }
    }

    /// A worker of this server with [`KEY`] and no tasks.
    pub fn worker(&self) -> Worker {
        Worker::new(&self.url, KEY)
    }

    /// Stops serving and waits until the port is closed. The data directory lives on in the
    /// answer, which can start the server again on it and on the same address.
    pub async fn stop(self) -> StoppedServer {
        let _ = self.stop.send(());
        self.serving.await.expect("the server task").expect("the server stops cleanly");
        StoppedServer { address: self.address, dir: self.dir }
    }

    /// Triggers `task` with `payload`; returns the run id.
    pub async fn trigger(&self, task: &str, payload: Value) -> String {
        self.api.trigger(task, payload).await.unwrap_or_else(|error| panic!("triggering {task}: {error}"))
    }

    /// The run as `GET /api/v3/runs/{id}` shows it now.
    pub async fn run(&self, id: &str) -> Value {
        self.api.run(id).await.unwrap_or_else(|error| panic!("reading run {id}: {error}"))
    }

    /// Polls the run until its status is `status`, failing the test after [`PATIENCE`].
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        self.api.wait_until(id, PATIENCE, |run| run["status"] == status).await
    }

    /// Polls the run until it has ended, failing the test after [`PATIENCE`].
    pub async fn wait_finished(&self, id: &str) -> Value {
        self.api.wait_finished(id, PATIENCE).await
    }
}

/// The data directory and address of a stopped [`TestServer`]; dropping it deletes the data.
pub struct StoppedServer {
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl StoppedServer {
    /// Starts the server again on its data directory and address, with the settings of
    /// [`TestServer::start_with`] changed by `adjust`: runs, workers and keys are as they were.
    pub async fn start_with(self, adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_on(self.dir, self.address, adjust).await
    }
}

/// A free port of 127.0.0.1, closed again, for a server to be started on later.
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address")
}

/// The messages of the SDK's log events on this thread while it lives. A `#[tokio::test]` runs
/// the worker's tasks on the test's thread, so this sees all of them.
pub struct Logs {
    messages: Arc<Mutex<Vec<String>>>,
}

thread_local! {
    /// Where the recorder puts the events of this thread, if anywhere.
    static CAPTURE: RefCell<Option<Arc<Mutex<Vec<String>>>>> = const { RefCell::new(None) };
}

impl Logs {
    /// Starts recording.
    pub fn capture() -> Logs {
        install_recorder();
        let messages = Arc::new(Mutex::new(Vec::new()));
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(Arc::clone(&messages)));
        Logs { messages }
    }

    /// Polls until an event whose message contains `text` was logged, failing the test after
    /// [`PATIENCE`].
    pub async fn wait_for(&self, text: &str) {
        self.wait_for_all(&[text]).await;
    }

    /// Polls until an event whose message contains each of `texts` was logged, failing the test
    /// after [`PATIENCE`].
    pub async fn wait_for_all(&self, texts: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        let logged = |message: &String| texts.iter().all(|text| message.contains(text));
        while !self.messages.lock().iter().any(logged) {
            assert!(
                Instant::now() < deadline,
                "no log event containing all of {texts:?} within {PATIENCE:?}; logged: {:#?}",
                self.messages.lock()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        CAPTURE.with(|capture| *capture.borrow_mut() = None);
    }
}

/// Installs the recorder as the process's subscriber, once. Every test calls this before anything
/// logs: a subscriber per test (`set_default`) would not do, because tracing caches whether an
/// event is wanted per call site for all threads, and a call site first reached on a thread
/// without that subscriber is then skipped on every thread.
fn install_recorder() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder))
            .expect("no other subscriber in the SDK's tests");
    });
}

/// Keeps the message of each event of the SDK, for the thread's [`Logs`] if it has one.
struct Recorder;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("stint_sdk") {
            return;
        }
        let Some(messages) = CAPTURE.with(|capture| capture.borrow().clone()) else { return };
        let mut message = Message(String::new());
        event.record(&mut message);
        messages.lock().push(message.0);
    }
}

/// An event's fields as text: values of fields named `message` (the format string's, and any
/// field the event itself calls so) as they are, others as `name=value`.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push_str("; ");
        }
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
}
