//! Batches, their items, and runs added many at once.

use std::sync::Arc;

use stint_store::{BatchRow, Error, NewRun, RunListParams, RunRow, SnapshotRow, Store, StoreExt};
use stint_types::{BatchStatus, EnvId, RetryOptions, RunId, RunStatus, Timestamp};

use crate::fixtures;

fn batch(env_id: &EnvId, run_count: u32, key: Option<&str>) -> BatchRow {
    BatchRow {
        id: fixtures::batch_id(),
        env_id: env_id.clone(),
        run_count,
        items_received: 0,
        idempotency_key: key.map(str::to_string),
        status: BatchStatus::Pending,
        created_at: Timestamp(10),
        updated_at: Timestamp(10),
        sealed_at: None,
    }
}

async fn insert_batch(store: &Arc<dyn Store>, row: &BatchRow) -> Result<(), Error> {
    let row = row.clone();
    store.write(move |tx| Box::pin(async move { tx.batch_insert(&row).await })).await
}

async fn insert_many(store: &Arc<dyn Store>, runs: &[(RunRow, SnapshotRow)]) -> Vec<bool> {
    let runs: Vec<NewRun> =
        runs.iter().map(|(run, snapshot)| NewRun { run: run.clone(), snapshot: snapshot.clone() }).collect();
    store.write(move |tx| Box::pin(async move { tx.run_insert_many(&runs).await })).await.unwrap()
}

/// A batch comes back as written, by id, locked, and by its idempotency key; a key is unique
/// within an environment only; an update writes the count, status and times.
pub async fn batches_round_trip_and_keys_are_unique_per_environment(store: Arc<dyn Store>) {
    let (env, other) = (fixtures::env_id(), fixtures::env_id());
    let keyed = batch(&env, 3, Some("key-1"));
    insert_batch(&store, &keyed).await.unwrap();
    let plain = batch(&env, 5, None);
    insert_batch(&store, &plain).await.unwrap();
    let again = batch(&env, 3, Some("key-1"));
    assert!(matches!(insert_batch(&store, &again).await, Err(Error::Duplicate(_))));
    insert_batch(&store, &batch(&other, 3, Some("key-1"))).await.unwrap();

    let (id, env_id) = (keyed.id.clone(), env.clone());
    let (got, locked, by_key, missing) = store
        .write(move |tx| {
            Box::pin(async move {
                let got = tx.batch_get(&id).await?;
                let locked = tx.batch_lock(&id).await?;
                let by_key = tx.batch_by_idempotency_key(&env_id, "key-1").await?;
                let missing = tx.batch_by_idempotency_key(&env_id, "key-2").await?;
                Ok::<_, Error>((got, locked, by_key, missing))
            })
        })
        .await
        .unwrap();
    assert_eq!(got, Some(keyed.clone()));
    assert_eq!(locked, Some(keyed.clone()));
    assert_eq!(by_key, Some(keyed.clone()));
    assert_eq!(missing, None);

    let sealed = BatchRow {
        items_received: 3,
        status: BatchStatus::Processing,
        updated_at: Timestamp(20),
        sealed_at: Some(Timestamp(20)),
        ..keyed.clone()
    };
    let written = sealed.clone();
    store.write(move |tx| Box::pin(async move { tx.batch_update(&written).await })).await.unwrap();
    let id = keyed.id.clone();
    let read = store.read(move |tx| Box::pin(async move { tx.batch_get(&id).await })).await.unwrap();
    assert_eq!(read, Some(sealed));
}

