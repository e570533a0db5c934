//! A pool of read-only connections. WAL mode lets them read while the writer commits.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;
use stint_store::{Error, Job};
use tokio::sync::Semaphore;

use crate::codec::map_error;
use crate::tx::SqliteTx;

/// Read-only connections, each used by one job at a time on a blocking thread.
pub(crate) struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Semaphore,
}

impl Readers {
    pub(crate) fn new(connections: Vec<Connection>) -> Readers {
        let permits = Semaphore::new(connections.len());
        Readers { idle: Arc::new(Mutex::new(connections)), permits }
    }

    /// Runs a job in a read transaction on an idle connection.
    pub(crate) async fn run(&self, job: Job) -> Result<(), Error> {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Closed)?;
        let mut connection = self.idle.lock().pop().ok_or(Error::Closed)?;
        let idle = self.idle.clone();
        let task = tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| read(&mut connection, job)))
                .unwrap_or_else(|_| Err(Error::Unavailable("a read job panicked".into())));
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            idle.lock().push(connection);
            outcome
        });
        task.await.map_err(|_| Error::Unavailable("a read job panicked".into()))?
    }
}

fn read(connection: &mut Connection, job: Job) -> Result<(), Error> {
    connection.execute_batch("BEGIN").map_err(map_error)?;
    let outcome = {
        let mut tx = SqliteTx::new(connection);
        futures::executor::block_on(job(&mut tx))
    };
    connection.execute_batch("COMMIT").map_err(map_error)?;
    outcome
}
