//! Limits beyond a queue's own count: each concurrency key gets the queue's limit, a queue may
//! cap its keys together, and an environment caps its queues (limit × burst factor) and can be
//! paused.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, per_key, task};
use stint_engine::{Error, TaskSpec};
use stint_store::{EnvLimits, RunRow};
use stint_types::RunStatus;

fn limited(id: &str, limit: u32) -> TaskSpec {
    TaskSpec { concurrency_limit: Some(limit), ..task(id) }
}

async fn set_env(h: &Harness, limit: Option<u32>, burst_factor: f64, paused: bool) {
    let limits = EnvLimits { concurrency_limit: limit, burst_factor, paused };
    h.engine.set_environment_limits(&h.prod.id, limits).await.unwrap();
}

#[tokio::test]
async fn each_concurrency_key_gets_the_queue_limit() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![limited("t", 2)]).await;
    h.trigger_keyed("t", Some("a"), 5).await;
    h.trigger_keyed("t", Some("b"), 5).await;
    h.trigger_keyed("t", None, 5).await;
    let taken = h.dequeue(&worker, 50).await;
    assert_eq!(per_key(&taken), HashMap::from([("a".into(), 2), ("b".into(), 2), ("-".into(), 2)]));
    assert!(h.dequeue(&worker, 50).await.is_empty(), "every lane is at its limit");
    let done = taken.iter().find(|r| r.concurrency_key.as_deref() == Some("b")).unwrap();
    h.succeed(&h.prod, done, "1").await;
    let next = h.dequeue(&worker, 50).await;
    assert_eq!(per_key(&next), HashMap::from([("b".into(), 1)]), "the slot b gave back goes to b");
}

#[tokio::test]
async fn full_keys_do_not_hide_keys_with_room() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![limited("t", 1)]).await;
    for key in ["a", "b", "c", "d"] {
        h.trigger_keyed("t", Some(key), 3).await;
    }
    assert_eq!(h.dequeue(&worker, 2).await.len(), 2);
    // Two keys are full; the next dequeue of two finds the other two.
    let next = h.dequeue(&worker, 2).await;
    assert_eq!(next.len(), 2, "{:?}", per_key(&next));
    assert!(h.dequeue(&worker, 10).await.is_empty());
}

#[tokio::test]
async fn a_combined_limit_caps_all_keys_together() {
    let h = Harness::new().await;
    let spec = TaskSpec { combined_limit: Some(3), ..limited("t", 2) };
    let worker = h.worker(&h.prod, vec![spec]).await;
    h.trigger_keyed("t", Some("a"), 5).await;
    h.trigger_keyed("t", Some("b"), 5).await;
    let taken = h.dequeue(&worker, 50).await;
    assert_eq!(taken.len(), 3);
    assert!(per_key(&taken).values().all(|n| *n <= 2));
    assert!(h.dequeue(&worker, 50).await.is_empty());
}

#[tokio::test]
async fn a_combined_limit_below_the_per_key_limit_is_refused() {
    let h = Harness::new().await;
    let spec = TaskSpec { combined_limit: Some(1), ..limited("t", 2) };
    let refused = h.engine.register_worker(&h.prod, "1".into(), vec![spec]).await.unwrap_err();
    assert!(matches!(&refused, Error::Invalid(m) if m.contains("combinedConcurrencyLimit")), "{refused:?}");
}

#[tokio::test]
async fn the_environment_admits_its_limit_times_the_burst_factor_and_caps_each_queue_at_its_limit() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("x"), task("y")]).await;
    set_env(&h, Some(2), 1.5, false).await;
    h.trigger_keyed("x", None, 5).await;
    h.trigger_keyed("y", None, 5).await;
    let taken = h.dequeue(&worker, 50).await;
    assert_eq!(taken.len(), 3, "floor(2 × 1.5)");
    let mut by_task = HashMap::<&str, usize>::new();
    for run in &taken {
        *by_task.entry(run.task_id.as_str()).or_default() += 1;
    }
    assert!(by_task.values().all(|n| *n <= 2), "no queue runs more than the base limit: {by_task:?}");
    assert!(h.dequeue(&worker, 50).await.is_empty());
    let usage = h.engine.environment_limits(&h.prod.id).await.unwrap();
    assert_eq!(usage.running, 3);
    h.succeed(&h.prod, &taken[0], "1").await;
    assert_eq!(h.dequeue(&worker, 50).await.len(), 1);
    set_env(&h, None, 2.0, false).await;
    assert_eq!(h.dequeue(&worker, 50).await.len(), 6, "without a limit the rest start");
}

