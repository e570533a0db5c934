use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::{Error, Signal, Tx};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Signals from other nodes, as they arrive.
pub type SignalStream = Pin<Box<dyn futures::Stream<Item = Signal> + Send>>;

/// A unit of work run inside one transaction. It returns `Err` to roll its writes back.
pub type Job = Box<dyn for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<(), Error>> + Send>;

/// A database. Implementations decide how jobs share transactions: SQLite groups concurrent
/// write jobs into one commit, each job in its own savepoint.
pub trait Store: Send + Sync + 'static {
    /// Runs a job in a write transaction. Resolves once the job's writes are durably committed,
    /// or with the error that prevented it.
    fn write_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>>;

    /// Runs a job in a read-only transaction.
    fn read_job(&self, job: Job) -> BoxFuture<'_, Result<(), Error>>;

    /// The signals other nodes send through this database, or `None` for a store only one node
    /// uses. The stream reconnects by itself; signals sent while it is disconnected are lost, so
    /// listeners must also look again from time to time.
    fn subscribe(&self) -> Option<SignalStream> {
        None
    }
}

/// Typed wrappers over [`Store`]'s jobs.
pub trait StoreExt: Store {
    /// Runs `f` in a write transaction and returns its result once committed. When `f` returns
    /// `Err`, its writes are rolled back and the error is returned.
    fn write<R, E, F>(&self, f: F) -> impl Future<Output = Result<R, E>> + Send
    where
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<R, E>> + Send + 'static,
        R: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (job, slot) = typed_job(f);
        async move { finish(self.write_job(job).await, &slot) }
    }

    /// Runs `f` in a read-only transaction.
    fn read<R, E, F>(&self, f: F) -> impl Future<Output = Result<R, E>> + Send
    where
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<R, E>> + Send + 'static,
        R: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (job, slot) = typed_job(f);
        async move { finish(self.read_job(job).await, &slot) }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

type Slot<R, E> = Arc<Mutex<Option<Result<R, E>>>>;

/// Wraps a typed closure as a [`Job`] that leaves its result in a slot.
fn typed_job<R, E, F>(f: F) -> (Job, Slot<R, E>)
where
    F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<R, E>> + Send + 'static,
    R: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let slot: Slot<R, E> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let job: Job = Box::new(move |tx| {
        Box::pin(async move {
            let result = f(tx).await;
            let failed = result.is_err();
            *out.lock() = Some(result);
            if failed { Err(Error::Rollback) } else { Ok(()) }
        })
    });
    (job, slot)
}

/// Turns a job's outcome and its slot into the caller's result. A commit failure wins over a
/// result the job produced, since its writes are not durable.
fn finish<R, E: From<Error>>(outcome: Result<(), Error>, slot: &Slot<R, E>) -> Result<R, E> {
    let produced = slot.lock().take();
    match (outcome, produced) {
        (Ok(()), Some(result)) => result,
        (Err(Error::Rollback), Some(Err(error))) => Err(error),
        (Err(error), _) => Err(E::from(error)),
        (Ok(()), None) => Err(E::from(Error::Unavailable("job was not run".into()))),
    }
}
