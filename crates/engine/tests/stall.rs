//! Runs whose worker stops sending heartbeats are retried after the timeout.

mod common;

use std::time::Duration;

use common::{Harness, task};
use stint_engine::{Completed, Config, HeartbeatVerdict, Timeouts};
use stint_types::{ErrorCode, ExecutionStatus, RunStatus};

fn config() -> Config {
    Config {
        timeouts: Timeouts { executing: Duration::from_secs(30), pending_cancel: Duration::from_secs(10) },
        stall_retry_delay: Duration::from_millis(250),
        ..Config::default()
    }
}

#[tokio::test]
async fn a_stalled_attempt_is_retried_after_the_timeout() {
    let h = Harness::with_config(config()).await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let first = h.dequeue(&worker, 1).await.remove(0);

    h.advance(29_999);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 0);
    h.advance(1);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 1);
    let stalled = h.run(&h.prod, &run.id).await;
    assert_eq!(stalled.status, RunStatus::Queued);
    assert_eq!(stalled.error.as_ref().and_then(|e| e.code()), Some(ErrorCode::TaskRunStalledExecuting));
    assert_eq!(stalled.heartbeat_deadline, None);

    assert!(h.dequeue(&worker, 1).await.is_empty(), "the retry waits 250 ms");
    h.advance(250);
    let second = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(second.attempt_number, 2);

    // The lost worker comes back: it is fenced off.
    let late = h.succeed(&h.prod, &first, "\"late\"").await;
    assert_eq!(late, Completed::Stale { current: second.snapshot_id.clone(), status: ExecutionStatus::Executing });
    let verdict = h.engine.heartbeat(&worker, vec![(first.id.clone(), first.snapshot_id.clone())]).await.unwrap();
    assert_eq!(verdict, vec![HeartbeatVerdict::Stop]);
    assert_eq!(h.succeed(&h.prod, &second, "\"on time\"").await, Completed::Finished(RunStatus::Completed));
    assert_eq!(h.run(&h.prod, &run.id).await.output.as_deref(), Some("\"on time\""));
}

#[tokio::test]
async fn heartbeats_keep_an_attempt_alive() {
    let h = Harness::with_config(config()).await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.trigger(&h.prod, "t").await;
    let run = h.dequeue(&worker, 1).await.remove(0);
    for _ in 0..5 {
        h.advance(20_000);
        let verdict = h.engine.heartbeat(&worker, vec![(run.id.clone(), run.snapshot_id.clone())]).await.unwrap();
        assert_eq!(verdict, vec![HeartbeatVerdict::Continue]);
        assert_eq!(h.engine.sweep_stalled().await.unwrap(), 0);
    }
    h.advance(30_000);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 1);
}

#[tokio::test]
async fn a_stalled_attempt_on_its_last_try_fails_and_in_development_is_cancelled() {
    let h = Harness::with_config(config()).await;
    let prod_worker = h.worker(&h.prod, vec![task("t")]).await;
    let dev_worker = h.worker(&h.dev, vec![task("t")]).await;
    let prod = h
        .engine
        .trigger(
            &h.prod,
            stint_engine::TriggerParams { max_attempts: Some(1), ..stint_engine::TriggerParams::new("t", "1") },
        )
        .await
        .unwrap()
        .run;
    let dev = h.trigger(&h.dev, "t").await;
    h.dequeue(&prod_worker, 1).await;
    h.dequeue(&dev_worker, 1).await;
    h.advance(30_000);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 2);
    assert_eq!(h.run(&h.prod, &prod.id).await.status, RunStatus::Failed);
    assert_eq!(h.run(&h.dev, &dev.id).await.status, RunStatus::Canceled);
}

#[tokio::test]
async fn one_node_at_a_time_does_maintenance_and_another_takes_over() {
    let h = Harness::with_config(config()).await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.trigger(&h.prod, "t").await;
    h.dequeue(&worker, 1).await;
    let lease = Duration::from_secs(5);

    assert_eq!(h.engine.maintain("node-a", lease).await.unwrap().map(|m| m.stalled), Some(0));
    h.advance(4_999);
    assert_eq!(h.engine.maintain("node-b", lease).await.unwrap(), None, "a holds the lease for 5 s");
    h.advance(1);
    assert_eq!(
        h.engine.maintain("node-b", lease).await.unwrap().map(|m| m.stalled),
        Some(0),
        "a stopped renewing: b takes over"
    );
    assert_eq!(h.engine.maintain("node-a", lease).await.unwrap(), None);
    h.advance(30_000);
    assert_eq!(
        h.engine.maintain("node-a", lease).await.unwrap().map(|m| m.stalled),
        Some(1),
        "whoever holds the lease sweeps"
    );
    h.engine.resign("node-a").await.unwrap();
    assert_eq!(
        h.engine.maintain("node-b", lease).await.unwrap().map(|m| m.stalled),
        Some(0),
        "a resigned lease is free at once"
    );
}
