//! Stale callers change nothing; terminal states never move.

mod common;

use common::{Harness, task};
use stint_engine::{Cancelled, Completed, HeartbeatVerdict, Outcome};
use stint_types::{ExecutionStatus, RunStatus, SnapshotId};

#[tokio::test]
async fn a_stale_snapshot_is_refused_and_changes_nothing() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    let history = h.engine.snapshots(&h.prod, &run.id).await.unwrap();
    let before = h.run(&h.prod, &run.id).await;

    let made_up = stint_types::SnapshotId::from_parts(1, 1);
    let outcome = h
        .engine
        .complete(&h.prod, vec![(run.id.clone(), made_up.clone(), Outcome::Success("1".into()))])
        .await
        .unwrap();
    assert_eq!(
        outcome,
        vec![Completed::Stale { current: attempt.snapshot_id.clone(), status: ExecutionStatus::Executing }]
    );
    let queued_snapshot: SnapshotId = run.snapshot_id.clone();
    let outcome = h
        .engine
        .complete(&h.prod, vec![(run.id.clone(), queued_snapshot, Outcome::Success("1".into()))])
        .await
        .unwrap();
    assert!(matches!(outcome[0], Completed::Stale { .. }));
    let verdict = h.engine.heartbeat(&worker, vec![(run.id.clone(), made_up)]).await.unwrap();
    assert_eq!(verdict, vec![HeartbeatVerdict::Stop]);

    assert_eq!(h.run(&h.prod, &run.id).await, before);
    assert_eq!(h.engine.snapshots(&h.prod, &run.id).await.unwrap(), history);
}

#[tokio::test]
async fn terminal_states_never_move() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(h.succeed(&h.prod, &attempt, "1").await, Completed::Finished(RunStatus::Completed));
    let done = h.run(&h.prod, &run.id).await;
    let history = h.engine.snapshots(&h.prod, &run.id).await.unwrap();
    let statuses: Vec<_> = history.iter().map(|s| s.status).collect();
    assert_eq!(statuses, vec![ExecutionStatus::Queued, ExecutionStatus::Executing, ExecutionStatus::Finished]);

    // Every way of moving it again: complete with the old or the final snapshot, heartbeat,
    // cancel, a sweep long after, a replay.
    assert!(matches!(h.succeed(&h.prod, &attempt, "2").await, Completed::Stale { .. }));
    assert!(matches!(h.fail(&h.prod, &done, "late").await, Completed::Stale { .. }));
    let verdict = h.engine.heartbeat(&worker, vec![(run.id.clone(), attempt.snapshot_id.clone())]).await.unwrap();
    assert_eq!(verdict, vec![HeartbeatVerdict::Stop]);
    assert_eq!(h.engine.cancel(&h.prod, &run.id).await.unwrap(), Cancelled::AlreadyFinished(RunStatus::Completed));
    h.advance(3_600_000);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 0);
    let replay = h.engine.replay(&h.prod, &run.id).await.unwrap();
    assert_ne!(replay.id, run.id);

    assert_eq!(h.run(&h.prod, &run.id).await, done);
    assert_eq!(h.engine.snapshots(&h.prod, &run.id).await.unwrap(), history);
}

#[tokio::test]
async fn a_batch_of_completions_is_judged_report_by_report() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    for _ in 0..3 {
        h.trigger(&h.prod, "t").await;
    }
    let attempts = h.dequeue(&worker, 3).await;
    let (a, b, c) = (&attempts[0], &attempts[1], &attempts[2]);
    let elsewhere = h.trigger(&h.dev, "t").await;
    let made_up = SnapshotId::from_parts(1, 1);

    let answers = h
        .engine
        .complete(
            &h.prod,
            vec![
                (c.id.clone(), c.snapshot_id.clone(), Outcome::Success("3".into())),
                (a.id.clone(), a.snapshot_id.clone(), Outcome::Success("1".into())),
                (b.id.clone(), made_up, Outcome::Success("2".into())),
                (a.id.clone(), a.snapshot_id.clone(), Outcome::Success("again".into())),
                (elsewhere.id.clone(), elsewhere.snapshot_id.clone(), Outcome::Success("x".into())),
            ],
        )
        .await
        .unwrap();

    let a_now = h.run(&h.prod, &a.id).await;
    assert_eq!(answers[0], Completed::Finished(RunStatus::Completed));
    assert_eq!(answers[1], Completed::Finished(RunStatus::Completed));
    assert_eq!(answers[2], Completed::Stale { current: b.snapshot_id.clone(), status: ExecutionStatus::Executing });
    // The second report for one run is answered with where the first left it.
    assert_eq!(answers[3], Completed::Stale { current: a_now.snapshot_id.clone(), status: ExecutionStatus::Finished });
    assert_eq!(answers[4], Completed::NotFound);
    assert_eq!(a_now.output.as_deref(), Some("1"));
    assert_eq!(h.run(&h.prod, &b.id).await.status, RunStatus::Executing);
    assert_eq!(h.run(&h.dev, &elsewhere.id).await.status, RunStatus::Queued);
}
