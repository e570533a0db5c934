//! What trigger options keep: delayed runs coming due, TTL deadlines, debounce keys, request keys.

use std::sync::Arc;

use stint_store::{Error, RequestKeyRow, RunRow, Store, StoreExt};
use stint_types::{ExecutionStatus, RunStatus, Timestamp};

use crate::fixtures;

async fn insert(store: &Arc<dyn Store>, run: RunRow) {
    let snapshot = fixtures::queued_run(&fixtures::queue(&run.env_id, "task/o", None), "o", 0).1;
    let snapshot = stint_store::SnapshotRow { run_id: run.id.clone(), id: run.snapshot_id.clone(), ..snapshot };
    store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await.unwrap();
}

fn delayed(env: &stint_types::EnvId, until: i64) -> RunRow {
    let (mut run, _) = fixtures::queued_run(&fixtures::queue(env, "task/o", None), "o", 0);
    run.status = RunStatus::Delayed;
    run.execution_status = ExecutionStatus::Delayed;
    run.queue_score = None;
    run.delay_until = Some(Timestamp(until));
    run
}

fn expiring(env: &stint_types::EnvId, at: i64) -> RunRow {
    let (mut run, _) = fixtures::queued_run(&fixtures::queue(env, "task/o", None), "o", 0);
    run.ttl_secs = Some(1);
    run.ttl_expires_at = Some(Timestamp(at));
    run
}

async fn next_due(store: &Arc<dyn Store>) -> Option<Timestamp> {
    store.read(|tx| Box::pin(async move { tx.run_next_due().await })).await.unwrap()
}

/// Delayed runs come due by their time, runs expire by their TTL deadline, and the earliest of
/// both is found whichever kind is missing.
pub async fn due_runs_are_found_by_time(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    assert_eq!(next_due(&store).await, None);
    let late = delayed(&env, 300);
    let early = delayed(&env, 100);
    insert(&store, late.clone()).await;
    insert(&store, early.clone()).await;
    assert_eq!(next_due(&store).await, Some(Timestamp(100)), "delayed runs only");
    let soon = expiring(&env, 50);
    insert(&store, soon.clone()).await;
    assert_eq!(next_due(&store).await, Some(Timestamp(50)));

    let due = store.read(|tx| Box::pin(async move { tx.run_delayed_due(Timestamp(300), 10).await })).await.unwrap();
    assert_eq!(due.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&early.id, &late.id]);
    let due = store.read(|tx| Box::pin(async move { tx.run_delayed_due(Timestamp(299), 10).await })).await.unwrap();
    assert_eq!(due.len(), 1);
    let due = store.read(|tx| Box::pin(async move { tx.run_ttl_due(Timestamp(49), 10).await })).await.unwrap();
    assert!(due.is_empty());
    let due = store.read(|tx| Box::pin(async move { tx.run_ttl_due(Timestamp(50), 10).await })).await.unwrap();
    assert_eq!(due.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&soon.id]);

    let (early_id, late_id) = (early.id.clone(), late.id.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                for id in [&early_id, &late_id] {
                    let run = tx.run_get(id).await?.unwrap();
                    let mut next = run.clone();
                    next.execution_status = ExecutionStatus::Queued;
                    next.snapshot_id = fixtures::snapshot_id();
                    let snapshot = stint_store::SnapshotRow {
                        id: next.snapshot_id.clone(),
                        run_id: next.id.clone(),
                        status: ExecutionStatus::Queued,
                        run_status: RunStatus::Queued,
                        attempt_number: 0,
                        description: "queued".into(),
                        worker_id: None,
                        created_at: Timestamp(1),
                    };
                    tx.run_transition(&run.snapshot_id, &next, &snapshot).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    assert_eq!(next_due(&store).await, Some(Timestamp(50)), "TTL deadlines only");
}

/// A debounce key finds its run until it is forgotten, and is unique per environment and task;
/// a run's input is rewritten with its tags.
pub async fn debounce_keys_and_input(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let mut run = delayed(&env, 100);
    run.debounce_key = Some("user-1".into());
    run.tags = vec!["a".into()];
    insert(&store, run.clone()).await;
    let (e, r) = (env.clone(), run.clone());
    let found = store
        .read(move |tx| Box::pin(async move { tx.run_by_debounce_key(&e, &r.task_id, "user-1").await }))
        .await
        .unwrap();
    assert_eq!(found, Some(run.clone()));

    let mut twin = delayed(&env, 100);
    twin.debounce_key = Some("user-1".into());
    let snapshot = fixtures::queued_run(&fixtures::queue(&env, "task/o", None), "o", 0).1;
    let snapshot = stint_store::SnapshotRow { run_id: twin.id.clone(), id: twin.snapshot_id.clone(), ..snapshot };
    let (t, s) = (twin.clone(), snapshot.clone());
    let refused = store.write(move |tx| Box::pin(async move { tx.run_insert(&t, &s).await })).await;
    assert!(matches!(refused, Err(Error::Duplicate(_))), "{refused:?}");

    let mut rewritten = run.clone();
    rewritten.payload = "{\"n\":2}".into();
    rewritten.payload_type = "text/plain".into();
    rewritten.tags = vec!["b".into(), "c".into()];
    rewritten.machine = Some("large-1x".into());
    let (id, again) = (run.id.clone(), rewritten.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.run_set_input(&again).await?;
                tx.run_forget_debounce_key(&id).await
            })
        })
        .await
        .unwrap();
    let id = run.id.clone();
    let stored = store.read(move |tx| Box::pin(async move { tx.run_get(&id).await })).await.unwrap().unwrap();
    assert_eq!(stored, RunRow { debounce_key: None, ..rewritten });
    let tagged = store
        .read(|tx| {
            Box::pin(async move {
                let params = stint_store::RunListParams { tags: vec!["c".into()], limit: 10, ..Default::default() };
                tx.run_list(&params).await
            })
        })
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1, "the new tags are listed");
    let (t, s) = (twin.clone(), snapshot);
    store.write(move |tx| Box::pin(async move { tx.run_insert(&t, &s).await })).await.unwrap();
}

