//! Queues and the runs waiting in them.

use std::sync::Arc;

use stint_store::{Error, QueueRow, RunRow, Store, StoreExt};
use stint_types::EnvId;

use crate::fixtures;

async fn add_queue(store: &Arc<dyn Store>, queue: &QueueRow) {
    let queue = queue.clone();
    store.write(move |tx| Box::pin(async move { tx.queue_insert(&queue).await })).await.unwrap();
}

/// Inserts a queued run and its queue entry with `score`.
async fn enqueue(store: &Arc<dyn Store>, queue: &QueueRow, task: &str, score: i64) -> RunRow {
    let (run, snapshot) = fixtures::queued_run(queue, task, score);
    let item = fixtures::item(&run, score);
    let stored = run.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.run_insert(&run, &snapshot).await?;
                tx.queue_push(&item).await
            })
        })
        .await
        .unwrap();
    stored
}

fn tasks(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `queue_take` returns the lowest scores first, never one above `max_score`, and removes what it
/// returns.
pub async fn take_orders_by_score_and_respects_max_score(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "task/a", None);
    add_queue(&store, &queue).await;
    let late = enqueue(&store, &queue, "a", 300).await;
    let early = enqueue(&store, &queue, "a", 100).await;
    let middle = enqueue(&store, &queue, "a", 200).await;
    let future = enqueue(&store, &queue, "a", 10_000).await;

    let id = queue.id.clone();
    let ready = store
        .read(move |tx| {
            Box::pin(async move { Ok::<_, Error>((tx.queue_ready(&id, 99).await?, tx.queue_ready(&id, 100).await?)) })
        })
        .await
        .unwrap();
    assert_eq!(ready, (false, true), "ready means a score at most the bound");

    let id = queue.id.clone();
    let taken = store
        .write(move |tx| Box::pin(async move { tx.queue_take(&id, &tasks(&["a"]), 1_000, 2).await }))
        .await
        .unwrap();
    let ids: Vec<_> = taken.iter().map(|i| i.run_id.clone()).collect();
    assert_eq!(ids, vec![early.id, middle.id]);
    assert_eq!(taken[0].score, 100);

    let id = queue.id.clone();
    let rest = store
        .write(move |tx| Box::pin(async move { tx.queue_take(&id, &tasks(&["a"]), 1_000, 10).await }))
        .await
        .unwrap();
    assert_eq!(rest.iter().map(|i| i.run_id.clone()).collect::<Vec<_>>(), vec![late.id]);

    let id = queue.id.clone();
    let all = store
        .write(move |tx| Box::pin(async move { tx.queue_take(&id, &tasks(&["a"]), i64::MAX, 10).await }))
        .await
        .unwrap();
    assert_eq!(all.iter().map(|i| i.run_id.clone()).collect::<Vec<_>>(), vec![future.id]);
}

/// Heads and takes see only runs of the asked tasks, in the asked environment.
pub async fn heads_and_take_filter_by_task(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let other_env = fixtures::env_id();
    let shared = fixtures::queue(&env, "shared", Some(3));
    let own = fixtures::queue(&env, "task/b", None);
    let foreign = fixtures::queue(&other_env, "shared", None);
    for q in [&shared, &own, &foreign] {
        add_queue(&store, q).await;
    }
    enqueue(&store, &shared, "x", 50).await;
    let a = enqueue(&store, &shared, "a", 70).await;
    enqueue(&store, &own, "b", 60).await;
    enqueue(&store, &foreign, "a", 10).await;

    let env_id: EnvId = env.clone();
    let mut heads = store
        .read(move |tx| Box::pin(async move { tx.queue_heads(&env_id, &tasks(&["a", "b"])).await }))
        .await
        .unwrap();
    heads.sort_by_key(|h| h.head_score);
    assert_eq!(heads.len(), 2);
    assert_eq!((heads[0].queue.id.clone(), heads[0].head_score), (own.id.clone(), 60));
    assert_eq!((heads[1].queue.id.clone(), heads[1].head_score), (shared.id.clone(), 70));
    assert_eq!(heads[1].queue.concurrency_limit, Some(3));

    let id = shared.id.clone();
    let taken = store
        .write(move |tx| Box::pin(async move { tx.queue_take(&id, &tasks(&["a"]), 1_000, 10).await }))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].run_id, a.id);
    assert_eq!(taken[0].task_id, "a");

    let env_id = env.clone();
    let none = store.read(move |tx| Box::pin(async move { tx.queue_heads(&env_id, &[]).await })).await.unwrap();
    assert!(none.is_empty());
}

/// A run can be taken out of its queue by id, and running counts move by deltas.
pub async fn remove_and_running_counts(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "task/c", Some(2));
    add_queue(&store, &queue).await;
    let run = enqueue(&store, &queue, "c", 5).await;
    let (run_id, queue_id) = (run.id.clone(), queue.id.clone());
    let (first, second) = store
        .write(move |tx| {
            Box::pin(async move {
                let first = tx.queue_remove(&run_id).await?;
                let second = tx.queue_remove(&run_id).await?;
                tx.queue_add_running(&queue_id, 2).await?;
                tx.queue_add_running(&queue_id, -1).await?;
                tx.queue_set_limit(&queue_id, Some(7)).await?;
                Ok::<_, Error>((first, second))
            })
        })
        .await
        .unwrap();
    assert!(first && !second);
    let (env_id, name) = (env.clone(), queue.name.clone());
    let stored =
        store.read(move |tx| Box::pin(async move { tx.queue_by_name(&env_id, &name).await })).await.unwrap().unwrap();
    assert_eq!(stored.running, 1);
    assert_eq!(stored.concurrency_limit, Some(7));
}

/// A queue name is unique within its environment.
pub async fn duplicate_queue_name_is_refused(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    add_queue(&store, &fixtures::queue(&env, "same", None)).await;
    let twin = fixtures::queue(&env, "same", Some(1));
    let result = store.write(move |tx| Box::pin(async move { tx.queue_insert(&twin).await })).await;
    assert!(matches!(result, Err(Error::Duplicate(_))), "{result:?}");
    let elsewhere = fixtures::queue(&fixtures::env_id(), "same", None);
    store.write(move |tx| Box::pin(async move { tx.queue_insert(&elsewhere).await })).await.unwrap();
}