/// Runs added many at once come back with every field and their first snapshot; one whose
/// idempotency key or place in its batch is taken is refused alone, with nothing of it written.
pub async fn runs_are_added_many_at_once_and_refused_one_by_one(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let batch_id = fixtures::batch_id();
    let mut runs = Vec::new();
    for index in 0..3u32 {
        let (mut run, snapshot) = fixtures::queued_run(&queue, "t", 100 + i64::from(index));
        run.batch_id = Some(batch_id.clone());
        run.batch_index = Some(index);
        run.tags = vec![format!("tag-{index}"), "shared".into()];
        run.metadata = Some("{\"m\":1}".into());
        run.max_attempts = Some(2);
        run.retry = Some(RetryOptions::default());
        run.is_test = index == 1;
        run.idempotency_key = (index == 2).then(|| "once".to_string());
        run.idempotency_key_expires_at = (index == 2).then_some(Timestamp(1_000));
        runs.push((run, snapshot));
    }
    assert_eq!(insert_many(&store, &runs).await, vec![true, true, true]);
    for (run, snapshot) in &runs {
        let id = run.id.clone();
        let (got, history) = store
            .read(move |tx| {
                Box::pin(async move { Ok::<_, Error>((tx.run_get(&id).await?, tx.snapshot_list(&id).await?)) })
            })
            .await
            .unwrap();
        assert_eq!(got.as_ref(), Some(run));
        assert_eq!(history, vec![snapshot.clone()]);
    }

    // A run at a taken place in the batch, one with a taken key, and one that is new.
    let (mut same_place, _) = fixtures::queued_run(&queue, "t", 200);
    same_place.batch_id = Some(batch_id.clone());
    same_place.batch_index = Some(1);
    let (mut same_key, _) = fixtures::queued_run(&queue, "t", 201);
    same_key.idempotency_key = Some("once".into());
    // Among others, so that a store inserting several per statement finds the refused ones.
    let fresh: Vec<RunRow> = (0..12).map(|i| fixtures::queued_run(&queue, "t", 202 + i).0).collect();
    let mut rows = fresh[..5].to_vec();
    rows.extend([same_place, same_key]);
    rows.extend(fresh[5..].iter().cloned());
    let second: Vec<(RunRow, SnapshotRow)> = rows
        .into_iter()
        .map(|run| {
            let snapshot = SnapshotRow {
                id: run.snapshot_id.clone(),
                run_id: run.id.clone(),
                status: run.execution_status,
                run_status: run.status,
                attempt_number: 0,
                description: "Run was queued".into(),
                worker_id: None,
                created_at: run.created_at,
            };
            (run, snapshot)
        })
        .collect();
    let mut expected = vec![true; 14];
    expected[5..7].copy_from_slice(&[false, false]);
    assert_eq!(insert_many(&store, &second).await, expected);
    for (run, _) in &second[5..7] {
        let id = run.id.clone();
        let (got, history) = store
            .read(move |tx| {
                Box::pin(async move { Ok::<_, Error>((tx.run_get(&id).await?, tx.snapshot_list(&id).await?)) })
            })
            .await
            .unwrap();
        assert_eq!((got, history.len()), (None, 0), "a refused run leaves nothing");
    }
    let env_id = queue.env_id.clone();
    let tagged = store
        .read(move |tx| {
            Box::pin(async move {
                tx.run_list(&RunListParams {
                    env_id: Some(env_id),
                    tags: vec!["shared".into()],
                    limit: 10,
                    ..RunListParams::default()
                })
                .await
            })
        })
        .await
        .unwrap();
    assert_eq!(tagged.len(), 3, "the added runs' tags are written");
    for (run, snapshot) in second.iter().filter(|(run, _)| run.batch_index.is_none() && run.idempotency_key.is_none()) {
        let id = run.id.clone();
        let history = store.read(move |tx| Box::pin(async move { tx.snapshot_list(&id).await })).await.unwrap();
        assert_eq!(history, vec![snapshot.clone()], "the others are added with their snapshots");
    }
}

/// A batch's items are its runs and the items recorded as answered by other runs, listed by
/// index with their runs' states; an index is recorded once; runs are listed by batch.
pub async fn batch_items_are_its_runs_and_recorded_items_by_index(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let env = queue.env_id.clone();
    let row = batch(&env, 4, None);
    insert_batch(&store, &row).await.unwrap();
    let (existing, existing_snapshot) = fixtures::queued_run(&queue, "other", 5);
    insert_many(&store, &[(existing.clone(), existing_snapshot)]).await;
    let mut runs = Vec::new();
    for index in [3u32, 0, 2] {
        let (mut run, snapshot) = fixtures::queued_run(&queue, "t", 10 + i64::from(index));
        run.batch_id = Some(row.id.clone());
        run.batch_index = Some(index);
        if index == 2 {
            run.status = RunStatus::Completed;
            run.finished_at = Some(Timestamp(50));
        }
        runs.push((run, snapshot));
    }
    assert_eq!(insert_many(&store, &runs).await, vec![true; 3]);
    let (batch_id, existing_id) = (row.id.clone(), existing.id.clone());
    let again = store
        .write(move |tx| {
            Box::pin(async move {
                tx.batch_item_insert(&batch_id, 1, &existing_id).await?;
                Ok::<_, Error>(tx.batch_item_insert(&batch_id, 1, &existing_id).await)
            })
        })
        .await
        .unwrap();
    assert!(matches!(again, Err(Error::Duplicate(_))), "{again:?}");

    let batch_id = row.id.clone();
    let (mut indexes, items, listed) = store
        .read(move |tx| {
            Box::pin(async move {
                let indexes = tx.batch_indexes(&batch_id).await?;
                let items = tx.batch_items(&batch_id).await?;
                let params = RunListParams {
                    env_id: Some(env),
                    batch_id: Some(batch_id),
                    limit: 10,
                    ..RunListParams::default()
                };
                Ok::<_, Error>((indexes, items, tx.run_list(&params).await?))
            })
        })
        .await
        .unwrap();
    indexes.sort_unstable();
    assert_eq!(indexes, vec![0, 1, 2, 3]);
    let by_index: Vec<(u32, RunId, String, RunStatus, Option<Timestamp>)> =
        items.into_iter().map(|i| (i.index, i.run_id, i.task_id, i.status, i.finished_at)).collect();
    let run_at = |index: u32| runs.iter().find(|(r, _)| r.batch_index == Some(index)).unwrap().0.id.clone();
    assert_eq!(
        by_index,
        vec![
            (0, run_at(0), "t".into(), RunStatus::Queued, None),
            (1, existing.id.clone(), "other".into(), RunStatus::Queued, None),
            (2, run_at(2), "t".into(), RunStatus::Completed, Some(Timestamp(50))),
            (3, run_at(3), "t".into(), RunStatus::Queued, None),
        ]
    );
    let mut listed: Vec<RunId> = listed.into_iter().map(|r| r.id).collect();
    listed.sort();
    let mut own: Vec<RunId> = runs.iter().map(|(r, _)| r.id.clone()).collect();
    own.sort();
    assert_eq!(listed, own, "a listing by batch has the batch's own runs");
}