#[tokio::test]
async fn a_paused_environment_starts_nothing_until_resumed() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    set_env(&h, None, 2.0, true).await;
    h.trigger_keyed("t", None, 3).await;
    assert!(h.dequeue(&worker, 10).await.is_empty());
    set_env(&h, None, 2.0, false).await;
    assert_eq!(h.dequeue(&worker, 10).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_handoff_in_a_paused_or_limited_environment_or_for_a_keyed_run_of_a_limited_queue() {
    let h = std::sync::Arc::new(Harness::new().await);
    let worker = h.worker(&h.prod, vec![limited("t", 5)]).await;
    let waiting = {
        let (h, worker) = (h.clone(), worker.clone());
        tokio::spawn(async move { h.engine.dequeue(&worker, 10, Duration::from_millis(300)).await.unwrap() })
    };
    h.until_waiting(1).await;
    let keyed = h.trigger_keyed("t", Some("a"), 1).await.remove(0);
    assert_eq!(keyed.status, RunStatus::Queued, "a keyed run of a limited queue goes through the queue");
    let woken = waiting.await.unwrap();
    assert_eq!(woken.len(), 1, "the waiting worker was woken and took it from the queue");

    set_env(&h, None, 2.0, true).await;
    let waiting = {
        let (h, worker) = (h.clone(), worker.clone());
        tokio::spawn(async move { h.engine.dequeue(&worker, 10, Duration::from_millis(300)).await.unwrap() })
    };
    h.until_waiting(1).await;
    let run = h.trigger_keyed("t", None, 1).await.remove(0);
    assert_eq!(run.status, RunStatus::Queued, "a paused environment hands nothing");
    assert!(waiting.await.unwrap().is_empty());
}

#[tokio::test]
async fn environment_limits_are_checked() {
    let h = Harness::new().await;
    let bad = [
        EnvLimits { concurrency_limit: Some(1), burst_factor: 0.5, paused: false },
        EnvLimits { concurrency_limit: Some(1), burst_factor: f64::NAN, paused: false },
        EnvLimits { concurrency_limit: Some(1_000_000), burst_factor: 2.0, paused: false },
    ];
    for limits in bad {
        let refused = h.engine.set_environment_limits(&h.prod.id, limits).await.unwrap_err();
        assert!(matches!(refused, Error::Invalid(_)), "{limits:?}: {refused:?}");
    }
    let usage = h.engine.environment_limits(&h.prod.id).await.unwrap();
    assert_eq!(usage.limits, EnvLimits::default(), "nothing refused was stored");
}

#[tokio::test]
async fn per_key_and_base_limits_hold_together_across_queues() {
    let h = Harness::new().await;
    let throttled = TaskSpec { queue: Some("throttled".into()), ..limited("throttled", 2) };
    let worker = h.worker(&h.prod, vec![throttled, task("sleep")]).await;
    set_env(&h, Some(4), 100.0, false).await;
    for _ in 0..8 {
        h.trigger_keyed("throttled", Some("k1"), 1).await;
        h.trigger_keyed("throttled", Some("k2"), 1).await;
        h.trigger_keyed("throttled", None, 1).await;
        h.trigger_keyed("sleep", None, 2).await;
    }
    let taken = h.dequeue(&worker, 20).await;
    let sleep = taken.iter().filter(|r| r.task_id == "sleep").count();
    let throttled: Vec<RunRow> = taken.iter().filter(|r| r.task_id == "throttled").cloned().collect();
    assert_eq!(sleep, 4, "the base limit caps a queue without a limit of its own");
    assert_eq!(per_key(&throttled), HashMap::from([("k1".into(), 2), ("k2".into(), 2), ("-".into(), 2)]));
    assert!(h.dequeue(&worker, 20).await.is_empty());
}
