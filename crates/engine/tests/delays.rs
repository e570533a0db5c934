//! Delayed runs, reschedule and TTL expiry, on a manual clock.

mod common;

use std::time::Duration;

use common::{Harness, START, task};
use stint_engine::{Cancelled, Delay, TriggerParams};
use stint_store::RunRow;
use stint_types::{RunStatus, TaskRunError};

fn params(delay: Option<Delay>, ttl_secs: Option<u32>) -> TriggerParams {
    TriggerParams { delay, ttl_secs, ..TriggerParams::new("t", "1") }
}

async fn trigger(h: &Harness, params: TriggerParams) -> RunRow {
    h.engine.trigger(&h.prod, params).await.unwrap().run
}

#[tokio::test]
async fn a_delayed_run_is_not_started_before_its_time() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = trigger(&h, params(Some(Delay::For(Duration::from_secs(60))), None)).await;
    assert_eq!(run.status, RunStatus::Delayed);
    assert_eq!(run.delay_until, Some(START.plus(Duration::from_secs(60))));
    assert!(h.dequeue(&worker, 10).await.is_empty());

    h.advance(59_999);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 0);
    assert!(h.dequeue(&worker, 10).await.is_empty(), "not before its time");
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Delayed);

    h.advance(1);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 1);
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Queued);
    let taken = h.dequeue(&worker, 10).await;
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&run.id]);
    let history = h.engine.snapshots(&h.prod, &run.id).await.unwrap();
    let said: Vec<&str> = history.iter().map(|s| s.description.as_str()).collect();
    assert!(said[0].starts_with("Run was delayed until"), "{said:?}");
    assert_eq!(said[1], "Run was queued: its delay passed");
}

#[tokio::test]
async fn a_due_delayed_run_goes_ahead_of_runs_triggered_after_its_time() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let delayed = trigger(&h, params(Some(Delay::For(Duration::from_secs(10))), None)).await;
    h.advance(15_000);
    let later = trigger(&h, params(None, None)).await;
    h.engine.run_due().await.unwrap();
    let taken = h.dequeue(&worker, 1).await;
    assert_eq!(taken[0].id, delayed.id, "queued as of its due time, before {}", later.id);
}

#[tokio::test]
async fn a_date_sets_the_due_time_and_a_past_date_means_no_delay() {
    let h = Harness::new().await;
    let at = START.plus(Duration::from_secs(3_600));
    let run = trigger(&h, params(Some(Delay::Until(at)), None)).await;
    assert_eq!((run.status, run.delay_until), (RunStatus::Delayed, Some(at)));
    let past = trigger(&h, params(Some(Delay::Until(START.plus_millis(-1))), None)).await;
    assert_eq!((past.status, past.delay_until), (RunStatus::Queued, None));
    let zero = trigger(&h, params(Some(Delay::For(Duration::ZERO)), None)).await;
    assert_eq!(zero.status, RunStatus::Queued);
}

#[tokio::test]
async fn reschedule_moves_a_delayed_run_and_refuses_any_other() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = trigger(&h, params(Some(Delay::For(Duration::from_secs(3_600))), None)).await;
    let moved = h.engine.reschedule(&h.prod, &run.id, Delay::For(Duration::from_secs(5))).await.unwrap();
    assert_eq!(moved.delay_until, Some(START.plus(Duration::from_secs(5))));
    assert_eq!(moved.status, RunStatus::Delayed);
    h.advance(5_000);
    h.engine.run_due().await.unwrap();
    assert_eq!(h.dequeue(&worker, 1).await.len(), 1);

    let error = h.engine.reschedule(&h.prod, &run.id, Delay::For(Duration::from_secs(5))).await.unwrap_err();
    assert!(matches!(&error, stint_engine::Error::Invalid(m) if m.contains("only a delayed run")), "{error:?}");
    let foreign = trigger(&h, params(Some(Delay::For(Duration::from_secs(60))), None)).await;
    let error = h.engine.reschedule(&h.dev, &foreign.id, Delay::For(Duration::from_secs(1))).await.unwrap_err();
    assert!(matches!(error, stint_engine::Error::NotFound(_)), "another environment's run is missing");
}

