//! Metadata changes of attempts in progress: every second, one call sends the changes of all of
//! them. An attempt's last changes go with its completion instead (see [`Metadata::finish`]), so
//! its run's final metadata is stored with its final state.
//!
//! A call whose answer is lost is sent again (its changes are put back ahead of newer ones):
//! the server may then apply them twice, which the protocol allows, rather than not at all.
//!
//! Changes are fenced on the snapshot the attempt holds when they are sent. A durable call can
//! move the attempt to a new snapshot while a call is in flight; changes answered `STALE` then are
//! put back and go with the next call, under the new snapshot. Before a wait blocks the run, the
//! attempt's changes are sent first ([`flush_now`]): a run that is suspended sends no completion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use stint_protocol::worker::{MetadataOutcome, MetadataRequest, MetadataResponse, MetadataResult, RunMetadata};

use super::Shared;
use super::running::HeldSnapshot;
use crate::Metadata;

/// How often changes are sent.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long one call may take. An attempt that ends while a call is in flight waits for it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Most runs in one call.
const MAX_BATCH: usize = 500;

/// The metadata of the attempts in progress, by run id, with the snapshot each holds.
#[derive(Default)]
pub(crate) struct Flushes {
    runs: Mutex<HashMap<String, Attempt>>,
}

/// An attempt whose changes are sent.
#[derive(Clone)]
struct Attempt {
    run_id: String,
    snapshot: Arc<HeldSnapshot>,
    metadata: Metadata,
}

impl Flushes {
    /// Sends the changes of the attempt of `run_id` holding `snapshot` until it ends. A new
    /// attempt of the run replaces the old one.
    pub(crate) fn insert(&self, run_id: String, snapshot: Arc<HeldSnapshot>, metadata: Metadata) {
        self.runs.lock().insert(run_id.clone(), Attempt { run_id, snapshot, metadata });
    }

    /// Stops sending the changes of that attempt (told from a later attempt of the run by its
    /// snapshot, which is the attempt's own whatever id it holds now).
    pub(crate) fn remove(&self, run_id: &str, snapshot: &Arc<HeldSnapshot>) {
        let mut runs = self.runs.lock();
        if runs.get(run_id).is_some_and(|attempt| Arc::ptr_eq(&attempt.snapshot, snapshot)) {
            runs.remove(run_id);
        }
    }

    /// The attempts with changes to send.
    fn pending(&self) -> Vec<Attempt> {
        let runs = self.runs.lock();
        runs.values().filter(|attempt| attempt.metadata.has_pending()).cloned().collect()
    }
}

/// Sends changes every [`FLUSH_INTERVAL`] until the task is aborted.
pub(crate) async fn flush_loop(shared: &Shared) {
    let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let pending = shared.metadata.pending();
        for chunk in pending.chunks(MAX_BATCH) {
            flush(shared, chunk).await;
        }
    }
}

/// One call with the changes of `attempts`. Each attempt's sending lock is held until the answer,
/// so its completion, which carries its last changes, waits for it.
async fn flush(shared: &Shared, attempts: &[Attempt]) {
    let mut guards = Vec::with_capacity(attempts.len());
    let mut sent = Vec::with_capacity(attempts.len());
    let mut runs = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        // An attempt that is ending holds its lock: its completion takes the changes.
        let Ok(guard) = attempt.metadata.sending().try_lock_owned() else { continue };
        let operations = attempt.metadata.take_pending();
        if operations.is_empty() {
            continue;
        }
        guards.push(guard);
        sent.push(attempt);
        runs.push(RunMetadata { run_id: attempt.run_id.clone(), snapshot_id: attempt.snapshot.current(), operations });
    }
    if runs.is_empty() {
        return;
    }
    let request = MetadataRequest { runs };
    let (_, answer) = shared.session.post::<_, MetadataResponse>("metadata", &request, FLUSH_TIMEOUT).await;
    match answer {
        Ok(response) => {
            for ((attempt, run), result) in sent.into_iter().zip(request.runs).zip(response.runs) {
                answered(attempt, run, result);
            }
        }
        Err(error) => {
            tracing::warn!(%error, runs = request.runs.len(), "could not send metadata changes; sending them again");
            for (attempt, run) in sent.into_iter().zip(request.runs) {
                attempt.metadata.restore(run.operations);
            }
        }
    }
    drop(guards);
}

/// Sends the changes of one attempt now, holding its sending lock, and returns once the server
/// has answered. Changes whose call failed are put back, to go with a later call or the
/// completion.
pub(crate) async fn flush_now(shared: &Shared, run_id: &str, snapshot: &Arc<HeldSnapshot>, metadata: &Metadata) {
    let sending = metadata.sending();
    let _sending = sending.lock().await;
    let operations = metadata.take_pending();
    if operations.is_empty() {
        return;
    }
    let run = RunMetadata { run_id: run_id.to_string(), snapshot_id: snapshot.current(), operations };
    let request = MetadataRequest { runs: vec![run] };
    let (_, answer) = shared.session.post::<_, MetadataResponse>("metadata", &request, FLUSH_TIMEOUT).await;
    let attempt = Attempt { run_id: run_id.to_string(), snapshot: Arc::clone(snapshot), metadata: metadata.clone() };
    let Some(run) = request.runs.into_iter().next() else { return };
    match answer.map(|response| response.runs.into_iter().next()) {
        Ok(Some(result)) => answered(&attempt, run, result),
        Ok(None) => tracing::warn!(run_id, "the server did not answer about the metadata changes sent"),
        Err(error) => {
            tracing::warn!(%error, run_id, "could not send metadata changes before a wait; sending them later");
            metadata.restore(run.operations);
        }
    }
}

/// Acts on the answer about one attempt's changes.
fn answered(attempt: &Attempt, sent: RunMetadata, result: MetadataResult) {
    match result.outcome {
        MetadataOutcome::Updated => {}
        // The attempt moved to a new snapshot while the call was in flight: the changes go
        // again under it.
        MetadataOutcome::Stale if attempt.snapshot.current() != sent.snapshot_id => {
            attempt.metadata.restore(sent.operations);
        }
        // The attempt is no longer this worker's; its heartbeat says so too.
        MetadataOutcome::Stale | MetadataOutcome::NotFound => {
            tracing::debug!(run_id = %result.run_id, outcome = ?result.outcome, "metadata changes dropped");
        }
        MetadataOutcome::Invalid => {
            let error = result.error.unwrap_or_default();
            tracing::warn!(run_id = %result.run_id, %error, "the server refused metadata changes");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_answered_stale_after_the_attempt_moved_on_are_sent_again() {
        let metadata = Metadata::new(None);
        let snapshot = HeldSnapshot::new("s1");
        let attempt = Attempt { run_id: "run_1".into(), snapshot: Arc::clone(&snapshot), metadata: metadata.clone() };
        let result = |outcome| MetadataResult { run_id: "run_1".into(), outcome, error: None };
        let sent = || {
            metadata.set("k", json!(1)).unwrap();
            RunMetadata { run_id: "run_1".into(), snapshot_id: "s1".into(), operations: metadata.take_pending() }
        };
        // Stale while the attempt still holds s1: it is no longer this worker's; dropped.
        answered(&attempt, sent(), result(MetadataOutcome::Stale));
        assert!(!metadata.has_pending());
        // Stale because a wait moved the attempt to s2 meanwhile: kept for the next call.
        let in_flight = sent();
        snapshot.advance("s1", "s2");
        answered(&attempt, in_flight, result(MetadataOutcome::Stale));
        assert_eq!(metadata.take_pending().len(), 1);
    }
}
