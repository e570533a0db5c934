//! Completions: finished attempts wait in one queue and a single flusher sends all that are
//! pending in one call. While a call is in flight new completions gather, so batches grow with
//! load and an idle worker sends each completion at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use stint_protocol::types::{ErrorCode, ExecutionStatus, TaskRunError};
use stint_protocol::worker::{CompleteRequest, CompleteResponse, Completion, CompletionOutcome, RunRef};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::session::{CallFailure, Session};

/// Most completions in one call.
const MAX_BATCH: usize = 500;
/// How long one completion call may take.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(60);

/// Completions waiting to be sent.
#[derive(Default)]
pub(crate) struct Completions {
    pending: Mutex<Vec<Completion>>,
    wake: Notify,
    closed: AtomicBool,
}

impl Completions {
    /// Queues a completion and wakes the flusher.
    pub(crate) fn push(&self, completion: Completion) {
        self.pending.lock().push(completion);
        self.wake.notify_one();
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
        // Batches the server refuses as a whole are split until the offending completion is
        // alone; see `refused`.
        let mut work = vec![batch];
        while let Some(batch) = work.pop() {
            let request = CompleteRequest { completions: batch };
            match session
                .post_until_answered::<_, CompleteResponse>("complete", &request, COMPLETE_TIMEOUT, give_up)
                .await
            {
                Ok(response) => answered(completions, request.completions, response),
                Err(CallFailure::GaveUp) => {
                    tracing::error!(
                        completions = request.completions.len() + work.iter().map(Vec::len).sum::<usize>(),
                        "gave up sending completions; the server will retry these runs after their heartbeat timeout"
                    );
                    return Ok(());
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
    }
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
                    completions.push(cancellation(completion.run_id, current.id));
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
        return vec![vec![Completion::failure(run, error, true)]];
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
