//! Starting bench worker processes and reading what they recorded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::server::KEY;
use super::worker::Record;

/// A `stint bench-worker` child process.
pub struct BenchWorker {
    child: Child,
    out: PathBuf,
}

impl BenchWorker {
    /// Starts a worker against `url` with `concurrency`, stopping by itself after `exit_after`
    /// executions when given; it records into a file in `dir` (one directory per worker).
    pub fn start(url: &str, concurrency: usize, exit_after: Option<usize>, dir: &Path) -> anyhow::Result<BenchWorker> {
        BenchWorker::start_as(url, KEY, None, concurrency, exit_after, dir)
    }

    /// Starts a worker as [`BenchWorker::start`] does, in the environment of the secret key `key`.
    pub fn start_with_key(url: &str, key: &str, concurrency: usize, dir: &Path) -> anyhow::Result<BenchWorker> {
        BenchWorker::start_as(url, key, None, concurrency, None, dir)
    }

    /// Starts a worker pool serving `environments` (slugs, comma-separated) with the personal
    /// access token `token`.
    pub fn start_pool(
        url: &str,
        token: &str,
        environments: &str,
        concurrency: usize,
        dir: &Path,
    ) -> anyhow::Result<BenchWorker> {
        BenchWorker::start_as(url, token, Some(environments), concurrency, None, dir)
    }

    fn start_as(
        url: &str,
        credential: &str,
        environments: Option<&str>,
        concurrency: usize,
        exit_after: Option<usize>,
        dir: &Path,
    ) -> anyhow::Result<BenchWorker> {
        std::fs::create_dir_all(dir)?;
        let out = dir.join("records.json");
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["bench-worker", "--api-url", url, "--secret-key", credential, "--concurrency"])
            .arg(concurrency.to_string())
            .arg("--out")
            .arg(&out)
            .env("RUST_LOG", super::child_log())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(environments) = environments {
            command.args(["--environments", environments]);
        }
        if let Some(n) = exit_after {
            command.arg("--exit-after").arg(n.to_string());
        }
        let child = command.spawn().context("starting stint bench-worker")?;
        Ok(BenchWorker { child, out })
    }

    /// Waits for the worker to exit by itself and returns its records.
    pub fn wait(mut self) -> anyhow::Result<Vec<Record>> {
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "the bench worker failed: {status}");
        read(&self.out)
    }

    /// Where the worker writes what its `durable` task recorded.
    pub fn durable_out(&self) -> PathBuf {
        super::durable::path_beside(&self.out)
    }

    /// Stops the worker with SIGTERM and returns its records.
    pub fn stop(self) -> anyhow::Result<Vec<Record>> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        self.wait()
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<Record>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}
