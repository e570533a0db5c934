//! Heartbeats: every interval, one call for all attempts in progress, and the server's answer
//! applied to each.

use std::time::Duration;

use stint_protocol::worker::{HeartbeatAction, HeartbeatRequest, HeartbeatResponse, RunAction, RunRef};

use super::Shared;
use super::api::CallError;
use super::completions::cancellation;

/// Most attempts in one heartbeat call, matching the dequeue limit.
const MAX_BATCH: usize = 1_000;
/// How long one heartbeat call may take; a slower answer is as good as none.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends heartbeats until the task is aborted. A failed heartbeat is not retried: the next one
/// comes an interval later, well within the server's stall timeout, and carries fresher data.
pub(crate) async fn heartbeat_loop(shared: &Shared) {
    loop {
        tokio::time::sleep(shared.session.current().heartbeat_interval).await;
        let refs = shared.running.refs();
        for chunk in refs.chunks(MAX_BATCH) {
            let request = HeartbeatRequest { runs: chunk.to_vec() };
            let (generation, answer) =
                shared.session.post::<_, HeartbeatResponse>("heartbeat", &request, HEARTBEAT_TIMEOUT).await;
            match answer {
                Ok(response) => apply(shared, chunk, response.runs),
                Err(CallError::UnknownWorker(message)) => {
                    tracing::warn!(%message, "the server does not know this worker; registering again");
                    if let Err(failure) = shared.session.ensure_registered(generation, &shared.halt).await {
                        if let Some(error) = failure.into_error("register") {
                            shared.fail(error);
                        }
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, attempts = chunk.len(), "heartbeat failed"),
            }
        }
    }
}

/// Applies the answer about each attempt of a heartbeat.
fn apply(shared: &Shared, sent: &[RunRef], actions: Vec<HeartbeatAction>) {
    for (index, action) in actions.into_iter().enumerate() {
        // Answers come in the order of the request; searching is only for a server that strays.
        let held = match sent.get(index) {
            Some(run) if run.run_id == action.run_id => run,
            _ => match sent.iter().find(|run| run.run_id == action.run_id) {
                Some(run) => run,
                None => continue,
            },
        };
        match action.action {
            RunAction::Continue => {}
            RunAction::Cancel => {
                // An attempt that finished since the heartbeat was sent has queued its own
                // completion; the server answers it STALE with PENDING_CANCEL and the flusher
                // confirms the cancellation then.
                if shared.running.stop(&held.run_id, &held.snapshot_id) {
                    tracing::info!(run_id = %held.run_id, "the run was cancelled; attempt stopped");
                    let snapshot_id = action.snapshot_id.unwrap_or_else(|| held.snapshot_id.clone());
                    shared.completions.push(cancellation(held.run_id.clone(), snapshot_id));
                }
            }
            RunAction::Stop => {
                if shared.running.stop(&held.run_id, &held.snapshot_id) {
                    tracing::warn!(run_id = %held.run_id, "the attempt is no longer this worker's; stopped and dropped");
                }
            }
        }
    }
}
