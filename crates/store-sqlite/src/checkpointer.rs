//! Checkpoints on a thread of their own.
//!
//! A checkpoint copies committed pages from the WAL into the database file and syncs it. SQLite
//! runs one inside the commit that takes the WAL past 1,000 pages, on the committing connection:
//! with one writer, every write waits while the pages are copied (a tenth of the writer's time
//! when batches add 100,000 runs a second). Here the writer's commits only report the WAL's size
//! (a WAL hook), and a thread with a connection of its own runs a passive checkpoint each time the
//! WAL has grown by [`THRESHOLD_PAGES`], as often as SQLite would, while the writer goes on
//! committing: a passive checkpoint copies what no reader still needs and blocks no one.
//!
//! The WAL starts again from its beginning only when a write transaction begins after every frame
//! has been copied, which a writer that is never idle may not give it. So once the WAL holds
//! [`BACKSTOP_PAGES`], the writer's commits checkpoint by themselves, as SQLite's own automatic
//! checkpoint does (copying little when this thread keeps up), and the next transaction restarts
//! the WAL: it stays within about 64 MB.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use rusqlite::hooks::{CheckpointMode, Wal};
use rusqlite::{Connection, OpenFlags};
use stint_store::Error;

/// Growth of the WAL, in pages, that makes a checkpoint (SQLite's `wal_autocheckpoint` default).
const THRESHOLD_PAGES: u32 = 1_000;
/// The WAL size, in pages, from which the writer's commits checkpoint by themselves.
const BACKSTOP_PAGES: c_int = 16_384;

thread_local! {
    /// The WAL's size after the last commit on this thread, set by [`wal_hook`].
    static WAL_PAGES: Cell<Option<u32>> = const { Cell::new(None) };
}

/// The writer's WAL hook: called in each commit with the pages the WAL then holds.
fn wal_hook(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(u32::try_from(pages).ok());
    if pages >= BACKSTOP_PAGES {
        // As SQLite's automatic checkpoint: a failure (another checkpoint is running) is no error.
        let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
    }
    Ok(())
}

/// Installs the WAL hook on the writing connection, in place of SQLite's automatic checkpoint.
pub(crate) fn install(writer: &Connection) {
    writer.wal_hook(Some(wal_hook));
}

/// Forgets a WAL size left on this thread, before a commit whose own the hook then reports (a
/// commit that writes no page calls no hook).
pub(crate) fn before_commit() {
    WAL_PAGES.set(None);
}

/// What the writer and the checkpoint thread share.
#[derive(Default)]
pub(crate) struct Commits {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Pages in the WAL after the last commit.
    pages: u32,
    stop: bool,
}

impl Commits {
    /// Called after a commit on this thread: tells the checkpoint thread how large the WAL is.
    pub(crate) fn committed(&self) {
        let Some(pages) = WAL_PAGES.take() else { return };
        self.state.lock().pages = pages;
        self.changed.notify_one();
    }
}

/// The checkpoint thread; stopped and joined when dropped.
pub(crate) struct Checkpointer {
    commits: Arc<Commits>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on a connection of its own to the database at `path`.
    pub(crate) fn start(path: &Path, commits: Arc<Commits>) -> Result<Checkpointer, Error> {
        let connection = Connection::open_with_flags(path, OpenFlags::default())
            .map_err(|e| Error::Unavailable(format!("opening {} for checkpoints: {e}", path.display())))?;
        let shared = commits.clone();
        let thread = std::thread::Builder::new()
            .name("stint-checkpoint".into())
            .spawn(move || run(&connection, &shared))
            .map_err(|e| Error::Unavailable(format!("starting the checkpoint thread: {e}")))?;
        Ok(Checkpointer { commits, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.commits.state.lock().stop = true;
        self.commits.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, commits: &Commits) {
    // The WAL's size at the last checkpoint: the next comes once it has grown by the threshold.
    let mut at_last = 0;
    loop {
        let pages = {
            let mut state = commits.state.lock();
            loop {
                if state.stop {
                    return;
                }
                if state.pages < at_last {
                    // The WAL started again from its beginning.
                    at_last = 0;
                }
                if state.pages >= at_last + THRESHOLD_PAGES {
                    break state.pages;
                }
                commits.changed.wait(&mut state);
            }
        };
        match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(pages) => at_last = u32::try_from(pages).unwrap_or(0),
            Err(error) => {
                tracing::warn!(%error, "a background checkpoint failed; it is tried again as the WAL grows");
                at_last = pages;
            }
        }
    }
}
