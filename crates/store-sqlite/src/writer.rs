//! The single writer: one thread owns the only writing connection and commits groups of jobs.
//!
//! Jobs queue on a channel. The thread takes every job waiting, runs each in its own savepoint
//! inside one transaction, commits once and only then answers every job. Under load many jobs
//! share one commit, and so one disk sync; alone, a job pays for its own.

use std::panic::AssertUnwindSafe;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;
use stint_store::{Error, Job};
use tokio::sync::oneshot;

use crate::codec::map_error;
use crate::tx::SqliteTx;

/// Most jobs in one commit. Bounds the latency one commit adds to the jobs behind it.
const MAX_GROUP: usize = 512;

/// A job and where to send its outcome.
pub(crate) struct Request {
    pub(crate) job: Job,
    pub(crate) done: oneshot::Sender<Result<(), Error>>,
}

/// The handle to the writer thread.
pub(crate) struct Writer {
    sender: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on a connection.
    pub(crate) fn start(connection: Connection) -> Writer {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("stint-sqlite-writer".into())
            .spawn(move || run(connection, receiver))
            .expect("spawning the SQLite writer thread");
        Writer { sender: Some(sender), thread: Some(thread) }
    }

    /// Queues a job; the receiver resolves after its commit.
    pub(crate) fn submit(&self, job: Job) -> oneshot::Receiver<Result<(), Error>> {
        let (done, receiver) = oneshot::channel();
        if let Some(sender) = &self.sender
            && let Err(crossbeam_channel::SendError(request)) = sender.send(Request { job, done })
        {
            let _ = request.done.send(Err(Error::Closed));
        }
        receiver
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut connection: Connection, receiver: Receiver<Request>) {
    while let Ok(first) = receiver.recv() {
        let mut group = Vec::with_capacity(16);
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        commit_group(&mut connection, group);
    }
}

fn commit_group(connection: &mut Connection, group: Vec<Request>) {
    if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
        let error = map_error(error);
        for request in group {
            let _ = request.done.send(Err(error.clone()));
        }
        return;
    }
    let mut outcomes = Vec::with_capacity(group.len());
    let mut senders = Vec::with_capacity(group.len());
    for request in group {
        outcomes.push(run_job(connection, request.job));
        senders.push(request.done);
    }
    match connection.execute_batch("COMMIT") {
        Ok(()) => {
            for (done, outcome) in senders.into_iter().zip(outcomes) {
                let _ = done.send(outcome);
            }
        }
        Err(error) => {
            tracing::error!(%error, "commit failed; rolling back the group");
            let _ = connection.execute_batch("ROLLBACK");
            let error = map_error(error);
            for done in senders {
                let _ = done.send(Err(error.clone()));
            }
        }
    }
}

/// Runs one job in a savepoint, keeping its writes if it succeeds and undoing them if not.
fn run_job(connection: &mut Connection, job: Job) -> Result<(), Error> {
    connection.execute_batch("SAVEPOINT job").map_err(map_error)?;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut tx = SqliteTx::new(connection);
        futures::executor::block_on(job(&mut tx))
    }))
    .unwrap_or_else(|_| Err(Error::Unavailable("a store job panicked".into())));
    let end = if outcome.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    connection.execute_batch(end).map_err(map_error)?;
    outcome
}
