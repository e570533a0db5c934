//! Metadata changes of attempts in progress: every second, one call sends the changes of all of
//! them. An attempt's last changes go with its completion instead (see [`Metadata::finish`]), so
//! its run's final metadata is stored with its final state.
//!
//! A call whose answer is lost is sent again (its changes are put back ahead of newer ones):
//! the server may then apply them twice, which the protocol allows, rather than not at all.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use stint_protocol::worker::{MetadataOutcome, MetadataRequest, MetadataResponse, RunMetadata};

use super::Shared;
use crate::Metadata;

/// How often changes are sent.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long one call may take. An attempt that ends while a call is in flight waits for it.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Most runs in one call.
const MAX_BATCH: usize = 500;

/// The metadata of the attempts in progress, by run id.
#[derive(Default)]
pub(crate) struct Flushes {
    runs: Mutex<HashMap<String, (String, Metadata)>>,
}

impl Flushes {
    /// Sends the changes of the attempt of `run_id` holding `snapshot_id` until it ends. A new
    /// attempt of the run replaces the old one.
    pub(crate) fn insert(&self, run_id: String, snapshot_id: String, metadata: Metadata) {
        self.runs.lock().insert(run_id, (snapshot_id, metadata));
    }

    /// Stops sending the changes of that attempt.
    pub(crate) fn remove(&self, run_id: &str, snapshot_id: &str) {
        let mut runs = self.runs.lock();
        if runs.get(run_id).is_some_and(|(snapshot, _)| snapshot == snapshot_id) {
            runs.remove(run_id);
        }
    }

    /// The attempts with changes to send.
    fn pending(&self) -> Vec<(String, String, Metadata)> {
        let runs = self.runs.lock();
        runs.iter()
            .filter(|(_, (_, metadata))| metadata.has_pending())
            .map(|(run_id, (snapshot_id, metadata))| (run_id.clone(), snapshot_id.clone(), metadata.clone()))
            .collect()
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
async fn flush(shared: &Shared, attempts: &[(String, String, Metadata)]) {
    let mut guards = Vec::with_capacity(attempts.len());
    let mut sent = Vec::with_capacity(attempts.len());
    let mut runs = Vec::with_capacity(attempts.len());
    for (run_id, snapshot_id, metadata) in attempts {
        // An attempt that is ending holds its lock: its completion takes the changes.
        let Ok(guard) = metadata.sending().try_lock_owned() else { continue };
        let operations = metadata.take_pending();
        if operations.is_empty() {
            continue;
        }
        guards.push(guard);
        sent.push(metadata);
        runs.push(RunMetadata { run_id: run_id.clone(), snapshot_id: snapshot_id.clone(), operations });
    }
    if runs.is_empty() {
        return;
    }
    let request = MetadataRequest { runs };
    let (_, answer) = shared.session.post::<_, MetadataResponse>("metadata", &request, FLUSH_TIMEOUT).await;
    match answer {
        Ok(response) => {
            for result in response.runs {
                match result.outcome {
                    MetadataOutcome::Updated => {}
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
        }
        Err(error) => {
            tracing::warn!(%error, runs = request.runs.len(), "could not send metadata changes; sending them again");
            for (metadata, run) in sent.into_iter().zip(request.runs) {
                metadata.restore(run.operations);
            }
        }
    }
    drop(guards);
}
