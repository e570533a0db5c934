//! Queue controls: pausing and resuming, limit overrides, and how the API finds queues.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, task};
use stint_engine::{Error, QueueRef, TaskSpec, TriggerParams};

fn by_task(name: &str) -> QueueRef {
    QueueRef::Task(name.into())
}

#[tokio::test]
async fn a_paused_queue_starts_nothing_until_resumed() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t"), task("other")]).await;
    let paused = h.engine.pause_queue(&h.prod, by_task("t"), true).await.unwrap();
    assert!(paused.queue.paused);
    for _ in 0..3 {
        h.trigger(&h.prod, "t").await;
    }
    let other = h.trigger(&h.prod, "other").await;
    let taken: Vec<_> = h.dequeue(&worker, 10).await.into_iter().map(|r| r.id).collect();
    assert_eq!(taken, vec![other.id], "only the queue that is not paused gives runs");
    assert_eq!(h.engine.queue(&h.prod, by_task("t")).await.unwrap().waiting, 3);

    // A worker waiting for work is woken by the resume.
    let engine = h.engine.clone();
    let waiting_worker = worker.clone();
    let waiting = tokio::spawn(async move {
        let asked = Instant::now();
        let runs = engine.dequeue(&waiting_worker, 10, Duration::from_secs(10)).await.unwrap();
        (runs.len(), asked.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resumed = h.engine.pause_queue(&h.prod, by_task("t"), false).await.unwrap();
    assert!(!resumed.queue.paused);
    let (count, took) = waiting.await.unwrap();
    assert_eq!(count, 3);
    assert!(took < Duration::from_secs(5), "the resume woke the waiting dequeue ({took:?})");
}

#[tokio::test]
async fn a_trigger_into_a_paused_queue_is_not_handed_to_a_waiting_worker() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.engine.pause_queue(&h.prod, by_task("t"), true).await.unwrap();
    let engine = h.engine.clone();
    let waiting = tokio::spawn(async move { engine.dequeue(&worker, 10, Duration::from_millis(500)).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.trigger(&h.prod, "t").await;
    assert!(waiting.await.unwrap().is_empty());
}

#[tokio::test]
async fn an_override_replaces_the_declared_limit_until_reset() {
    let h = Harness::new().await;
    let declared = vec![TaskSpec { concurrency_limit: Some(1), ..task("t") }];
    let worker = h.worker(&h.prod, declared).await;
    for _ in 0..6 {
        h.trigger(&h.prod, "t").await;
    }
    let raised = h.engine.override_queue_limit(&h.prod, by_task("t"), 3).await.unwrap();
    assert_eq!((raised.queue.limit(), raised.queue.concurrency_limit), (Some(3), Some(1)));
    let first = h.dequeue(&worker, 10).await;
    assert_eq!(first.len(), 3);

    // A worker declaring the queue again changes the declared limit, not the one in force.
    let worker = h.worker(&h.prod, vec![TaskSpec { concurrency_limit: Some(2), ..task("t") }]).await;
    let view = h.engine.queue(&h.prod, by_task("t")).await.unwrap();
    assert_eq!((view.queue.limit(), view.queue.concurrency_limit), (Some(3), Some(2)));

    let reset = h.engine.reset_queue_limit(&h.prod, by_task("t")).await.unwrap();
    assert_eq!((reset.queue.limit(), reset.queue.limit_override), (Some(2), None));
    for run in &first {
        h.succeed(&h.prod, run, "1").await;
    }
    assert_eq!(h.dequeue(&worker, 10).await.len(), 2, "the declared limit is back in force");

    let zero = h.engine.override_queue_limit(&h.prod, by_task("t"), 0).await.unwrap();
    assert_eq!(zero.queue.limit(), Some(0));
    assert!(matches!(
        h.engine.override_queue_limit(&h.prod, by_task("t"), 100_001).await,
        Err(Error::Invalid(message)) if message.contains("100000")
    ));
}

#[tokio::test]
async fn queues_are_found_by_id_task_or_name_in_their_own_environment_only() {
    let h = Harness::new().await;
    h.worker(&h.prod, vec![task("t")]).await;
    h.engine
        .trigger(&h.prod, TriggerParams { queue: Some("emails".into()), ..TriggerParams::new("t", "1") })
        .await
        .unwrap();
    let own = h.engine.queue(&h.prod, by_task("t")).await.unwrap().queue;
    assert_eq!(own.name, "task/t");
    assert_eq!(h.engine.queue(&h.prod, by_task("task/t")).await.unwrap().queue, own);
    assert_eq!(h.engine.queue(&h.prod, QueueRef::Id(own.id.to_string())).await.unwrap().queue, own);
    let emails = h.engine.queue(&h.prod, QueueRef::Custom("emails".into())).await.unwrap();
    assert_eq!(emails.waiting, 1);

    for missing in [QueueRef::Id("queue_nonsense".into()), QueueRef::Custom("task/t2".into()), by_task("emails")] {
        assert!(matches!(h.engine.queue(&h.prod, missing).await, Err(Error::NotFound(_))));
    }
    // Another environment's queue is not found, and cannot be changed.
    for control in [
        h.engine.queue(&h.dev, QueueRef::Id(own.id.to_string())).await,
        h.engine.pause_queue(&h.dev, QueueRef::Id(own.id.to_string()), true).await,
        h.engine.override_queue_limit(&h.dev, QueueRef::Id(own.id.to_string()), 5).await,
        h.engine.reset_queue_limit(&h.dev, by_task("t")).await,
    ] {
        assert!(matches!(control, Err(Error::NotFound(_))), "{control:?}");
    }
    let unchanged = h.engine.queue(&h.prod, by_task("t")).await.unwrap().queue;
    assert_eq!(unchanged, own);

    let (page, count) = h.engine.queues(&h.prod, 1, 1).await.unwrap();
    assert_eq!((page.len(), count), (1, 2));
    assert_eq!(page[0].queue.name, "emails", "by name");
    let (second, _) = h.engine.queues(&h.prod, 2, 1).await.unwrap();
    assert_eq!(second[0].queue.name, "task/t");
    assert!(h.engine.queues(&h.prod, 3, 1).await.unwrap().0.is_empty());
    assert_eq!(h.engine.queues(&h.dev, 1, 25).await.unwrap().1, 0);
}
