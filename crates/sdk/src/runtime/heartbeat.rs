//! Heartbeats: every interval, one call for all attempts in progress or whose completion the
//! server has not answered yet, and the server's answer applied to each.

use std::time::Duration;

use stint_protocol::worker::{HeartbeatAction, HeartbeatRequest, HeartbeatResponse, RunAction, RunRef};

use super::Shared;
use super::api::CallError;
use super::completions::cancellation;

/// Most attempts in one heartbeat call, matching the dequeue limit.
const MAX_BATCH: usize = 1_000;
/// How long one heartbeat call may take; a slower answer is as good as none.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends heartbeats until the task is aborted, none while there is nothing to cover. A failed
/// heartbeat is not retried: the next one comes an interval later, well within the server's stall
/// timeout, and carries fresher data.
///
/// Attempts whose completion is unanswered are covered too: the server holds them as executing
/// until the completion arrives, which can take longer than its stall timeout. This loop and the
/// completion flusher are separate tokio tasks sharing only the brief lock that reads the
/// unanswered attempts, and the flusher encodes its batches on the blocking pool, so neither a
/// completion retried with backoff nor a large one holds heartbeats up.
pub(crate) async fn heartbeat_loop(shared: &Shared) {
    loop {
        tokio::time::sleep(shared.session.current().heartbeat_interval).await;
        // An attempt that finishes between these two reads is in both, and the server answers
        // both entries alike; reading in the other order would leave it out of this heartbeat.
        let mut refs = shared.running.refs();
        refs.extend(shared.completions.unanswered());
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

/// Applies the answer about each attempt of a heartbeat. Only attempts still in progress, and
/// still holding the snapshot the heartbeat named, are acted on: an attempt whose completion is unanswered is no longer in `running`, and that
/// completion settles it. On STOP the server answers the completion STALE, which is dropped; on
/// CANCEL it answers STALE with the run `PENDING_CANCEL`, and the flusher confirms the
/// cancellation then, so reporting it here as well would report it twice.
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
            // The run's snapshot changed while it stayed this worker's (a wait completed in
            // place): the attempt holds the new one from now on, unless it has moved on already.
            RunAction::Continue => {
                if let Some(current) = action.snapshot_id.filter(|current| *current != held.snapshot_id)
                    && shared.running.advance(&held.run_id, &held.snapshot_id, &current)
                {
                    tracing::debug!(run_id = %held.run_id, snapshot_id = %current, "the attempt holds a new snapshot");
                }
            }
            RunAction::Cancel => {
                // An attempt that finished since the heartbeat was sent, or had finished before,
                // has queued its own completion; the server answers it STALE with PENDING_CANCEL
                // and the flusher confirms the cancellation then.
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use stint_protocol::worker::{Completion, RegisterRequest};

    use super::super::api::Api;
    use super::super::running::HeldSnapshot;
    use super::super::session::Session;
    use super::*;

    /// The shared state of a worker whose server is never called.
    fn shared() -> Arc<Shared> {
        let api = Api::new("http://127.0.0.1:9", "tr_dev_x").unwrap();
        let request =
            RegisterRequest { version: "0.0.0".into(), sdk_version: None, tasks: Vec::new(), environments: None };
        let triggers = crate::context::Triggers::Unavailable("no client in tests");
        Arc::new(Shared::new(Session::new(api, request), std::collections::HashMap::new(), 1, Duration::ZERO, triggers))
    }

    fn action(run_id: &str, action: RunAction, snapshot_id: Option<&str>) -> HeartbeatAction {
        HeartbeatAction { run_id: run_id.into(), action, snapshot_id: snapshot_id.map(Into::into) }
    }

    #[test]
    fn answers_about_attempts_whose_completion_is_unanswered_change_nothing() {
        let shared = shared();
        let finished = [RunRef { run_id: "run_a".into(), snapshot_id: "s1".into() }];
        shared.completions.push(Completion::success(finished[0].clone(), json!("done")));
        let (_token, _stop) = shared.running.insert("run_b".into(), HeldSnapshot::new("s1"));
        let running = [RunRef { run_id: "run_b".into(), snapshot_id: "s1".into() }];
        // The completion of the finished attempt is the one to settle it, even when cancelled.
        apply(&shared, &finished, vec![action("run_a", RunAction::Cancel, Some("s2"))]);
        apply(&shared, &finished, vec![action("run_a", RunAction::Stop, None)]);
        assert_eq!(shared.completions.len(), 1);
        assert_eq!(shared.completions.unanswered(), finished);
        // An attempt in progress is stopped and its cancellation confirmed.
        apply(&shared, &running, vec![action("run_b", RunAction::Cancel, Some("s2"))]);
        assert!(shared.running.refs().is_empty());
        let queued = shared.completions.take_batch();
        assert_eq!(queued.len(), 2);
        assert_eq!((queued[1].run_id.as_str(), queued[1].snapshot_id.as_str()), ("run_b", "s2"));
    }

    #[test]
    fn a_continue_naming_a_new_snapshot_moves_the_attempt_to_it() {
        let shared = shared();
        let snapshot = HeldSnapshot::new("s1");
        let (_token, _stop) = shared.running.insert("run_a".into(), Arc::clone(&snapshot));
        let sent = [RunRef { run_id: "run_a".into(), snapshot_id: "s1".into() }];
        apply(&shared, &sent, vec![action("run_a", RunAction::Continue, Some("s2"))]);
        assert_eq!(snapshot.current(), "s2");
        // An answer to a heartbeat sent before the move does not undo a later one.
        snapshot.advance("s2", "s3");
        apply(&shared, &sent, vec![action("run_a", RunAction::Continue, Some("s2"))]);
        apply(&shared, &sent, vec![action("run_a", RunAction::Stop, None)]);
        assert_eq!(snapshot.current(), "s3");
        assert_eq!(shared.running.refs().len(), 1, "a STOP about s1 does not stop the attempt holding s3");
    }
}
