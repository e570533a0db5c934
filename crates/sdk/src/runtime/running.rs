//! The attempts in progress in this process.
//!
//! An attempt's entry decides who reports it: whoever removes the entry (the attempt finishing,
//! or a heartbeat answer saying CANCEL or STOP) is the only one to act on it, so an attempt is
//! completed at most once. Removing an entry drops its stop sender, which stops the attempt if it
//! is still running.

use std::collections::{HashMap, hash_map};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use stint_protocol::worker::RunRef;
use tokio::sync::oneshot;

/// Attempts in progress, keyed by run id.
#[derive(Default)]
pub(crate) struct Running {
    attempts: Mutex<HashMap<String, Entry>>,
    next_token: AtomicU64,
}

struct Entry {
    /// Tells this attempt from a later one of the same run.
    token: u64,
    snapshot_id: String,
    /// Dropping it tells the attempt to stop.
    _stop: oneshot::Sender<()>,
}

/// A handle of a registered attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token(u64);

impl Running {
    /// Registers an attempt and returns its token and the receiver that resolves when the
    /// attempt must stop. An earlier attempt of the same run is dropped, which stops it: the
    /// server handing out a new attempt means the old one is no longer this worker's.
    pub(crate) fn insert(&self, run_id: String, snapshot_id: String) -> (Token, oneshot::Receiver<()>) {
        let (stop, stopped) = oneshot::channel();
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let entry = Entry { token, snapshot_id, _stop: stop };
        match self.attempts.lock().entry(run_id) {
            hash_map::Entry::Occupied(mut occupied) => {
                tracing::warn!(
                    run_id = %occupied.key(),
                    "the server started a new attempt of a run whose previous attempt still ran here; previous attempt stopped"
                );
                occupied.insert(entry);
            }
            hash_map::Entry::Vacant(vacant) => {
                vacant.insert(entry);
            }
        }
        (Token(token), stopped)
    }

    /// Removes the attempt if it is still registered under `token`; true if it was, meaning the
    /// caller must report it.
    pub(crate) fn finish(&self, run_id: &str, token: Token) -> bool {
        let mut attempts = self.attempts.lock();
        match attempts.get(run_id) {
            Some(entry) if entry.token == token.0 => {
                attempts.remove(run_id);
                true
            }
            _ => false,
        }
    }

    /// Removes and stops the attempt of `run_id` holding `snapshot_id`; true if there was one.
    pub(crate) fn stop(&self, run_id: &str, snapshot_id: &str) -> bool {
        let mut attempts = self.attempts.lock();
        match attempts.get(run_id) {
            Some(entry) if entry.snapshot_id == snapshot_id => {
                attempts.remove(run_id);
                true
            }
            _ => false,
        }
    }

    /// Removes and stops every attempt; returns how many there were.
    pub(crate) fn stop_all(&self) -> usize {
        let drained: Vec<Entry> = self.attempts.lock().drain().map(|(_, entry)| entry).collect();
        drained.len()
    }

    /// The attempts in progress, for a heartbeat.
    pub(crate) fn refs(&self) -> Vec<RunRef> {
        let attempts = self.attempts.lock();
        attempts
            .iter()
            .map(|(run_id, entry)| RunRef { run_id: run_id.clone(), snapshot_id: entry.snapshot_id.clone() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_remover_reports() {
        let running = Running::default();
        let (token, mut stopped) = running.insert("run_1".into(), "s1".into());
        assert_eq!(running.refs(), [RunRef { run_id: "run_1".into(), snapshot_id: "s1".into() }]);
        assert!(!running.stop("run_1", "other-snapshot"));
        assert!(running.stop("run_1", "s1"));
        assert!(stopped.try_recv().is_err_and(|e| e == oneshot::error::TryRecvError::Closed));
        assert!(!running.finish("run_1", token));
    }

    #[test]
    fn a_new_attempt_replaces_and_stops_the_old_one() {
        let running = Running::default();
        let (old, mut old_stopped) = running.insert("run_1".into(), "s1".into());
        let (new, _new_stopped) = running.insert("run_1".into(), "s2".into());
        assert!(old_stopped.try_recv().is_err_and(|e| e == oneshot::error::TryRecvError::Closed));
        assert!(!running.finish("run_1", old));
        assert!(running.finish("run_1", new));
        assert_eq!(running.stop_all(), 0);
    }
}
