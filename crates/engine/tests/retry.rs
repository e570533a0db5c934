//! Failed attempts are retried after Trigger.dev's delays, until attempts run out.

mod common;

use common::{Harness, START, plain_retry, task};
use stint_engine::{Completed, Outcome, TaskSpec, TriggerParams};
use stint_types::{ErrorCode, RetryOptions, RunStatus, TaskRunError, Timestamp};

#[tokio::test]
async fn retry_delays_follow_the_formula_until_attempts_run_out() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("flaky")]).await;
    let run = h.trigger(&h.prod, "flaky").await;

    let first = h.dequeue(&worker, 10).await.remove(0);
    assert_eq!(first.attempt_number, 1);
    assert_eq!(first.retry, Some(plain_retry(3)), "retry settings are frozen at the first start");
    assert_eq!(h.fail(&h.prod, &first, "one").await, Completed::Retrying { at: Timestamp(START.0 + 1_000) });
    let queued = h.run(&h.prod, &run.id).await;
    assert_eq!(queued.status, RunStatus::Queued);
    assert_eq!(queued.error.as_ref().map(|e| e.to_serialized().message), Some("one".to_string()));

    h.advance(999);
    assert!(h.dequeue(&worker, 10).await.is_empty(), "not before the delay");
    h.advance(1);
    let second = h.dequeue(&worker, 10).await.remove(0);
    assert_eq!(second.attempt_number, 2);
    assert_eq!(h.fail(&h.prod, &second, "two").await, Completed::Retrying { at: Timestamp(START.0 + 3_000) });

    h.advance(2_000);
    let third = h.dequeue(&worker, 10).await.remove(0);
    assert_eq!(third.attempt_number, 3);
    assert_eq!(h.fail(&h.prod, &third, "three").await, Completed::Finished(RunStatus::Failed));
    let failed = h.run(&h.prod, &run.id).await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error.unwrap().to_serialized().message, "three");
    assert_eq!(failed.attempt_number, 3);
    assert!(failed.finished_at.is_some());
}

#[tokio::test]
async fn randomized_delay_stays_within_one_to_two_times_the_base() {
    let h = Harness::new().await;
    let retry = RetryOptions { randomize: true, ..plain_retry(2) };
    let worker = h.worker(&h.prod, vec![TaskSpec { retry: Some(retry), ..task("jittery") }]).await;
    for _ in 0..20 {
        h.trigger(&h.prod, "jittery").await;
    }
    for run in h.dequeue(&worker, 20).await {
        let Completed::Retrying { at } = h.fail(&h.prod, &run, "x").await else { panic!("expected a retry") };
        let delay = at.0 - START.0;
        assert!((1_000..2_000).contains(&delay), "delay {delay} outside [1000, 2000)");
    }
}

#[tokio::test]
async fn trigger_max_attempts_overrides_the_task_and_success_clears_the_error() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let once = h
        .engine
        .trigger(&h.prod, TriggerParams { max_attempts: Some(1), ..TriggerParams::new("t", "1") })
        .await
        .unwrap()
        .run;
    let run = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(run.id, once.id);
    assert_eq!(h.fail(&h.prod, &run, "only try").await, Completed::Finished(RunStatus::Failed));

    let twice = h
        .engine
        .trigger(&h.prod, TriggerParams { max_attempts: Some(2), ..TriggerParams::new("t", "2") })
        .await
        .unwrap()
        .run;
    let first = h.dequeue(&worker, 1).await.remove(0);
    h.fail(&h.prod, &first, "first").await;
    h.advance(1_000);
    let second = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(h.succeed(&h.prod, &second, "{\"ok\":true}").await, Completed::Finished(RunStatus::Completed));
    let done = h.run(&h.prod, &twice.id).await;
    assert_eq!(done.output.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(done.error, None);
    assert_eq!(done.attempt_number, 2);
}

#[tokio::test]
async fn errors_that_must_not_be_retried_end_the_run_at_once() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.trigger(&h.prod, "t").await;
    h.trigger(&h.prod, "t").await;
    let runs = h.dequeue(&worker, 2).await;

    let error = TaskRunError::StringError { raw: "bad input".into() };
    let skipped = h.complete(&h.prod, &runs[0], Outcome::Failure { error, skip_retrying: true }).await;
    assert_eq!(skipped, Completed::Finished(RunStatus::Failed));

    let error = TaskRunError::internal(ErrorCode::MaxDurationExceeded, "ran 5s, limit 1s");
    let timed_out = h.complete(&h.prod, &runs[1], Outcome::Failure { error, skip_retrying: false }).await;
    assert_eq!(timed_out, Completed::Finished(RunStatus::TimedOut));
}
