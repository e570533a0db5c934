//! Queues, and the runs waiting in them.

use std::sync::Arc;

use stint_store::{Error, Lane, LimitOverride, QueueRow, RunRow, Store, StoreExt};
use stint_types::{EnvId, ExecutionStatus, QueueId, RunId, RunStatus, Timestamp};

use crate::fixtures;

pub(crate) async fn add_queue(store: &Arc<dyn Store>, queue: &QueueRow) {
    let queue = queue.clone();
    store.write(move |tx| Box::pin(async move { tx.queue_insert(&queue).await })).await.unwrap();
}

/// Inserts a run waiting in `queue` with `score`.
pub(crate) async fn enqueue(store: &Arc<dyn Store>, queue: &QueueRow, task: &str, score: i64) -> RunRow {
    let (run, snapshot) = fixtures::queued_run(queue, task, score);
    let stored = run.clone();
    store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await.unwrap();
    stored
}

/// Moves a run on, out of its queue.
pub(crate) async fn leave(store: &Arc<dyn Store>, run: &RunRow) {
    let (next, snapshot) = fixtures::moved(run, ExecutionStatus::Executing, RunStatus::Executing, 1);
    let expected = run.snapshot_id.clone();
    store.write(move |tx| Box::pin(async move { tx.run_transition(&expected, &next, &snapshot).await })).await.unwrap();
}

/// The queue with `id`, if any.
async fn get(store: &Arc<dyn Store>, id: &QueueId) -> Option<QueueRow> {
    let id = id.clone();
    store.read(move |tx| Box::pin(async move { tx.queue_get(&id).await })).await.unwrap()
}

/// The names of a page of the environment's queues.
async fn list(store: &Arc<dyn Store>, env_id: &EnvId, offset: u64, limit: u32) -> Vec<String> {
    let env_id = env_id.clone();
    let queues =
        store.read(move |tx| Box::pin(async move { tx.queue_list(&env_id, offset, limit).await })).await.unwrap();
    queues.into_iter().map(|q| q.name).collect()
}

async fn take(store: &Arc<dyn Store>, queue: &QueueRow, tasks: &[&str], max_score: i64, limit: u32) -> Vec<RunId> {
    let (id, tasks): (_, Vec<String>) = (queue.id.clone(), tasks.iter().map(|s| s.to_string()).collect());
    let runs = store
        .read(move |tx| Box::pin(async move { tx.queue_take(&id, Lane::All, &tasks, None, max_score, limit).await }))
        .await
        .unwrap();
    runs.into_iter().map(|r| r.id).collect()
}

/// `queue_take` returns the lowest scores first, never one above `max_score`; a run stays queued
/// until a transition takes it out.
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

    assert_eq!(take(&store, &queue, &["a"], 1_000, 2).await, vec![early.id.clone(), middle.id.clone()]);
    assert_eq!(
        take(&store, &queue, &["a"], 1_000, 2).await,
        vec![early.id.clone(), middle.id.clone()],
        "taking does not remove"
    );
    leave(&store, &early).await;
    leave(&store, &middle).await;
    assert_eq!(take(&store, &queue, &["a"], 1_000, 10).await, vec![late.id.clone()]);
    leave(&store, &late).await;
    assert_eq!(take(&store, &queue, &["a"], i64::MAX, 10).await, vec![future.id]);
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
    let heads = |tasks: Vec<String>| {
        let (store, env_id) = (store.clone(), env_id.clone());
        async move {
            let mut heads = store
                .read(move |tx| Box::pin(async move { tx.queue_heads(&env_id, &tasks, None).await }))
                .await
                .unwrap();
            heads.sort_by_key(|h| h.head_score);
            heads
        }
    };
    let found = heads(vec!["a".into(), "b".into()]).await;
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].queue.id.clone(), found[0].head_score), (own.id.clone(), 60));
    assert_eq!((found[1].queue.id.clone(), found[1].head_score), (shared.id.clone(), 70));
    assert_eq!(found[1].queue.concurrency_limit, Some(3));
    assert_eq!(take(&store, &shared, &["a"], 1_000, 10).await, vec![a.id.clone()]);
    assert!(heads(Vec::new()).await.is_empty());

    leave(&store, &a).await;
    let found = heads(vec!["a".into(), "b".into()]).await;
    assert_eq!(found.len(), 1, "a run that moved on leaves its queue");
}

