//! Runs, their fenced transitions and their history.

use std::sync::Arc;

use stint_store::{Error, RunListParams, RunRow, SnapshotRow, Store, StoreExt, Transition};
use stint_types::{ExecutionStatus, RetryOptions, RunId, RunStatus, TaskRunError, Timestamp, WorkerId};

use crate::fixtures;

async fn insert(store: &Arc<dyn Store>, run: &RunRow, snapshot: &SnapshotRow) {
    let (run, snapshot) = (run.clone(), snapshot.clone());
    store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await.unwrap();
}

async fn get(store: &Arc<dyn Store>, id: &RunId) -> Option<RunRow> {
    let id = id.clone();
    store.read(move |tx| Box::pin(async move { tx.run_get(&id).await })).await.unwrap()
}

async fn transition(
    store: &Arc<dyn Store>,
    expected: &stint_types::SnapshotId,
    run: &RunRow,
    snapshot: &SnapshotRow,
) -> Result<(), Error> {
    let (expected, run, snapshot) = (expected.clone(), run.clone(), snapshot.clone());
    store.write(move |tx| Box::pin(async move { tx.run_transition(&expected, &run, &snapshot).await })).await
}

/// Every field written comes back unchanged.
pub async fn insert_get_round_trip(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let (mut run, snapshot) = fixtures::queued_run(&queue, "t", 42);
    run.max_attempts = Some(5);
    run.retry = Some(RetryOptions { max_attempts: 4, ..RetryOptions::default() });
    run.max_duration = Some(60);
    run.output = Some("{\"ok\":true}".into());
    run.output_type = Some("application/json".into());
    run.error = Some(TaskRunError::StringError { raw: "boom".into() });
    run.tags = vec!["a".into(), "b".into()];
    run.metadata = Some("{\"m\":1}".into());
    run.concurrency_key = Some("tenant-1".into());
    run.priority_ms = 1_500;
    run.is_test = true;
    run.machine = Some("small-1x".into());
    run.worker_id = Some(WorkerId::from_parts(1, 1));
    run.version = Some("1.0.0".into());
    run.heartbeat_deadline = Some(Timestamp(99));
    run.attempt_started_at = Some(Timestamp(43));
    run.duration_ms = 12;
    run.replayed_from = Some(fixtures::run_id());
    run.started_at = Some(Timestamp(43));
    run.finished_at = Some(Timestamp(44));
    run.delay_until = Some(Timestamp(40));
    run.ttl_secs = Some(600);
    run.ttl_expires_at = Some(Timestamp(640));
    run.debounce_key = Some("user-1".into());
    run.parent_run_id = Some(fixtures::run_id());
    run.root_run_id = Some(fixtures::run_id());
    run.depth = 2;
    run.batch_id = Some(stint_types::BatchId::from_parts(1, 2));
    run.batch_index = Some(999);
    insert(&store, &run, &snapshot).await;
    assert_eq!(get(&store, &run.id).await, Some(run.clone()));
    assert_eq!(get(&store, &fixtures::run_id()).await, None);
    let id = run.id.clone();
    let history = store.read(move |tx| Box::pin(async move { tx.snapshot_list(&id).await })).await.unwrap();
    assert_eq!(history, vec![snapshot]);
}

/// A transition from the current snapshot moves the run and appends history; a transition from
/// any other snapshot fails as stale and changes nothing.
pub async fn transition_is_fenced(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let (run, first) = fixtures::queued_run(&queue, "t", 1);
    insert(&store, &run, &first).await;

    let (mut executing, second) = fixtures::moved(&run, ExecutionStatus::Executing, RunStatus::Executing, 2);
    executing.attempt_number = 1;
    executing.delay_until = Some(Timestamp(7));
    executing.ttl_expires_at = Some(Timestamp(8));
    executing.debounce_key = Some("k".into());
    transition(&store, &run.snapshot_id, &executing, &second).await.unwrap();
    assert_eq!(get(&store, &run.id).await, Some(executing.clone()));

    let (late, late_snapshot) = fixtures::moved(&run, ExecutionStatus::Finished, RunStatus::Canceled, 3);
    let stale = transition(&store, &run.snapshot_id, &late, &late_snapshot).await;
    match stale {
        Err(Error::Stale { run_id, current }) => {
            assert_eq!(run_id, run.id);
            assert_eq!(current, executing.snapshot_id);
        }
        other => panic!("expected a stale error, got {other:?}"),
    }
    assert_eq!(get(&store, &run.id).await, Some(executing.clone()));

    let (missing, missing_snapshot) = fixtures::queued_run(&queue, "t", 1);
    let result = transition(&store, &missing.snapshot_id, &missing, &missing_snapshot).await;
    assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");

    let id = run.id.clone();
    let history = store.read(move |tx| Box::pin(async move { tx.snapshot_list(&id).await })).await.unwrap();
    assert_eq!(history, vec![first, second]);
}

