//! A `stint server` child process on a fresh data directory, for one workload.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// The production key bench servers are started with.
pub const KEY: &str = "tr_prod_benchbenchbenchbench01";

/// A server process that is killed when dropped, with its data directory.
pub struct BenchServer {
    child: Child,
    /// The server's base URL.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// Starts this binary's `server` on a new temporary data directory with `durability`.
    pub fn start(durability: &str) -> anyhow::Result<BenchServer> {
        let dir = tempfile::Builder::new().prefix("stint-bench-").tempdir().context("creating a data directory")?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", "--listen", "127.0.0.1:0", "--durability", durability, "--data-dir"])
            .arg(dir.path())
            .env("STINT_PROD_SECRET_KEY", KEY)
            .env("RUST_LOG", "warn")
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
    /// Runs not yet finished (queued or executing), counted up to 100.
    pub async fn unfinished(&self) -> anyhow::Result<usize> {
        let page: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/runs", self.url))
            .query(&[("filter[status]", "QUEUED,EXECUTING"), ("page[size]", "100")])
            .bearer_auth(KEY)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(page["data"].as_array().map_or(0, Vec::len))
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