/// Running counts move by deltas; limits can be changed; a queue can be read under its lock.
pub async fn running_counts_and_limits(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "task/c", Some(2));
    add_queue(&store, &queue).await;
    let queue_id = queue.id.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.queue_add_running(&queue_id, 3, 2).await?;
                tx.queue_add_running(&queue_id, -2, -1).await?;
                tx.queue_set_limit(&queue_id, Some(7), Some(9)).await
            })
        })
        .await
        .unwrap();
    let (env_id, name) = (env.clone(), queue.name.clone());
    let stored =
        store.read(move |tx| Box::pin(async move { tx.queue_by_name(&env_id, &name).await })).await.unwrap().unwrap();
    assert_eq!((stored.running, stored.keyed_running), (1, 1));
    assert_eq!((stored.concurrency_limit, stored.combined_limit), (Some(7), Some(9)));
    let (id, unknown) = (queue.id.clone(), fixtures::queue(&env, "missing", None).id);
    let (locked, missing) = store
        .write(move |tx| {
            Box::pin(async move { Ok::<_, Error>((tx.queue_lock(&id).await?, tx.queue_lock(&unknown).await?)) })
        })
        .await
        .unwrap();
    assert_eq!(locked, Some(stored));
    assert_eq!(missing, None);
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

/// Pausing and limit overrides are stored apart from the declared limit; queues list by name a
/// page at a time, per environment, and count their waiting runs.
pub async fn controls_round_trip(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let other_env = fixtures::env_id();
    let queue = fixtures::queue(&env, "beta", Some(5));
    let alpha = fixtures::queue(&env, "alpha", None);
    let gamma = fixtures::queue(&env, "gamma", Some(1));
    let foreign = fixtures::queue(&other_env, "aardvark", None);
    for q in [&queue, &gamma, &foreign, &alpha] {
        add_queue(&store, q).await;
    }
    let fresh = get(&store, &queue.id).await.unwrap();
    assert_eq!((fresh.paused, fresh.limit_override), (false, None));
    assert_eq!(fresh, queue);

    let id = queue.id.clone();
    store.write(move |tx| Box::pin(async move { tx.queue_set_paused(&id, true).await })).await.unwrap();
    let (id, env_id, name) = (queue.id.clone(), env.clone(), queue.name.clone());
    let (got, by_name, locked) = store
        .write(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.queue_get(&id).await?,
                    tx.queue_by_name(&env_id, &name).await?,
                    tx.queue_lock(&id).await?,
                ))
            })
        })
        .await
        .unwrap();
    for read in [got, by_name, locked] {
        assert!(read.unwrap().paused, "paused reads back from every lookup");
    }

    let set = LimitOverride { limit: 3, at: Timestamp(1234) };
    let id = queue.id.clone();
    store.write(move |tx| Box::pin(async move { tx.queue_set_override(&id, Some(set)).await })).await.unwrap();
    let overridden = get(&store, &queue.id).await.unwrap();
    assert_eq!(overridden.limit_override, Some(set));
    assert_eq!((overridden.limit(), overridden.concurrency_limit), (Some(3), Some(5)));
    let id = queue.id.clone();
    store.write(move |tx| Box::pin(async move { tx.queue_set_limit(&id, Some(8), None).await })).await.unwrap();
    let declared = get(&store, &queue.id).await.unwrap();
    assert_eq!(declared.limit_override, Some(set), "declaring a limit keeps the override");
    assert_eq!((declared.limit(), declared.concurrency_limit), (Some(3), Some(8)));
    let id = queue.id.clone();
    store.write(move |tx| Box::pin(async move { tx.queue_set_override(&id, None).await })).await.unwrap();
    let reset = get(&store, &queue.id).await.unwrap();
    assert_eq!((reset.limit_override, reset.limit(), reset.paused), (None, Some(8), true));

    assert_eq!(list(&store, &env, 0, 2).await, ["alpha", "beta"]);
    assert_eq!(list(&store, &env, 2, 2).await, ["gamma"]);
    assert!(list(&store, &env, 3, 2).await.is_empty());
    assert_eq!(list(&store, &other_env, 0, 10).await, ["aardvark"]);
    let env_id = env.clone();
    let listed = store.read(move |tx| Box::pin(async move { tx.queue_list(&env_id, 1, 1).await })).await.unwrap();
    assert_eq!(listed, [reset], "a listed queue is the whole row");
    let (env_id, other_env_id, empty_env_id) = (env.clone(), other_env.clone(), fixtures::env_id());
    let counts = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.queue_count(&env_id).await?,
                    tx.queue_count(&other_env_id).await?,
                    tx.queue_count(&empty_env_id).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(counts, (3, 1, 0));

    let first = enqueue(&store, &queue, "a", 100).await;
    enqueue(&store, &queue, "b", 200).await;
    enqueue(&store, &queue, "a", 10_000).await;
    enqueue(&store, &gamma, "a", 100).await;
    let waiting = |id: QueueId| {
        let store = store.clone();
        async move { store.read(move |tx| Box::pin(async move { tx.queue_waiting(&id).await })).await.unwrap() }
    };
    assert_eq!(waiting(queue.id.clone()).await, 3, "waiting counts every queued run, ready or not");
    leave(&store, &first).await;
    assert_eq!(waiting(queue.id.clone()).await, 2, "a run that moved on no longer waits");
    assert_eq!((waiting(gamma.id.clone()).await, waiting(alpha.id.clone()).await), (1, 0));

    assert_eq!(get(&store, &fixtures::queue(&env, "missing", None).id).await, None);
}
