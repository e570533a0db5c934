//! A `stint server` child process on a fresh data directory, for one workload.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// The production key bench servers are started with.
pub const KEY: &str = "tr_prod_benchbenchbenchbench01";
/// The staging key bench servers are started with: a second tenant's environment.
pub const STAGING_KEY: &str = "tr_stg_benchbenchbenchbench01";
/// The admin token bench servers are started with.
const ADMIN_TOKEN: &str = "stint_admin_benchbenchbenchbenchbenchbench01";

/// Where a workload's servers keep their runs.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A SQLite file with this durability (`full` or `normal`).
    Sqlite(&'static str),
    /// This PostgreSQL database.
    Postgres(String),
}

impl Storage {
    /// The storage as the results name it.
    pub fn describe(&self) -> String {
        match self {
            Storage::Sqlite(durability) => format!("SQLite, durability {durability}"),
            Storage::Postgres(_) => "PostgreSQL".into(),
        }
    }
}

/// A PostgreSQL database made for one workload, dropped afterwards.
pub struct FreshDatabase {
    admin: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl FreshDatabase {
    /// Creates an empty database on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> anyhow::Result<FreshDatabase> {
        let name = format!("stint_bench_{:016x}", rand_suffix());
        let url = stint_store_postgres::admin::create_database(admin_url, &name).await?;
        Ok(FreshDatabase { admin: admin_url.to_string(), name, url })
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop cannot wait on the runtime it may run in: a thread of its own does the work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(stint_store_postgres::admin::drop_database(&admin, &name)).map_err(anyhow::Error::from)
        });
        if let Ok(Err(error)) = dropped.join() {
            eprintln!("could not drop the bench database {}: {error}", self.name);
        }
    }
}

fn rand_suffix() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// A server process that is killed when dropped, with its data directory.
pub struct BenchServer {
    child: Child,
    /// The server's base URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// Starts this binary's `server` on a new temporary data directory, keeping its runs in
    /// `storage`.
    pub fn start(storage: &Storage) -> anyhow::Result<BenchServer> {
        let dir = tempfile::Builder::new().prefix("stint-bench-").tempdir().context("creating a data directory")?;
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["server", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path());
        // The workloads measure how fast the server goes, so the API is not rate limited: the
        // default limit would answer most of W1's and W2's triggers with 429.
        command.args(["--api-rate-limit", "off"]);
        match storage {
            Storage::Sqlite(durability) => command.args(["--durability", durability]),
            Storage::Postgres(url) => command.args(["--database-url", url]),
        };
        let mut child = command
            .env("STINT_PROD_SECRET_KEY", KEY)
            .env("STINT_STAGING_SECRET_KEY", STAGING_KEY)
            .env("STINT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", super::child_log())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting stint server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Stint is listening on ") {
                    let _ = address_tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                }
            }
        });
        let Ok(url) = address_rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            bail!("the bench server did not start");
        };
        Ok(BenchServer { child, url, _dir: dir })
    }
}

impl BenchServer {
    /// Runs not yet finished (queued, executing or waiting) in the environments the bench triggers in,
    /// counted up to 100 each.
    pub async fn unfinished(&self) -> anyhow::Result<usize> {
        let mut unfinished = 0;
        for key in [KEY, STAGING_KEY] {
            let query = [("filter[status]", "DELAYED,QUEUED,EXECUTING,WAITING"), ("page[size]", "100")];
            let page = self.runs_page(key, &query).await?;
            unfinished += page["data"].as_array().map_or(0, Vec::len);
        }
        Ok(unfinished)
    }

    /// A page of `GET /api/v1/runs` in the environment of `key`.
    pub async fn runs_page(&self, key: &str, query: &[(&str, &str)]) -> anyhow::Result<serde_json::Value> {
        Ok(reqwest::Client::new()
            .get(format!("{}/api/v1/runs", self.url))
            .query(query)
            .bearer_auth(key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Runs waiting in `task`'s queue of the environment of `key`, from
    /// `GET /api/v1/queues/{task}?type=task`; `None` while the server does not know that queue
    /// (404).
    pub async fn queued(&self, task: &str, key: &str) -> anyhow::Result<Option<u64>> {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/queues/{task}", self.url))
            .query(&[("type", "task")])
            .bearer_auth(key)
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let queue: serde_json::Value = response.error_for_status()?.json().await?;
        queue["queued"].as_u64().map(Some).context("the queue has no number 'queued'")
    }

    /// A new personal access token of the default project, made through the admin API: the
    /// credential of a worker pool serving several of its environments.
    pub async fn access_token(&self) -> anyhow::Result<String> {
        let client = reqwest::Client::new();
        let projects: serde_json::Value = client
            .get(format!("{}/api/v1/admin/projects", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let reference = projects["data"][0]["ref"]
            .as_str()
            .or_else(|| projects[0]["ref"].as_str())
            .context("the admin API listed no project")?
            .to_string();
        let token: serde_json::Value = client
            .post(format!("{}/api/v1/admin/projects/{reference}/tokens", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"name": "bench"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(token["token"].as_str().context("the admin API made no token")?.to_string())
    }

    /// Waits until every run has finished.
    pub async fn wait_until_drained(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while self.unfinished().await? > 0 {
            anyhow::ensure!(std::time::Instant::now() < deadline, "runs still unfinished after 300 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
