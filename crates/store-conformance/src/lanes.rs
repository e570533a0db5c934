//! The lanes of a queue: its waiting runs by concurrency key.

use std::sync::Arc;

use stint_store::{Lane, QueueRow, RunRow, Store, StoreExt};
use stint_types::RunId;

use crate::fixtures;
use crate::queues::{add_queue, enqueue, leave};

async fn keyed(store: &Arc<dyn Store>, queue: &QueueRow, task: &str, key: Option<&str>, score: i64) -> RunRow {
    let (mut run, snapshot) = fixtures::queued_run(queue, task, score);
    run.concurrency_key = key.map(str::to_string);
    let stored = run.clone();
    store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await.unwrap();
    stored
}

/// The lanes with runs ready at 1,000.
async fn lanes(store: &Arc<dyn Store>, queue: &QueueRow, after: Option<&str>, limit: u32) -> Vec<String> {
    lanes_at(store, queue, after, 1_000, limit).await
}

async fn lanes_at(store: &Arc<dyn Store>, queue: &QueueRow, after: Option<&str>, at: i64, limit: u32) -> Vec<String> {
    let (id, after) = (queue.id.clone(), after.map(str::to_string));
    store
        .read(move |tx| Box::pin(async move { tx.queue_lanes(&id, after.as_deref(), None, at, limit).await }))
        .await
        .unwrap()
}

async fn take(store: &Arc<dyn Store>, queue: &QueueRow, lane: Option<Option<&str>>, limit: u32) -> Vec<RunId> {
    let (id, lane) = (queue.id.clone(), lane.map(|l| l.map(str::to_string)));
    let runs = store
        .read(move |tx| {
            Box::pin(async move {
                let lane = match &lane {
                    None => Lane::All,
                    Some(None) => Lane::Unkeyed,
                    Some(Some(key)) => Lane::Key(key),
                };
                tx.queue_take(&id, lane, &["t".to_string()], None, 1_000, limit).await
            })
        })
        .await
        .unwrap();
    runs.into_iter().map(|r| r.id).collect()
}

/// `queue_lanes` lists the keys with ready runs in order, from after a key and up to a limit;
/// `queue_take` reads one lane by score, the runs without a key being a lane of their own.
pub async fn lanes_list_keys_and_take_one_lane(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "task/t", None);
    add_queue(&store, &queue).await;
    assert!(lanes(&store, &queue, None, 10).await.is_empty(), "no keyed runs, no lanes");
    let u1 = enqueue(&store, &queue, "t", 10).await;
    let u2 = enqueue(&store, &queue, "t", 50).await;
    let b1 = keyed(&store, &queue, "t", Some("b"), 20).await;
    let b2 = keyed(&store, &queue, "t", Some("b"), 60).await;
    let a1 = keyed(&store, &queue, "t", Some("a"), 30).await;
    let a2 = keyed(&store, &queue, "t", Some("a"), 40).await;
    keyed(&store, &queue, "t", Some("a"), 5_000).await;
    keyed(&store, &queue, "other", Some("c"), 70).await;
    keyed(&store, &queue, "t", Some("d"), 9_000).await;

    assert_eq!(lanes(&store, &queue, None, 10).await, ["a", "b", "c"]);
    assert_eq!(lanes(&store, &queue, None, 2).await, ["a", "b"]);
    assert_eq!(lanes(&store, &queue, Some("a"), 10).await, ["b", "c"]);
    assert!(lanes(&store, &queue, Some("c"), 10).await.is_empty());
    assert!(lanes(&store, &queue, None, 0).await.is_empty());
    assert_eq!(lanes_at(&store, &queue, Some("b"), i64::MAX, 10).await, ["c", "d"], "d's run is ready later");
    assert_eq!(lanes_at(&store, &queue, None, 30, 10).await, ["a", "b"]);

    assert_eq!(take(&store, &queue, Some(Some("a")), 10).await, [a1.id.clone(), a2.id.clone()], "ready runs only");
    assert_eq!(take(&store, &queue, Some(None), 10).await, [u1.id.clone(), u2.id.clone()]);
    assert_eq!(take(&store, &queue, Some(Some("b")), 1).await, vec![b1.id.clone()]);
    assert!(take(&store, &queue, Some(Some("c")), 10).await.is_empty(), "c holds another task's run");
    assert_eq!(
        take(&store, &queue, None, 10).await,
        [u1.id.clone(), b1.id.clone(), a1.id.clone(), a2.id.clone(), u2.id.clone(), b2.id.clone()]
    );

    for run in [&b1, &b2] {
        leave(&store, run).await;
    }
    assert_eq!(lanes(&store, &queue, None, 10).await, ["a", "c"], "a lane goes when its last run leaves");
}
