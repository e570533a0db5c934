//! What the black-box tests share: a server and workers in a temporary directory.

use std::path::PathBuf;

use stint_testkit::Api;
use stint_testkit::process::{PROD_KEY, ServerProcess, WorkerProcess};

/// A server on a fresh data directory, with a ledger path for its workers.
pub struct Stack {
    /// The server.
    pub server: ServerProcess,
    /// A client with the production key.
    pub api: Api,
    /// Where workers write their ledger.
    pub ledger: PathBuf,
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// Starts a server with extra flags.
    pub fn start(args: &[&str]) -> Stack {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = ServerProcess::start(&dir.path().join("data"), args);
        let api = Api::new(&server.url(), PROD_KEY);
        Stack { api, ledger: dir.path().join("ledger.jsonl"), server, dir }
    }

    /// Starts a `hello-worker` on the production environment.
    pub fn worker(&self, concurrency: u32) -> WorkerProcess {
        WorkerProcess::start(&self.server.url(), PROD_KEY, concurrency, &self.ledger)
    }

    /// The SQLite file.
    pub fn database(&self) -> PathBuf {
        self.dir.path().join("data").join("stint.db")
    }
}
