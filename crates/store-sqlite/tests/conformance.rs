//! The conformance suite against SQLite files in temporary directories.

use std::sync::Arc;

use stint_store::{BoxFuture, Error, Job, Store};
use stint_store_conformance::conformance_tests;
use stint_store_sqlite::{Options, SqliteStore};

/// A store and the directory of its file, removed when the store is dropped.
struct InTempDir {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Store for InTempDir {
    fn write_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        self.store.write_job(job)
    }

    fn read_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>> {
        self.store.read_job(job)
    }
}

async fn fresh() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&Options::new(dir.path().join("stint.db"))).expect("open store");
    Arc::new(InTempDir { store, _dir: dir })
}

conformance_tests!(fresh());
