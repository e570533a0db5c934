//! Completions: finished attempts wait in one queue and a single flusher sends all that are
//! pending in one call. While a call is in flight new completions gather, so batches grow with
//! load and an idle worker sends each completion at once.
//!
//! An attempt whose completion is queued or in flight has left the attempts in progress, yet the
//! server holds it as executing until the completion arrives; delivery can take long (the server
//! unavailable or restarting, a large output). So the queue also keeps the attempt of every
//! completion not yet answered, and heartbeats cover those attempts until the server has answered
//! or the worker has given up: otherwise the server would declare them stalled, retry their runs
//! and discard their results as stale.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use stint_protocol::types::{ErrorCode, ExecutionStatus, TaskRunError};
use stint_protocol::worker::{CompleteRequest, CompleteResponse, Completion, CompletionOutcome, RunRef};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::api::Encoded;
use super::session::{CallFailure, Session};

/// Most completions in one call.
const MAX_BATCH: usize = 500;
/// How long one completion call may take.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(60);

/// Completions waiting to be sent, and the attempts of those not answered yet.
#[derive(Default)]
pub(crate) struct Completions {
    pending: Mutex<Vec<Completion>>,
    /// Snapshot ids by run id of the completions queued or in flight, one entry per completion.
    unanswered: Mutex<HashMap<String, Vec<String>>>,
    wake: Notify,
    closed: AtomicBool,
}

impl Completions {
    /// Queues a completion, counts it unanswered until the flusher [forgets](Self::forget) it,
    /// and wakes the flusher.
    pub(crate) fn push(&self, completion: Completion) {
        let snapshot_id = completion.snapshot_id.clone();
        self.unanswered.lock().entry(completion.run_id.clone()).or_default().push(snapshot_id);
        self.pending.lock().push(completion);
        self.wake.notify_one();
    }

    /// The attempts whose completions are queued or in flight, for a heartbeat.
    pub(crate) fn unanswered(&self) -> Vec<RunRef> {
        let unanswered = self.unanswered.lock();
        unanswered
            .iter()
            .flat_map(|(run_id, snapshots)| {
                snapshots.iter().map(|snapshot_id| RunRef { run_id: run_id.clone(), snapshot_id: snapshot_id.clone() })
            })
            .collect()
    }

    /// Counts one completion of each of `runs` as answered, or dropped: heartbeats stop covering
    /// its attempt.
    fn forget(&self, runs: &[RunRef]) {
        let mut unanswered = self.unanswered.lock();
        for run in runs {
            let Some(snapshots) = unanswered.get_mut(&run.run_id) else { continue };
            if let Some(index) = snapshots.iter().position(|snapshot_id| *snapshot_id == run.snapshot_id) {
                snapshots.swap_remove(index);
            }
            if snapshots.is_empty() {
                unanswered.remove(&run.run_id);
            }
        }
    }

    /// Tells the flusher to return once the queue is empty. Nothing may be pushed afterwards.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// How many completions are waiting.
    pub(crate) fn len(&self) -> usize {
        self.pending.lock().len()
    }

    /// Takes up to [`MAX_BATCH`] completions, oldest first.
    pub(crate) fn take_batch(&self) -> Vec<Completion> {
        let mut pending = self.pending.lock();
        if pending.len() <= MAX_BATCH { std::mem::take(&mut *pending) } else { pending.drain(..MAX_BATCH).collect() }
    }
}

/// A cancellation of `run_id` confirmed under `snapshot_id`.
pub(crate) fn cancellation(run_id: String, snapshot_id: String) -> Completion {
    let error = TaskRunError::internal(ErrorCode::TaskRunCancelled, "the run was cancelled");
    Completion::failure(RunRef { run_id, snapshot_id }, error, true)
}

/// Sends completions until the queue is closed and empty. Each batch is retried until the server
/// answers it or `give_up` fires, because a completion the server never hears of leaves its run
/// executing until the heartbeat timeout. Returns an error when the server refuses the key.
pub(crate) async fn flush(
    completions: &Completions,
    session: &Session,
    give_up: &CancellationToken,
) -> Result<(), crate::Error> {
    loop {
        let batch = completions.take_batch();
        if batch.is_empty() {
            if completions.closed.load(Ordering::Acquire) {
                return Ok(());
            }
            // `notify_one` stores a wake-up when nobody waits, so a push between the check and
            // this wait is not missed.
            completions.wake.notified().await;
            continue;
        }
        // Whatever `deliver` sends instead of a completion of the batch is about the same
        // attempt, so the batch's attempts are the ones to forget once it returns.
        let runs: Vec<RunRef> = batch
            .iter()
            .map(|completion| RunRef { run_id: completion.run_id.clone(), snapshot_id: completion.snapshot_id.clone() })
            .collect();
        let delivered = deliver(completions, session, give_up, batch).await;
        completions.forget(&runs);
        if delivered?.is_break() {
            return Ok(());
        }
    }
}

