//! The single writer: one connection, used by one caller at a time, committing groups of jobs.
//!
//! A job is queued, then its caller tries to take the connection. The caller that gets it (the
//! leader) runs every queued job, each in its own savepoint inside one transaction, commits once,
//! and only then answers every job. Callers that do not get the connection wait for their
//! answer: a leader always looks at the queue again after letting the connection go, so no job
//! is left behind. Under load many jobs share one commit, and so one disk sync; alone, a caller
//! runs its own job on its own thread without handing it to another thread and back.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;
use stint_store::{Error, Job};
use tokio::sync::oneshot;

use crate::checkpointer::{self, Commits};
use crate::codec::map_error;
use crate::tx::SqliteTx;

/// Most jobs in one commit. Bounds the latency one commit adds to the jobs behind it.
const MAX_GROUP: usize = 512;
/// Groups one leader commits before handing the rest of the queue to a task of its own, so a
/// caller is not kept from its answer by a steady stream of other callers' jobs.
const GROUPS_PER_LEADER: usize = 4;

/// A job and where to send its outcome.
struct Request {
    job: Job,
    done: oneshot::Sender<Result<(), Error>>,
}

/// The writing connection and the jobs waiting for it.
pub(crate) struct Writer {
    connection: Mutex<Connection>,
    queue: Mutex<VecDeque<Request>>,
    /// Told of each commit, for the checkpoint thread.
    commits: Arc<Commits>,
}

impl Writer {
    pub(crate) fn new(connection: Connection, commits: Arc<Commits>) -> Arc<Writer> {
        Arc::new(Writer { connection: Mutex::new(connection), queue: Mutex::new(VecDeque::new()), commits })
    }

    /// Runs a job; resolves after the commit that contains it.
    pub(crate) async fn submit(self: &Arc<Self>, job: Job) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        self.queue.lock().push_back(Request { job, done });
        self.lead(GROUPS_PER_LEADER);
        answer.await.unwrap_or(Err(Error::Closed))
    }

    /// Commits queued jobs while the connection is free and jobs are waiting, at most `groups`
    /// groups; what is left then goes to a task of its own.
    fn lead(self: &Arc<Self>, groups: usize) {
        for _ in 0..groups {
            {
                let Some(mut connection) = self.connection.try_lock() else {
                    // The holder looks at the queue again once it lets go.
                    return;
                };
                let group: Vec<Request> = {
                    let mut queue = self.queue.lock();
                    let n = queue.len().min(MAX_GROUP);
                    queue.drain(..n).collect()
                };
                if !group.is_empty() && commit_group(&mut connection, group) {
                    self.commits.committed();
                }
            }
            if self.queue.lock().is_empty() {
                return;
            }
        }
        let writer = self.clone();
        tokio::spawn(async move { writer.lead(usize::MAX) });
    }
}

/// Runs a transaction-control statement, prepared once per connection.
fn control(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs a group of jobs in one transaction and answers them; returns whether it committed.
fn commit_group(connection: &mut Connection, group: Vec<Request>) -> bool {
    if let Err(error) = control(connection, "BEGIN IMMEDIATE") {
        let error = map_error(error);
        for request in group {
            let _ = request.done.send(Err(error.clone()));
        }
        return false;
    }
    // A job alone needs no savepoint: if it fails, the whole transaction is rolled back.
    let alone = group.len() == 1;
    let mut outcomes = Vec::with_capacity(group.len());
    let mut senders = Vec::with_capacity(group.len());
    for request in group {
        outcomes.push(if alone { run(connection, request.job) } else { run_in_savepoint(connection, request.job) });
        senders.push(request.done);
    }
    if alone && outcomes[0].is_err() {
        let _ = control(connection, "ROLLBACK");
        let _ = senders.pop().map(|done| done.send(outcomes.pop().expect("one outcome")));
        return false;
    }
    checkpointer::before_commit();
    match control(connection, "COMMIT") {
        Ok(()) => {
            for (done, outcome) in senders.into_iter().zip(outcomes) {
                let _ = done.send(outcome);
            }
            true
        }
        Err(error) => {
            tracing::error!(%error, "commit failed; rolling back the group");
            let _ = control(connection, "ROLLBACK");
            let error = map_error(error);
            for done in senders {
                let _ = done.send(Err(error.clone()));
            }
            false
        }
    }
}

/// Runs one job in a savepoint, keeping its writes if it succeeds and undoing them if not.
fn run_in_savepoint(connection: &mut Connection, job: Job) -> Result<(), Error> {
    control(connection, "SAVEPOINT job").map_err(map_error)?;
    let outcome = run(connection, job);
    if outcome.is_err() {
        control(connection, "ROLLBACK TO job").map_err(map_error)?;
    }
    control(connection, "RELEASE job").map_err(map_error)?;
    outcome
}

/// Runs one job; a panic in it is an error.
fn run(connection: &mut Connection, job: Job) -> Result<(), Error> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut tx = SqliteTx::new(connection);
        futures::executor::block_on(job(&mut tx))
    }))
    .unwrap_or_else(|_| Err(Error::Unavailable("a store job panicked".into())))
}
