//! The attempts in progress in this process.
//!
//! An attempt's entry decides who reports it: whoever removes the entry (the attempt finishing,
//! a heartbeat answer saying CANCEL or STOP, or a durable call told that the run was suspended or
//! is no longer this worker's) is the only one to act on it, so an attempt is completed at most
//! once. Removing an entry drops its stop sender, which stops the attempt if it is still running.
//!
//! The snapshot an attempt holds changes while it runs (see [`HeldSnapshot`]); heartbeats, the
//! metadata flusher and the completion read the current one.

use std::collections::{HashMap, hash_map};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use stint_protocol::worker::RunRef;
use tokio::sync::oneshot;

/// The snapshot id an attempt holds. A wait blocks the run under a new snapshot and going on
/// after it makes another, so the attempt's durable calls move it; a heartbeat answer may name
/// the current one too. Shared by the attempt's entry, its metadata flushes and its context.
#[derive(Debug)]
pub(crate) struct HeldSnapshot(Mutex<String>);

impl HeldSnapshot {
    /// An attempt's first snapshot, the one it was dequeued with.
    pub(crate) fn new(snapshot_id: impl Into<String>) -> Arc<HeldSnapshot> {
        Arc::new(HeldSnapshot(Mutex::new(snapshot_id.into())))
    }

    /// The snapshot id held now.
    pub(crate) fn current(&self) -> String {
        self.0.lock().clone()
    }

    /// Holds `to` instead of `from`; true if it did. Nothing changes when the attempt holds
    /// another snapshot than `from` by now: answers about calls made with an older snapshot can
    /// arrive after answers about newer ones, and must not undo them.
    pub(crate) fn advance(&self, from: &str, to: &str) -> bool {
        let mut held = self.0.lock();
        if *held != from {
            return false;
        }
        to.clone_into(&mut held);
        true
    }
}

/// Attempts in progress, keyed by run id.
#[derive(Default)]
pub(crate) struct Running {
    attempts: Mutex<HashMap<String, Entry>>,
    next_token: AtomicU64,
}

struct Entry {
    /// Tells this attempt from a later one of the same run.
    token: u64,
    snapshot: Arc<HeldSnapshot>,
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
    pub(crate) fn insert(&self, run_id: String, snapshot: Arc<HeldSnapshot>) -> (Token, oneshot::Receiver<()>) {
        let (stop, stopped) = oneshot::channel();
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let entry = Entry { token, snapshot, _stop: stop };
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
    /// An attempt that holds another snapshot by now is left alone: the answer was about a
    /// snapshot it has moved on from.
    pub(crate) fn stop(&self, run_id: &str, snapshot_id: &str) -> bool {
        let mut attempts = self.attempts.lock();
        match attempts.get(run_id) {
            Some(entry) if entry.snapshot.current() == snapshot_id => {
                attempts.remove(run_id);
                true
            }
            _ => false,
        }
    }

    /// Makes the attempt of `run_id` holding `from` hold `to` (see [`HeldSnapshot::advance`]);
    /// true if it did.
    pub(crate) fn advance(&self, run_id: &str, from: &str, to: &str) -> bool {
        let attempts = self.attempts.lock();
        attempts.get(run_id).is_some_and(|entry| entry.snapshot.advance(from, to))
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
            .map(|(run_id, entry)| RunRef { run_id: run_id.clone(), snapshot_id: entry.snapshot.current() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_remover_reports() {
        let running = Running::default();
        let (token, mut stopped) = running.insert("run_1".into(), HeldSnapshot::new("s1"));
        assert_eq!(running.refs(), [RunRef { run_id: "run_1".into(), snapshot_id: "s1".into() }]);
        assert!(!running.stop("run_1", "other-snapshot"));
        assert!(running.stop("run_1", "s1"));
        assert!(stopped.try_recv().is_err_and(|e| e == oneshot::error::TryRecvError::Closed));
        assert!(!running.finish("run_1", token));
    }

    #[test]
    fn a_new_attempt_replaces_and_stops_the_old_one() {
        let running = Running::default();
        let (old, mut old_stopped) = running.insert("run_1".into(), HeldSnapshot::new("s1"));
        let (new, _new_stopped) = running.insert("run_1".into(), HeldSnapshot::new("s2"));
        assert!(old_stopped.try_recv().is_err_and(|e| e == oneshot::error::TryRecvError::Closed));
        assert!(!running.finish("run_1", old));
        assert!(running.finish("run_1", new));
        assert_eq!(running.stop_all(), 0);
    }

    #[test]
    fn the_held_snapshot_moves_forward_only_from_the_one_an_answer_was_about() {
        let running = Running::default();
        let snapshot = HeldSnapshot::new("s1");
        let (_token, mut stopped) = running.insert("run_1".into(), Arc::clone(&snapshot));
        assert!(running.advance("run_1", "s1", "s2"));
        assert_eq!(running.refs(), [RunRef { run_id: "run_1".into(), snapshot_id: "s2".into() }]);
        // A late answer about s1 neither moves the attempt back nor stops it.
        assert!(!running.advance("run_1", "s1", "s3"));
        assert!(!snapshot.advance("s1", "s3"));
        assert!(!running.stop("run_1", "s1"));
        assert_eq!(snapshot.current(), "s2");
        assert!(stopped.try_recv().is_err_and(|e| e == oneshot::error::TryRecvError::Empty));
        assert!(running.stop("run_1", "s2"));
    }
}
