//! Idempotency keys: one run per environment, task and key while the key applies.

mod common;

use std::time::Duration;

use common::{Harness, task};
use stint_engine::{Idempotency, TriggerParams, Triggered};
use stint_store::EnvironmentRow;
use stint_types::RunStatus;

async fn trigger(h: &Harness, env: &EnvironmentRow, task: &str, key: &str, ttl_s: u64) -> Triggered {
    let idempotency = Some(Idempotency { key: key.into(), ttl: Duration::from_secs(ttl_s) });
    h.engine.trigger(env, TriggerParams { idempotency, ..TriggerParams::new(task, "1") }).await.unwrap()
}

#[tokio::test]
async fn a_key_names_one_run_per_environment_and_task() {
    let h = Harness::new().await;
    let first = trigger(&h, &h.prod, "t", "order-1", 3_600).await;
    assert!(!first.cached);
    assert_eq!(first.run.idempotency_key.as_deref(), Some("order-1"));
    let again = trigger(&h, &h.prod, "t", "order-1", 3_600).await;
    assert!(again.cached);
    assert_eq!(again.run.id, first.run.id);
    assert_ne!(trigger(&h, &h.prod, "other", "order-1", 3_600).await.run.id, first.run.id, "another task");
    assert_ne!(trigger(&h, &h.dev, "t", "order-1", 3_600).await.run.id, first.run.id, "another environment");
    assert_ne!(trigger(&h, &h.prod, "t", "order-2", 3_600).await.run.id, first.run.id, "another key");
}

#[tokio::test]
async fn a_key_applies_until_its_time_passes() {
    let h = Harness::new().await;
    let first = trigger(&h, &h.prod, "t", "k", 60).await;
    h.advance(59_999);
    assert_eq!(trigger(&h, &h.prod, "t", "k", 60).await.run.id, first.run.id);
    h.advance(1);
    let second = trigger(&h, &h.prod, "t", "k", 60).await;
    assert!(!second.cached);
    assert_ne!(second.run.id, first.run.id);
    assert_eq!(h.run(&h.prod, &first.run.id).await.idempotency_key, None, "the old run gave the key up");
}

#[tokio::test]
async fn a_failed_run_gives_its_key_up_and_a_finished_or_cancelled_one_keeps_it() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let failing = trigger(&h, &h.prod, "t", "fails", 3_600).await.run;
    let attempt = h.engine.dequeue(&worker, 1, Duration::ZERO).await.unwrap().remove(0);
    let error = stint_types::TaskRunError::StringError { raw: "no".into() };
    h.complete(&h.prod, &attempt, stint_engine::Outcome::Failure { error, skip_retrying: true }).await;
    assert_eq!(h.run(&h.prod, &failing.id).await.status, RunStatus::Failed);
    let retried = trigger(&h, &h.prod, "t", "fails", 3_600).await;
    assert!(!retried.cached, "a failed run's key makes a new run");

    let cancelled = trigger(&h, &h.prod, "t", "cancelled", 3_600).await.run;
    h.engine.cancel(&h.prod, &cancelled.id).await.unwrap();
    assert_eq!(trigger(&h, &h.prod, "t", "cancelled", 3_600).await.run.id, cancelled.id);

    let done = trigger(&h, &h.prod, "t", "done", 3_600).await.run;
    let attempt = h.engine.dequeue(&worker, 5, Duration::ZERO).await.unwrap();
    for run in attempt.iter().filter(|r| r.id == done.id) {
        h.succeed(&h.prod, run, "1").await;
    }
    let again = trigger(&h, &h.prod, "t", "done", 3_600).await;
    assert!(again.cached);
    assert_eq!(again.run.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_triggers_with_one_key_make_one_run() {
    let h = std::sync::Arc::new(Harness::new().await);
    let mut calls = Vec::new();
    for _ in 0..50 {
        let h = h.clone();
        calls.push(tokio::spawn(async move { trigger(&h, &h.prod, "t", "same", 3_600).await }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for call in calls {
        let triggered = call.await.unwrap();
        fresh += usize::from(!triggered.cached);
        ids.insert(triggered.run.id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1, "one trigger made the run, the others were answered with it");
}

#[tokio::test]
async fn an_expired_run_gives_its_key_up() {
    let h = Harness::new().await;
    let params = |key: &str| TriggerParams {
        idempotency: Some(Idempotency { key: key.into(), ttl: Duration::from_secs(86_400) }),
        ttl_secs: Some(10),
        ..TriggerParams::new("t", "1")
    };
    let first = h.engine.trigger(&h.prod, params("k")).await.unwrap();
    h.advance(10_000);
    assert_eq!(h.engine.run_due().await.unwrap().expired, 1);
    assert_eq!(h.run(&h.prod, &first.run.id).await.status, RunStatus::Expired);
    let second = h.engine.trigger(&h.prod, params("k")).await.unwrap();
    assert!(!second.cached);
    assert_ne!(second.run.id, first.run.id);
}

#[tokio::test]
async fn a_reset_key_makes_the_next_trigger_a_new_run() {
    let h = Harness::new().await;
    let first = trigger(&h, &h.prod, "t", "k", 3_600).await;
    let error = h.engine.reset_idempotency_key(&h.prod, "other", "k").await.unwrap_err();
    assert!(matches!(error, stint_engine::Error::NotFound(_)), "another task's key: {error:?}");
    let error = h.engine.reset_idempotency_key(&h.dev, "t", "k").await.unwrap_err();
    assert!(matches!(error, stint_engine::Error::NotFound(_)), "another environment's key: {error:?}");
    assert_eq!(h.engine.reset_idempotency_key(&h.prod, "t", "k").await.unwrap(), first.run.id);
    let second = trigger(&h, &h.prod, "t", "k", 3_600).await;
    assert!(!second.cached);
    assert_ne!(second.run.id, first.run.id);
}