/// Sends a batch until the server has answered each of its completions or refused it for good;
/// breaks when `give_up` fired first. Batches the server refuses as a whole are split until the
/// offending completion is alone; see `refused`.
async fn deliver(
    completions: &Completions,
    session: &Session,
    give_up: &CancellationToken,
    batch: Vec<Completion>,
) -> Result<ControlFlow<()>, crate::Error> {
    let mut work = vec![batch];
    while let Some(batch) = work.pop() {
        let (request, body) = Encoded::aside(CompleteRequest { completions: batch }).await;
        match session.post_until_answered::<_, CompleteResponse>("complete", &body, COMPLETE_TIMEOUT, give_up).await {
            Ok(response) => answered(completions, request.completions, response),
            Err(CallFailure::GaveUp) => {
                tracing::error!(
                    completions = request.completions.len() + work.iter().map(Vec::len).sum::<usize>(),
                    "gave up sending completions; the server will retry these runs after their heartbeat timeout"
                );
                return Ok(ControlFlow::Break(()));
            }
            Err(CallFailure::Rejected { status: status @ (401 | 403), message }) => {
                tracing::error!(status, %message, "the server refused the secret key; completions dropped");
                return Err(crate::Error::Rejected { call: "complete", status, message });
            }
            Err(CallFailure::Rejected { status, message }) => {
                work.extend(refused(request.completions, status, &message));
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Acts on the server's answer to each completion of a batch.
fn answered(completions: &Completions, sent: Vec<Completion>, response: CompleteResponse) {
    if response.results.len() != sent.len() {
        tracing::warn!(
            sent = sent.len(),
            answered = response.results.len(),
            "the server answered a different number of completions"
        );
    }
    for (completion, result) in sent.into_iter().zip(response.results) {
        match result.outcome {
            CompletionOutcome::RunFinished | CompletionOutcome::RetryQueued => {
                tracing::trace!(run_id = %result.run_id, outcome = ?result.outcome, status = ?result.status, "completed");
            }
            CompletionOutcome::Stale => match result.current_snapshot {
                // The run was cancelled while the attempt ran: confirm the cancellation under the
                // current snapshot. A snapshot id equal to the one sent cannot be stale, so this
                // cannot loop on one snapshot.
                Some(current)
                    if current.execution_status == ExecutionStatus::PendingCancel
                        && current.id != completion.snapshot_id =>
                {
                    tracing::info!(run_id = %completion.run_id, "the run was cancelled while it ran; confirming the cancellation");
                    let mut confirmation = cancellation(completion.run_id, current.id);
                    // The attempt's last metadata changes still apply, with the cancellation.
                    confirmation.metadata_operations = completion.metadata_operations;
                    completions.push(confirmation);
                }
                current => {
                    tracing::warn!(run_id = %completion.run_id, current = ?current, "completion was stale; dropped");
                }
            },
            CompletionOutcome::NotFound => {
                tracing::warn!(run_id = %completion.run_id, "the server does not know the completed run; dropped");
            }
        }
    }
}

/// What to send instead of a batch the server refused as invalid (400, 413, 422): its halves, so
/// the other completions get through; for a lone successful completion, a failure saying why its
/// output was refused (too large, usually), so the run does not wait for its heartbeat timeout;
/// nothing for a lone failure, which cannot be made more acceptable. Other refusals drop the
/// batch, as resending it cannot change the answer.
fn refused(mut batch: Vec<Completion>, status: u16, message: &str) -> Vec<Vec<Completion>> {
    if !matches!(status, 400 | 413 | 422) {
        tracing::error!(completions = batch.len(), status, %message, "the server refused completions; dropped");
        return Vec::new();
    }
    if batch.len() > 1 {
        let second = batch.split_off(batch.len() / 2);
        return vec![batch, second];
    }
    let Some(completion) = batch.pop() else { return Vec::new() };
    if completion.ok {
        tracing::warn!(run_id = %completion.run_id, status, %message, "the server refused the output; reporting an output error");
        let error = TaskRunError::internal(
            ErrorCode::TaskOutputError,
            format!("the server refused the task's output (status {status}): {message}"),
        );
        let run = RunRef { run_id: completion.run_id, snapshot_id: completion.snapshot_id };
        let mut failure = Completion::failure(run, error, true);
        failure.metadata_operations = completion.metadata_operations;
        return vec![vec![failure]];
    }
    tracing::error!(run_id = %completion.run_id, status, %message, "the server refused a completion; dropped");
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stint_protocol::worker::{CompletionResult, SnapshotRef};

    fn success(run_id: &str) -> Completion {
        Completion::success(RunRef { run_id: run_id.into(), snapshot_id: "s1".into() }, json!(null))
    }

    #[test]
    fn batches_are_capped() {
        let completions = Completions::default();
        (0..MAX_BATCH + 3).for_each(|i| completions.push(success(&format!("run_{i}"))));
        assert_eq!(completions.take_batch().len(), MAX_BATCH);
        assert_eq!(completions.take_batch().len(), 3);
        assert_eq!(completions.len(), 0);
    }

    fn run(run_id: &str, snapshot_id: &str) -> RunRef {
        RunRef { run_id: run_id.into(), snapshot_id: snapshot_id.into() }
    }

    fn unanswered(completions: &Completions) -> Vec<(String, String)> {
        let mut runs: Vec<_> = completions.unanswered().into_iter().map(|r| (r.run_id, r.snapshot_id)).collect();
        runs.sort();
        runs
    }

    #[test]
    fn completions_are_unanswered_from_queued_until_forgotten() {
        let completions = Completions::default();
        completions.push(success("run_a"));
        completions.push(success("run_b"));
        completions.push(cancellation("run_b".into(), "s2".into()));
        let batch = completions.take_batch();
        assert_eq!(batch.len(), 3);
        // Taken to be sent, they are in flight and still need heartbeats.
        let all =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(r, s)| (r.to_string(), s.to_string())).collect::<Vec<_>>();
        assert_eq!(unanswered(&completions), all(&[("run_a", "s1"), ("run_b", "s1"), ("run_b", "s2")]));
        completions.forget(&[run("run_b", "s1"), run("run_c", "s1"), run("run_a", "s9")]);
        assert_eq!(unanswered(&completions), all(&[("run_a", "s1"), ("run_b", "s2")]));
        completions.forget(&[run("run_a", "s1"), run("run_b", "s2")]);
        assert!(completions.unanswered().is_empty());
        assert!(completions.unanswered.lock().is_empty(), "no empty entries are left behind");
    }

    #[test]
    fn stale_pending_cancel_is_confirmed_as_cancellation() {
        let completions = Completions::default();
        let result = |run_id: &str, status| CompletionResult {
            run_id: run_id.into(),
            outcome: CompletionOutcome::Stale,
            status: None,
            current_snapshot: Some(SnapshotRef { id: "s2".into(), execution_status: status }),
        };
        let response = CompleteResponse {
            results: vec![result("run_a", ExecutionStatus::PendingCancel), result("run_b", ExecutionStatus::Queued)],
        };
        answered(&completions, vec![success("run_a"), success("run_b")], response);
        let resent = completions.take_batch();
        assert_eq!(resent.len(), 1);
        assert_eq!((resent[0].run_id.as_str(), resent[0].snapshot_id.as_str()), ("run_a", "s2"));
        assert!(resent[0].skip_retrying);
        assert_eq!(resent[0].error.as_ref().and_then(TaskRunError::code), Some(ErrorCode::TaskRunCancelled));
        // The cancellation is unanswered in turn, so its run stays covered by heartbeats.
        assert_eq!(unanswered(&completions), [("run_a".to_string(), "s2".to_string())]);
    }

    #[test]
    fn refused_batches_split_and_refused_outputs_become_errors() {
        let halves = refused(vec![success("a"), success("b"), success("c")], 413, "too large");
        assert_eq!(halves.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
        let replaced = refused(vec![success("a")], 413, "too large");
        assert_eq!(replaced[0][0].error.as_ref().and_then(TaskRunError::code), Some(ErrorCode::TaskOutputError));
        assert!(refused(replaced.into_iter().flatten().collect(), 422, "bad").is_empty());
        assert!(refused(vec![success("a"), success("b")], 409, "conflict").is_empty());
    }
}
