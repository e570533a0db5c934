//! The built binaries as child processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Keys every test server is started with, so tests know them without reading files.
pub const DEV_KEY: &str = "tr_dev_e2etestkeye2etestkey01";
/// The production key of test servers.
pub const PROD_KEY: &str = "tr_prod_e2etestkeye2etestkey0";
/// The admin token test servers are started with.
pub const ADMIN_TOKEN: &str = "stint_admin_e2etestadmintokene2etestadmin012";

/// Paths of the built binaries, building them once per test process with the same cargo and
/// profile as the tests.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        // Test executables live in <target>/<profile>/deps.
        let profile_dir = exe.parent().and_then(Path::parent).expect("target profile directory").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "stint-cli", "-p", "hello-worker"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build for the binaries");
        assert!(status.success(), "building stint and hello-worker failed");
        profile_dir
    });
    dir.join(name)
}

/// A `stint server` child process on a data directory.
pub struct ServerProcess {
    child: Option<Child>,
    data_dir: PathBuf,
    address: String,
    args: Vec<String>,
}

/// Where a test server keeps its runs.
#[derive(Debug, Clone, Copy)]
pub enum Backend<'a> {
    /// The SQLite file in the data directory.
    Sqlite,
    /// This PostgreSQL database.
    Postgres(&'a str),
}

impl ServerProcess {
    /// Starts a server on `data_dir` on a free port with the test keys and `args` (extra flags),
    /// and waits until it listens.
    pub fn start(data_dir: &Path, args: &[&str]) -> ServerProcess {
        ServerProcess::start_on(Backend::Sqlite, data_dir, args)
    }

    /// [`ServerProcess::start`] with its runs in `backend`.
    pub fn start_on(backend: Backend<'_>, data_dir: &Path, args: &[&str]) -> ServerProcess {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if let Backend::Postgres(url) = backend {
            args.extend(["--database-url".to_string(), url.to_string(), "--pool-size".into(), "8".into()]);
        }
        let mut server =
            ServerProcess { child: None, data_dir: data_dir.to_path_buf(), address: "127.0.0.1:0".into(), args };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("server.log"))
            .or_else(|_| {
                std::fs::create_dir_all(&self.data_dir)?;
                std::fs::OpenOptions::new().create(true).append(true).open(self.data_dir.join("server.log"))
            })
            .expect("server log file");
        let mut child = Command::new(binary("stint"))
            .arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(&self.address)
            .args(&self.args)
            .env("STINT_DEV_SECRET_KEY", DEV_KEY)
            .env("STINT_PROD_SECRET_KEY", PROD_KEY)
            .env("STINT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "info")
            // The end-to-end tests trigger thousands of runs as fast as they can; the API rate
            // limit has tests of its own.
            .env("STINT_API_RATE_LIMIT", "off")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting stint server");
        let stdout = child.stdout.take().expect("server stdout");
        let (found, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("Stint is listening on http://") {
                    let address = address.split_whitespace().next().unwrap_or_default().to_string();
                    if let Some(found) = found.take() {
                        let _ = found.send(address);
                    }
                }
            }
        });
        let address = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start; see {}", self.data_dir.join("server.log").display()));
        self.address = address;
        self.child = Some(child);
    }

    /// The server's log (its standard error), appended to across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// Kills the server with `SIGKILL` and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with `SIGTERM` and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running server");
        signal(child.id(), Signal::SIGTERM);
        wait_with_deadline(&mut child, Duration::from_secs(30))
    }

    /// Starts the server again on the same data directory and address.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        self.spawn();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `hello-worker` child process.
pub struct WorkerProcess {
    child: Option<Child>,
}

impl WorkerProcess {
    /// Starts the example worker against `url` with `key`, `concurrency` attempts at once, writing
    /// its ledger to `ledger`.
    pub fn start(url: &str, key: &str, concurrency: u32, ledger: &Path) -> WorkerProcess {
        WorkerProcess::start_with(url, &[("STINT_SECRET_KEY", key)], concurrency, ledger)
    }

    /// Starts the example worker as a pool serving `environments` (`dev,prod`) of the project of
    /// the personal access token `token`.
    pub fn start_pool(url: &str, token: &str, environments: &str, concurrency: u32, ledger: &Path) -> WorkerProcess {
        let credentials = [("STINT_ACCESS_TOKEN", token), ("STINT_WORKER_ENVIRONMENTS", environments)];
        WorkerProcess::start_with(url, &credentials, concurrency, ledger)
    }

    fn start_with(url: &str, credentials: &[(&str, &str)], concurrency: u32, ledger: &Path) -> WorkerProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ledger.with_extension("log"))
            .expect("worker log file");
        let child = Command::new(binary("hello-worker"))
            .env("STINT_API_URL", url)
            .envs(credentials.iter().copied())
            .env("STINT_WORKER_CONCURRENCY", concurrency.to_string())
            .env("STINT_LEDGER", ledger)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting hello-worker");
        WorkerProcess { child: Some(child) }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running worker").id()
    }

    /// Kills the worker with `SIGKILL`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the worker with `SIGTERM` and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a running worker");
        signal(child.id(), Signal::SIGTERM);
        wait_with_deadline(&mut child, Duration::from_secs(60))
    }

    /// Freezes the worker (`SIGSTOP`).
    pub fn pause(&self) {
        signal(self.pid(), Signal::SIGSTOP);
    }

    /// Thaws the worker (`SIGCONT`).
    pub fn resume(&self) {
        signal(self.pid(), Signal::SIGCONT);
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), Signal::SIGCONT);
        }
        self.kill();
    }
}

fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
    let _ = kill(pid, signal);
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
