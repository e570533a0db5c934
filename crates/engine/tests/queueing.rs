//! Queues: limits, priority, task routing, replay.

mod common;

use common::{Harness, task};
use stint_engine::{TaskSpec, TriggerParams};
use stint_types::RunStatus;

#[tokio::test]
async fn a_queue_limit_caps_runs_executing_at_once() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![TaskSpec { concurrency_limit: Some(2), ..task("limited") }]).await;
    for _ in 0..5 {
        h.trigger(&h.prod, "limited").await;
    }
    let first = h.dequeue(&worker, 10).await;
    assert_eq!(first.len(), 2);
    assert!(h.dequeue(&worker, 10).await.is_empty());
    h.succeed(&h.prod, &first[0], "1").await;
    assert_eq!(h.dequeue(&worker, 10).await.len(), 1);
    h.fail(&h.prod, &first[1], "retry me").await;
    h.advance(1_000);
    let after_retry = h.dequeue(&worker, 10).await;
    assert_eq!(after_retry.len(), 1, "a retrying run gives back its slot");
}

#[tokio::test]
async fn runs_come_out_oldest_first_and_priority_moves_them_ahead() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let a = h.trigger(&h.prod, "t").await;
    h.advance(1);
    let b = h.trigger(&h.prod, "t").await;
    h.advance(1);
    let urgent = h
        .engine
        .trigger(&h.prod, TriggerParams { priority_ms: 10_000, ..TriggerParams::new("t", "1") })
        .await
        .unwrap()
        .run;
    let order: Vec<_> = h.dequeue(&worker, 10).await.into_iter().map(|r| r.id).collect();
    assert_eq!(order, vec![urgent.id, a.id, b.id]);
}

#[tokio::test]
async fn a_worker_takes_only_its_own_tasks_and_environment() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("mine")]).await;
    let other_env_worker = h.worker(&h.dev, vec![task("mine")]).await;
    h.trigger(&h.prod, "theirs").await;
    let mine = h.trigger(&h.prod, "mine").await;
    let shared = h
        .engine
        .trigger(&h.prod, TriggerParams { queue: Some("shared".into()), ..TriggerParams::new("theirs", "1") })
        .await
        .unwrap()
        .run;
    let mine_in_shared = h
        .engine
        .trigger(&h.prod, TriggerParams { queue: Some("shared".into()), ..TriggerParams::new("mine", "2") })
        .await
        .unwrap()
        .run;
    assert!(h.dequeue(&other_env_worker, 10).await.is_empty());
    let taken: Vec<_> = h.dequeue(&worker, 10).await.into_iter().map(|r| r.id).collect();
    assert_eq!(taken, vec![mine.id, mine_in_shared.id]);
    assert_eq!(h.run(&h.prod, &shared.id).await.status, RunStatus::Queued);
}

#[tokio::test]
async fn replay_makes_a_new_run_of_the_same_task_and_payload() {
    let h = Harness::new().await;
    let original = h
        .engine
        .trigger(&h.prod, TriggerParams { tags: vec!["a".into()], ..TriggerParams::new("t", "{\"x\":1}") })
        .await
        .unwrap()
        .run;
    let replay = h.engine.replay(&h.prod, &original.id).await.unwrap();
    assert_ne!(replay.id, original.id);
    assert_eq!(replay.task_id, "t");
    assert_eq!(replay.payload, "{\"x\":1}");
    assert_eq!(replay.tags, vec!["a".to_string()]);
    assert_eq!(replay.replayed_from, Some(original.id.clone()));
    assert_eq!(replay.status, RunStatus::Queued);
    assert!(h.engine.replay(&h.dev, &original.id).await.is_err(), "other environments cannot see it");
}

#[tokio::test]
async fn registration_refuses_bad_declarations() {
    let h = Harness::new().await;
    let bad = |tasks: Vec<TaskSpec>| async {
        h.engine.register_worker(&h.prod, "1".into(), tasks).await.unwrap_err().to_string()
    };
    assert!(bad(vec![task("a"), task("a")]).await.contains("declared twice"));
    assert!(bad(vec![task("has space")]).await.contains("not allowed"));
    assert!(bad(vec![]).await.contains("at least one task"));
    let conflicting = vec![
        TaskSpec { queue: Some("q".into()), concurrency_limit: Some(1), ..task("a") },
        TaskSpec { queue: Some("q".into()), concurrency_limit: Some(2), ..task("b") },
    ];
    assert!(bad(conflicting).await.contains("different concurrency limits"));
}

#[tokio::test]
async fn a_disconnected_worker_stops_waiting_and_takes_nothing() {
    let h = std::sync::Arc::new(Harness::new().await);
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let waiting = {
        let (h, worker) = (h.clone(), worker.clone());
        tokio::spawn(async move { h.engine.dequeue(&worker, 10, std::time::Duration::from_secs(30)).await })
    };
    let started = std::time::Instant::now();
    h.engine.disconnect(&worker).await.unwrap();
    assert!(waiting.await.unwrap().unwrap().is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the long poll ended at once");
    h.trigger(&h.prod, "t").await;
    assert!(h.dequeue(&worker, 10).await.is_empty(), "a disconnected worker takes no runs");
    let other = h.worker(&h.prod, vec![task("t")]).await;
    assert_eq!(h.dequeue(&other, 10).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_hands_its_run_to_a_waiting_worker_in_one_commit() {
    let h = std::sync::Arc::new(Harness::new().await);
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let waiting = {
        let (h, worker) = (h.clone(), worker.clone());
        tokio::spawn(async move { h.engine.dequeue(&worker, 10, std::time::Duration::from_secs(30)).await })
    };
    h.until_waiting(1).await;
    let run = h.trigger(&h.prod, "t").await;
    assert_eq!(run.status, RunStatus::Executing, "the attempt started in the trigger's transaction");
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Executing);
    let handed = waiting.await.unwrap().unwrap();
    assert_eq!(handed.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![run.id.clone()]);
    assert_eq!(handed[0].attempt_number, 1);
    assert_eq!(h.engine.waiting_dequeues(&h.prod), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_handoff_past_a_full_queue_or_an_older_ready_run() {
    let h = std::sync::Arc::new(Harness::new().await);
    let worker = h.worker(&h.prod, vec![TaskSpec { concurrency_limit: Some(1), ..task("t") }]).await;
    let first = h.trigger(&h.prod, "t").await;
    let held = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(held.id, first.id);
    let waiting = {
        let (h, worker) = (h.clone(), worker.clone());
        tokio::spawn(async move { h.engine.dequeue(&worker, 10, std::time::Duration::from_secs(30)).await })
    };
    h.until_waiting(1).await;
    let second = h.trigger(&h.prod, "t").await;
    assert_eq!(second.status, RunStatus::Queued, "the queue's only slot is taken");
    h.until_waiting(1).await;
    let third = h.trigger(&h.prod, "t").await;
    assert_eq!(third.status, RunStatus::Queued);
    h.succeed(&h.prod, &held, "1").await;
    let next = waiting.await.unwrap().unwrap();
    assert_eq!(next.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![second.id], "the older run goes first");
}