/// A heartbeat moves the deadline only for the current snapshot of a held run; runs past their
/// deadline are found, earliest first.
pub async fn heartbeat_is_fenced_and_stalled_runs_are_found(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/h", None);
    let mut held = Vec::new();
    for deadline in [300, 100, 200] {
        let (run, snapshot) = fixtures::queued_run(&queue, "h", 1);
        insert(&store, &run, &snapshot).await;
        let (mut next, next_snapshot) = fixtures::moved(&run, ExecutionStatus::Executing, RunStatus::Executing, 2);
        next.heartbeat_deadline = Some(Timestamp(deadline));
        transition(&store, &run.snapshot_id, &next, &next_snapshot).await.unwrap();
        held.push((run, next));
    }
    let (queued, queued_snapshot) = fixtures::queued_run(&queue, "h", 1);
    insert(&store, &queued, &queued_snapshot).await;

    let (old, current) = (&held[0].0, &held[0].1);
    let (id, old_snapshot, current_snapshot) = (old.id.clone(), old.snapshot_id.clone(), current.snapshot_id.clone());
    let (stale, fresh) = store
        .write(move |tx| {
            Box::pin(async move {
                let stale = tx.run_heartbeat(&id, &old_snapshot, Timestamp(10_000)).await?;
                let fresh = tx.run_heartbeat(&id, &current_snapshot, Timestamp(10_000)).await?;
                Ok::<_, Error>((stale, fresh))
            })
        })
        .await
        .unwrap();
    assert!(!stale && fresh);
    let (queued_id, queued_snap) = (queued.id.clone(), queued.snapshot_id.clone());
    let unheld = store
        .write(move |tx| Box::pin(async move { tx.run_heartbeat(&queued_id, &queued_snap, Timestamp(5)).await }))
        .await
        .unwrap();
    assert!(!unheld, "a run nobody holds has no deadline to move");

    let stalled = store.read(|tx| Box::pin(async move { tx.run_stalled(Timestamp(250), 10).await })).await.unwrap();
    let ids: Vec<_> = stalled.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, vec![held[1].0.id.clone(), held[2].0.id.clone()]);
    let limited = store.read(|tx| Box::pin(async move { tx.run_stalled(Timestamp(250), 1).await })).await.unwrap();
    assert_eq!(limited.len(), 1);
}

