//! What the black-box tests share: a server and workers in a temporary directory.

use std::path::PathBuf;

use stint_testkit::Api;
use stint_testkit::postgres::{TestDatabase, e2e_on_postgres};
use stint_testkit::process::{Backend, PROD_KEY, ServerProcess, WorkerProcess};

/// A server on a fresh data directory, with a ledger path for its workers. With
/// `STINT_E2E_POSTGRES=1` the server keeps its runs in a fresh PostgreSQL database instead of
/// SQLite, so the same tests check both.
pub struct Stack {
    /// The server.
    pub server: ServerProcess,
    /// The PostgreSQL database, when the tests run on PostgreSQL.
    pub postgres: Option<TestDatabase>,
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
        let postgres = e2e_on_postgres().then(TestDatabase::create);
        let backend = postgres.as_ref().map_or(Backend::Sqlite, |db| Backend::Postgres(db.url()));
        let server = ServerProcess::start_on(backend, &dir.path().join("data"), args);
        let api = Api::new(&server.url(), PROD_KEY);
        Stack { api, ledger: dir.path().join("ledger.jsonl"), server, postgres, dir }
    }

    /// Starts a `hello-worker` on the production environment.
    pub fn worker(&self, concurrency: u32) -> WorkerProcess {
        WorkerProcess::start(&self.server.url(), PROD_KEY, concurrency, &self.ledger)
    }

    /// The SQLite file, when the server keeps its runs in one.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        self.postgres.is_none().then(|| self.dir.path().join("data").join("stint.db"))
    }
}
