//! A pool of read-only connections. WAL mode lets them read while the writer commits.

use std::panic::AssertUnwindSafe;

use parking_lot::Mutex;
use rusqlite::Connection;
use stint_store::{Error, Job};
use tokio::sync::Semaphore;

use crate::codec::map_error;
use crate::tx::SqliteTx;

/// Read-only connections, each used by one job at a time. A job runs on its caller's thread:
/// reads are short, and handing them to another thread would cost more than they take.
pub(crate) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Readers {
    pub(crate) fn new(connections: Vec<Connection>) -> Readers {
        let permits = Semaphore::new(connections.len());
        Readers { idle: Mutex::new(connections), permits }
    }

    /// Runs a job in a read transaction on an idle connection.
    pub(crate) async fn run(&self, job: Job) -> Result<(), Error> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Closed)?;
        let mut connection = self.idle.lock().pop().ok_or(Error::Closed)?;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| read(&mut connection, job)))
            .unwrap_or_else(|_| Err(Error::Unavailable("a read job panicked".into())));
        if !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        self.idle.lock().push(connection);
        outcome
    }
}

fn read(connection: &mut Connection, job: Job) -> Result<(), Error> {
    connection.prepare_cached("BEGIN").and_then(|mut s| s.execute([])).map_err(map_error)?;
    let outcome = {
        let mut tx = SqliteTx::new(connection);
        futures::executor::block_on(job(&mut tx))
    };
    connection.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).map_err(map_error)?;
    outcome
}