/// Listing filters by environment, status, task, tag and creation time, and pages both ways.
pub async fn list_filters_and_pages(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "task/l", None);
    let other = fixtures::queue(&fixtures::env_id(), "task/l", None);
    let mut ids = Vec::new();
    for i in 0..7 {
        let (mut run, snapshot) = fixtures::queued_run(&queue, if i % 2 == 0 { "even" } else { "odd" }, 100 + i);
        if i == 3 {
            run.status = RunStatus::Completed;
        }
        if i < 2 {
            run.tags = vec!["vip".into()];
        }
        insert(&store, &run, &snapshot).await;
        ids.push(run.id);
    }
    let (foreign, foreign_snapshot) = fixtures::queued_run(&other, "even", 100);
    insert(&store, &foreign, &foreign_snapshot).await;

    let list = |params: RunListParams| {
        let store = store.clone();
        async move {
            let runs = store.read(move |tx| Box::pin(async move { tx.run_list(&params).await })).await.unwrap();
            runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let base = RunListParams { env_id: Some(env.clone()), limit: 100, ..RunListParams::default() };
    let newest_first: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(list(base.clone()).await, newest_first);
    assert_eq!(
        list(RunListParams { statuses: vec![RunStatus::Completed], ..base.clone() }).await,
        vec![ids[3].clone()]
    );
    assert_eq!(
        list(RunListParams { task_ids: vec!["odd".into()], ..base.clone() }).await,
        vec![ids[5].clone(), ids[3].clone(), ids[1].clone()]
    );
    assert_eq!(
        list(RunListParams { tags: vec!["vip".into()], ..base.clone() }).await,
        vec![ids[1].clone(), ids[0].clone()]
    );
    assert_eq!(
        list(RunListParams { created_from: Some(Timestamp(104)), created_to: Some(Timestamp(105)), ..base.clone() })
            .await,
        vec![ids[5].clone(), ids[4].clone()]
    );
    let page = list(RunListParams { limit: 3, ..base.clone() }).await;
    assert_eq!(page, newest_first[..3].to_vec());
    let next = list(RunListParams { limit: 3, after: Some(page[2].clone()), ..base.clone() }).await;
    assert_eq!(next, newest_first[3..6].to_vec());
    let previous = list(RunListParams { limit: 2, before: Some(next[0].clone()), ..base.clone() }).await;
    assert_eq!(previous, newest_first[1..3].to_vec());
}

/// At most one run of an environment and task holds an idempotency key; a key can be taken off
/// a run and held by another.
pub async fn idempotency_keys_are_unique(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/k", None);
    let keyed = |created: i64| {
        let (mut run, snapshot) = fixtures::queued_run(&queue, "k", created);
        run.idempotency_key = Some("order-7".into());
        run.idempotency_key_expires_at = Some(Timestamp(created + 1_000));
        (run, snapshot)
    };
    let (first, first_snapshot) = keyed(1);
    insert(&store, &first, &first_snapshot).await;
    let (second, second_snapshot) = keyed(2);
    let (run, snapshot) = (second.clone(), second_snapshot.clone());
    let refused = store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await;
    assert!(matches!(refused, Err(Error::Duplicate(_))), "{refused:?}");
    assert_eq!(get(&store, &second.id).await, None, "nothing of the refused run was kept");

    let (env, other_env) = (queue.env_id.clone(), fixtures::env_id());
    let (found, elsewhere) = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.run_by_idempotency_key(&env, "k", "order-7").await?,
                    tx.run_by_idempotency_key(&other_env, "k", "order-7").await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(found, Some(first.clone()));
    assert_eq!(elsewhere, None);

    let id = first.id.clone();
    store.write(move |tx| Box::pin(async move { tx.run_forget_idempotency_key(&id).await })).await.unwrap();
    insert(&store, &second, &second_snapshot).await;
    assert_eq!(get(&store, &first.id).await.unwrap().idempotency_key, None);
}

/// Many transitions at once are each judged on their own; many runs read at once.
pub async fn transitions_in_a_batch_are_judged_one_by_one(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/b", None);
    let mut runs = Vec::new();
    for created in 0..3 {
        let (run, snapshot) = fixtures::queued_run(&queue, "b", created);
        insert(&store, &run, &snapshot).await;
        runs.push(run);
    }
    let found = {
        let ids = vec![runs[2].id.clone(), runs[0].id.clone(), fixtures::run_id()];
        let mut found = store.read(move |tx| Box::pin(async move { tx.run_get_many(&ids).await })).await.unwrap();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    };
    assert_eq!(found, vec![runs[0].clone(), runs[2].clone()]);

    let step = |run: &RunRow, expected: &stint_types::SnapshotId| {
        let (mut next, snapshot) = fixtures::moved(run, ExecutionStatus::Executing, RunStatus::Executing, 9);
        next.attempt_number = 1;
        next.heartbeat_deadline = Some(Timestamp(1_000));
        next.delay_until = Some(Timestamp(2));
        next.ttl_expires_at = Some(Timestamp(3));
        next.debounce_key = Some(format!("key of {}", run.id));
        Transition { expected: expected.clone(), run: next, snapshot }
    };
    let (missing, _) = fixtures::queued_run(&queue, "b", 5);
    let moves = vec![
        step(&runs[1], &runs[1].snapshot_id),
        step(&runs[0], &fixtures::snapshot_id()),
        step(&missing, &missing.snapshot_id),
        step(&runs[2], &runs[2].snapshot_id),
    ];
    let batch = moves.clone();
    let answers = store.write(move |tx| Box::pin(async move { tx.run_transition_many(&batch).await })).await.unwrap();
    assert_eq!(answers.len(), 4);
    assert!(answers[0].is_ok() && answers[3].is_ok(), "{answers:?}");
    assert!(matches!(&answers[1], Err(Error::Stale { current, .. }) if *current == runs[0].snapshot_id), "{answers:?}");
    assert!(matches!(answers[2], Err(Error::NotFound(_))), "{answers:?}");
    assert_eq!(get(&store, &runs[1].id).await, Some(moves[0].run.clone()));
    assert_eq!(get(&store, &runs[2].id).await, Some(moves[3].run.clone()));
    assert_eq!(get(&store, &runs[0].id).await, Some(runs[0].clone()), "the stale move changed nothing");
    let id = runs[0].id.clone();
    let history = store.read(move |tx| Box::pin(async move { tx.snapshot_list(&id).await })).await.unwrap();
    assert_eq!(history.len(), 1);
    let id = runs[1].id.clone();
    let history = store.read(move |tx| Box::pin(async move { tx.snapshot_list(&id).await })).await.unwrap();
    assert_eq!(history.last(), Some(&moves[0].snapshot));
}
