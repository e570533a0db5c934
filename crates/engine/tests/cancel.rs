//! Cancel in every state a run can be in.

mod common;

use std::time::Duration;

use common::{Harness, task};
use stint_engine::{Cancelled, Completed, Config, HeartbeatVerdict, Outcome, TaskSpec, Timeouts};
use stint_types::{ErrorCode, ExecutionStatus, RunStatus, TaskRunError};

#[tokio::test]
async fn a_queued_run_is_cancelled_at_once_and_leaves_its_queue() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::Now);
    let cancelled = h.run(&h.prod, &run.id).await;
    assert_eq!(cancelled.status, RunStatus::Canceled);
    assert_eq!(cancelled.execution_status, ExecutionStatus::Finished);
    assert!(h.dequeue(&worker, 10).await.is_empty());
}

#[tokio::test]
async fn a_run_waiting_for_its_retry_is_cancelled_at_once() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    h.fail(&h.prod, &attempt, "boom").await;
    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::Now);
    h.advance(60_000);
    assert!(h.dequeue(&worker, 10).await.is_empty());
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Canceled);
}

#[tokio::test]
async fn an_executing_run_is_cancelled_through_its_worker() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);

    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::Signalled);
    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::Signalled, "cancel twice is harmless");
    let pending = h.run(&h.prod, &run.id).await;
    assert_eq!(pending.execution_status, ExecutionStatus::PendingCancel);
    assert_eq!(pending.status, RunStatus::Executing, "the public status changes when the worker confirms");

    let verdicts = h.engine.heartbeat(&worker, vec![(attempt.id.clone(), attempt.snapshot_id.clone())]).await.unwrap();
    assert_eq!(verdicts, vec![HeartbeatVerdict::Cancel(pending.snapshot_id.clone())]);

    // The worker's old snapshot no longer moves the run; the one it was told does.
    let stale = h.succeed(&h.prod, &attempt, "1").await;
    assert_eq!(
        stale,
        Completed::Stale { current: pending.snapshot_id.clone(), status: ExecutionStatus::PendingCancel }
    );
    let error = TaskRunError::internal(ErrorCode::TaskRunCancelled, "stopped");
    let confirmed = h.complete(&h.prod, &pending, Outcome::Failure { error, skip_retrying: false }).await;
    assert_eq!(confirmed, Completed::Finished(RunStatus::Canceled));
    let done = h.run(&h.prod, &run.id).await;
    assert_eq!(done.status, RunStatus::Canceled);
    assert_eq!(done.heartbeat_deadline, None);
}

#[tokio::test]
async fn a_cancel_the_worker_never_confirms_is_finished_after_the_timeout() {
    let config = Config {
        timeouts: Timeouts { pending_cancel: Duration::from_secs(5), ..Timeouts::default() },
        ..Config::default()
    };
    let h = Harness::with_config(config).await;
    let worker = h.worker(&h.prod, vec![TaskSpec { concurrency_limit: Some(1), ..task("t") }]).await;
    let run = h.trigger(&h.prod, "t").await;
    let next = h.trigger(&h.prod, "t").await;
    h.dequeue(&worker, 1).await;
    h.engine.cancel(&h.prod, &run.id).await.unwrap();
    assert!(h.dequeue(&worker, 1).await.is_empty(), "the cancelled run holds its slot until it stops");
    h.advance(4_999);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 0);
    h.advance(1);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 1);
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Canceled);
    assert_eq!(h.dequeue(&worker, 1).await.remove(0).id, next.id, "and then gives it back");
}

#[tokio::test]
async fn a_finished_run_stays_as_it_is() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    h.succeed(&h.prod, &attempt, "42").await;
    let before = h.run(&h.prod, &run.id).await;
    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::AlreadyFinished(RunStatus::Completed));
    assert_eq!(h.run(&h.prod, &run.id).await, before);
}

#[tokio::test]
async fn cancel_of_another_environments_run_is_not_found() {
    let h = Harness::new().await;
    let run = h.trigger(&h.prod, "t").await;
    let err = h.engine.cancel(&h.dev, &run.id).await.unwrap_err();
    assert!(matches!(err, stint_engine::Error::NotFound(_)));
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Queued);
}
