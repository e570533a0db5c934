//! Debounced triggers and request idempotency keys, on a manual clock.

mod common;

use std::time::Duration;

use common::{Harness, START, task};
use stint_engine::{Debounce, DebounceMode, TriggerParams, Triggered};
use stint_types::{RunStatus, Timestamp};

fn debounced(payload: &str, mode: DebounceMode, max_delay: Option<u64>) -> TriggerParams {
    let debounce = Debounce {
        key: "user-1".into(),
        delay: Duration::from_secs(5),
        mode,
        max_delay: max_delay.map(Duration::from_secs),
    };
    TriggerParams { debounce: Some(debounce), tags: vec![format!("tag-{payload}")], ..TriggerParams::new("t", payload) }
}

async fn trigger(h: &Harness, params: TriggerParams) -> Triggered {
    h.engine.trigger(&h.prod, params).await.unwrap()
}

#[tokio::test]
async fn leading_keeps_the_first_input_and_pushes_the_run_back() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let first = trigger(&h, debounced("1", DebounceMode::Leading, None)).await;
    assert!(!first.cached);
    assert_eq!(first.run.status, RunStatus::Delayed);
    assert_eq!(first.run.delay_until, Some(START.plus(Duration::from_secs(5))));

    h.advance(3_500);
    let second = trigger(&h, debounced("2", DebounceMode::Leading, None)).await;
    assert!(second.cached);
    assert_eq!(second.run.id, first.run.id);
    // 3.5 s + 5 s, rounded up to the next whole second.
    assert_eq!(second.run.delay_until, Some(START.plus(Duration::from_secs(9))));
    assert_eq!(second.run.payload, "1");
    assert_eq!(second.run.tags, vec!["tag-1".to_string()]);

    h.advance(5_000);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 0, "pushed back: not due yet");
    h.advance(500);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 1);
    let started = h.dequeue(&worker, 10).await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].payload, "1");

    let third = trigger(&h, debounced("3", DebounceMode::Leading, None)).await;
    assert!(!third.cached, "once the run is queued a trigger makes a new one");
    assert_ne!(third.run.id, first.run.id);
}

#[tokio::test]
async fn trailing_takes_the_latest_input() {
    let h = Harness::new().await;
    let first = trigger(&h, debounced("1", DebounceMode::Trailing, None)).await;
    h.advance(1_000);
    let params = TriggerParams {
        max_attempts: Some(7),
        machine: Some("large-1x".into()),
        metadata: Some("{\"step\":2}".into()),
        ..debounced("2", DebounceMode::Trailing, None)
    };
    let second = trigger(&h, params).await;
    assert_eq!(second.run.id, first.run.id);
    let stored = h.run(&h.prod, &first.run.id).await;
    assert_eq!(stored.payload, "2");
    assert_eq!(stored.tags, vec!["tag-2".to_string()]);
    assert_eq!(stored.max_attempts, Some(7));
    assert_eq!(stored.machine.as_deref(), Some("large-1x"));
    assert_eq!(stored.metadata.as_deref(), Some("{\"step\":2}"));
    let tagged = h
        .engine
        .runs(&h.prod, stint_store::RunListParams { tags: vec!["tag-2".into()], limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1);
}

#[tokio::test]
async fn max_delay_leaves_the_run_to_fire_and_starts_a_new_one() {
    let h = Harness::new().await;
    let first = trigger(&h, debounced("1", DebounceMode::Leading, Some(8))).await;
    h.advance(2_000);
    let pushed = trigger(&h, debounced("2", DebounceMode::Leading, Some(8))).await;
    assert_eq!(pushed.run.id, first.run.id, "7 s after creation is within 8 s");
    h.advance(2_000);
    let fresh = trigger(&h, debounced("3", DebounceMode::Leading, Some(8))).await;
    assert!(!fresh.cached);
    assert_ne!(fresh.run.id, first.run.id, "9 s after creation would pass the 8 s maximum");
    let old = h.run(&h.prod, &first.run.id).await;
    assert_eq!(
        (old.status, old.delay_until, old.debounce_key),
        (RunStatus::Delayed, Some(START.plus(Duration::from_secs(7))), None)
    );
    h.advance(1_000);
    let onto_new = trigger(&h, debounced("4", DebounceMode::Leading, Some(8))).await;
    assert_eq!(onto_new.run.id, fresh.run.id, "the new run holds the key now");
    h.advance(10_000);
    assert_eq!(h.engine.run_due().await.unwrap().queued, 2);
}

#[tokio::test]
async fn keys_are_per_task_and_environment() {
    let h = Harness::new().await;
    let a = trigger(&h, debounced("1", DebounceMode::Leading, None)).await;
    let other_task = TriggerParams { task_id: "u".into(), ..debounced("1", DebounceMode::Leading, None) };
    let b = trigger(&h, other_task).await;
    let c = h.engine.trigger(&h.dev, debounced("1", DebounceMode::Leading, None)).await.unwrap();
    assert_ne!(a.run.id, b.run.id);
    assert_ne!(a.run.id, c.run.id);
}

#[tokio::test]
async fn a_request_sent_again_answers_the_first_answer_for_a_day() {
    let h = Harness::new().await;
    let request = |key: &str| TriggerParams { request_key: Some(key.into()), ..TriggerParams::new("t", "1") };
    let first = trigger(&h, request("req-1")).await;
    let again = trigger(&h, request("req-1")).await;
    assert_eq!((again.run.id.clone(), again.cached), (first.run.id.clone(), false));
    let other = trigger(&h, request("req-2")).await;
    assert_ne!(other.run.id, first.run.id);
    let foreign = h.engine.trigger(&h.dev, request("req-1")).await.unwrap();
    assert_ne!(foreign.run.id, first.run.id, "keys are per environment");

    h.clock.set(Timestamp(START.millis() + 86_400_000));
    let later = trigger(&h, request("req-1")).await;
    assert_ne!(later.run.id, first.run.id, "a day later the key is forgotten");
    h.engine.run_due().await.unwrap();
}