/// A request key keeps its answer until it expires; then a new answer replaces it, and expired
/// answers are purged.
pub async fn request_keys_keep_their_answer(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let first = RequestKeyRow {
        env_id: env.clone(),
        key: "req-1".into(),
        run_id: fixtures::run_id(),
        cached: false,
        expires_at: Timestamp(1_000),
    };
    let row = first.clone();
    store.write(move |tx| Box::pin(async move { tx.request_key_put(&row, Timestamp(0)).await })).await.unwrap();
    let e = env.clone();
    let found = store.read(move |tx| Box::pin(async move { tx.request_key_get(&e, "req-1").await })).await.unwrap();
    assert_eq!(found, Some(first.clone()));

    let second = RequestKeyRow { run_id: fixtures::run_id(), cached: true, expires_at: Timestamp(3_000), ..first };
    let row = second.clone();
    let refused = store.write(move |tx| Box::pin(async move { tx.request_key_put(&row, Timestamp(999)).await })).await;
    assert!(matches!(refused, Err(Error::Duplicate(_))), "{refused:?}");
    let row = second.clone();
    store.write(move |tx| Box::pin(async move { tx.request_key_put(&row, Timestamp(1_000)).await })).await.unwrap();
    let e = env.clone();
    let found = store.read(move |tx| Box::pin(async move { tx.request_key_get(&e, "req-1").await })).await.unwrap();
    assert_eq!(found, Some(second));

    let purged = store.write(|tx| Box::pin(async move { tx.request_key_purge(Timestamp(3_000), 10).await })).await;
    assert_eq!(purged.unwrap(), 0, "not expired before 3000");
    let purged = store.write(|tx| Box::pin(async move { tx.request_key_purge(Timestamp(3_001), 10).await })).await;
    assert_eq!(purged.unwrap(), 1);
    let found = store.read(move |tx| Box::pin(async move { tx.request_key_get(&env, "req-1").await })).await.unwrap();
    assert_eq!(found, None);
}

/// A task's settings, its TTL included, come back as declared, and a new declaration replaces
/// them.
pub async fn tasks_keep_their_settings(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let mut task = stint_store::TaskRow {
        env_id: env.clone(),
        task_id: "t".into(),
        queue_name: "task/t".into(),
        retry: stint_types::RetryOptions::default(),
        max_duration: Some(30),
        ttl_secs: Some(600),
        updated_at: Timestamp(1),
    };
    let row = task.clone();
    store.write(move |tx| Box::pin(async move { tx.task_upsert(&row).await })).await.unwrap();
    let e = env.clone();
    let found = store.read(move |tx| Box::pin(async move { tx.task_get(&e, "t").await })).await.unwrap();
    assert_eq!(found, Some(task.clone()));
    task.ttl_secs = None;
    task.max_duration = None;
    task.updated_at = Timestamp(2);
    let row = task.clone();
    store.write(move |tx| Box::pin(async move { tx.task_upsert(&row).await })).await.unwrap();
    let found = store.read(move |tx| Box::pin(async move { tx.task_get(&env, "t").await })).await.unwrap();
    assert_eq!(found, Some(task));
}
