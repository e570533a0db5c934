//! PostgreSQL for black-box tests: a fresh database on the test server, or a private cluster a
//! test can stop and start.
//!
//! The test server is the one at `STINT_TEST_POSTGRES_URL`, by default the machine's own on
//! `127.0.0.1:5432`; tests that need it fail, naming it, when it cannot be reached. Databases are
//! made and dropped with `psql`; private clusters with PostgreSQL's `initdb` and `pg_ctl`, run as
//! the `postgres` user when the tests run as root (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The server PostgreSQL tests use.
pub fn admin_url() -> String {
    std::env::var("STINT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether the black-box tests should run their servers on PostgreSQL (`STINT_E2E_POSTGRES=1`)
/// rather than SQLite.
pub fn e2e_on_postgres() -> bool {
    std::env::var("STINT_E2E_POSTGRES").is_ok_and(|v| v == "1")
}

/// A database of its own on the test server, dropped when this is dropped.
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database with a random name.
    pub fn create() -> TestDatabase {
        let admin = admin_url();
        let name = format!("stint_e2e_{:016x}", random());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = stint_store_postgres::admin::database_url(&admin, &name);
        TestDatabase { admin, name, url }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A PostgreSQL server of the test's own, in a temporary directory on a free port, so the test
/// can stop and start it. Stopped and removed when dropped.
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    _temp: tempfile::TempDir,
}

impl Cluster {
    /// Creates and starts a cluster.
    pub fn start() -> Cluster {
        let temp = tempfile::Builder::new().prefix("stint-pg-").tempdir().expect("temporary directory");
        let dir = temp.path().join("data");
        let port = free_port();
        let owner = as_postgres();
        if owner.is_some() {
            let status = Command::new("chown").arg("-R").arg("postgres:postgres").arg(temp.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "could not give the cluster directory to postgres");
        }
        run_as(owner, &bin("initdb"), &["-D", path(&dir), "-U", "postgres", "-A", "trust", "--no-sync"]);
        let cluster = Cluster { dir, port, _temp: temp };
        cluster.up();
        cluster
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or an outage would (`pg_ctl stop -m immediate`).
    pub fn down(&self) {
        run_as(as_postgres(), &bin("pg_ctl"), &["-D", path(&self.dir), "-m", "immediate", "-w", "stop"]);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, path(&self.dir));
        run_as(
            as_postgres(),
            &bin("pg_ctl"),
            &["-D", path(&self.dir), "-o", &options, "-l", path(&self.dir.join("log")), "-w", "start"],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the test cluster on port {} did not start", self.port);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = command_as(as_postgres(), &bin("pg_ctl"))
            .args(["-D", path(&self.dir), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs SQL on `url`, panicking with psql's message when it fails.
fn psql(url: &str, sql: &str) {
    let output = Command::new("psql")
        .arg(url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("running psql (the PostgreSQL client) for the tests");
    assert!(
        output.status.success(),
        "`{sql}` failed on the PostgreSQL test server {url} (set STINT_TEST_POSTGRES_URL to use another): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The user to run PostgreSQL's programs as: `postgres` when the tests run as root.
fn as_postgres() -> Option<&'static str> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    root.then_some("postgres")
}

/// A command running `program`, as `user` when one is given.
fn command_as(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn run_as(user: Option<&str>, program: &Path, args: &[&str]) {
    let output =
        command_as(user, program).args(args).output().unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A PostgreSQL server program: from the newest installed version's directory, or the PATH.
fn bin(name: &str) -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    let newest = versions.into_iter().filter(|p| p.join("bin").join(name).exists()).max();
    newest.map_or_else(|| PathBuf::from(name), |dir| dir.join("bin").join(name))
}

fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A number no other call in any test process is likely to get: the time, the process and a
/// counter.
fn random() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (nanos as u64) ^ (u64::from(std::process::id()) << 40) ^ count.rotate_left(20)
}