#[tokio::test]
async fn a_cancelled_delayed_run_is_never_queued() {
    let h = Harness::new().await;
    let run = trigger(&h, params(Some(Delay::For(Duration::from_secs(1))), None)).await;
    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::Now);
    h.advance(2_000);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 0);
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Canceled);
}

#[tokio::test]
async fn a_run_not_started_within_its_ttl_expires() {
    let h = Harness::new().await;
    let run = trigger(&h, params(None, Some(30))).await;
    assert_eq!(run.ttl_expires_at, Some(START.plus(Duration::from_secs(30))));
    h.advance(29_999);
    assert_eq!(h.engine.run_due().await.unwrap().expired, 0);
    h.advance(1);
    assert_eq!(h.engine.run_due().await.unwrap().expired, 1);
    let expired = h.run(&h.prod, &run.id).await;
    assert_eq!(expired.status, RunStatus::Expired);
    assert_eq!(expired.finished_at, Some(START.plus(Duration::from_secs(30))));
    assert_eq!(
        expired.error,
        Some(TaskRunError::StringError { raw: "Run expired because the TTL (30s) was reached".into() })
    );
    assert_eq!(expired.queue_score, None, "out of its queue");
}

#[tokio::test]
async fn a_dequeue_after_the_ttl_expires_the_run_instead_of_starting_it() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = trigger(&h, params(None, Some(30))).await;
    let fresh = trigger(&h, params(None, None)).await;
    h.advance(31_000);
    let taken = h.dequeue(&worker, 10).await;
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&fresh.id]);
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Expired);
}

#[tokio::test]
async fn a_started_run_never_expires() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = trigger(&h, params(None, Some(30))).await;
    let started = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(started.ttl_expires_at, None);
    h.advance(60_000);
    h.engine.heartbeat(&worker, vec![(started.id.clone(), started.snapshot_id.clone())]).await.unwrap();
    assert_eq!(h.engine.run_due().await.unwrap().expired, 0);
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Executing);
}

#[tokio::test]
async fn the_ttl_of_a_delayed_run_starts_when_it_is_queued() {
    let h = Harness::new().await;
    let run = trigger(&h, params(Some(Delay::For(Duration::from_secs(60))), Some(30))).await;
    assert_eq!(run.ttl_expires_at, None);
    h.advance(60_000);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 1);
    h.advance(29_000);
    assert_eq!(h.engine.run_due().await.unwrap().expired, 0);
    h.advance(1_000);
    assert_eq!(h.engine.run_due().await.unwrap().expired, 1);
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Expired);
}

#[tokio::test]
async fn development_runs_get_a_ten_minute_ttl_unless_told_otherwise() {
    let h = Harness::new().await;
    let dev = h.engine.trigger(&h.dev, params(None, None)).await.unwrap().run;
    assert_eq!(dev.ttl_secs, Some(600));
    let off = h.engine.trigger(&h.dev, params(None, Some(0))).await.unwrap().run;
    assert_eq!((off.ttl_secs, off.ttl_expires_at), (None, None));
    let prod = trigger(&h, params(None, None)).await;
    assert_eq!(prod.ttl_secs, None, "no default outside development");
}

#[tokio::test]
async fn a_task_ttl_applies_when_the_trigger_sets_none() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![stint_engine::TaskSpec { ttl_secs: Some(45), ..task("t") }]).await;
    let defaulted = trigger(&h, params(None, None)).await;
    assert_eq!(defaulted.ttl_secs, Some(45));
    let own = trigger(&h, params(None, Some(5))).await;
    assert_eq!(own.ttl_secs, Some(5), "the trigger's own TTL wins");
    let off = trigger(&h, params(None, Some(0))).await;
    assert_eq!(off.ttl_secs, None, "a TTL of 0 turns the task's off");
    h.worker(&h.dev, vec![stint_engine::TaskSpec { ttl_secs: Some(45), ..task("t") }]).await;
    let dev = h.engine.trigger(&h.dev, params(None, None)).await.unwrap().run;
    assert_eq!(dev.ttl_secs, Some(45), "the task's TTL wins over the development default");
}
