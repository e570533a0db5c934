//! Worker versions, the versions a worker has, and takes that pass over runs locked to another
//! version.

use std::sync::Arc;

use stint_store::{Error, Lane, RunRow, Store, StoreExt, WorkerRow, WorkerVersionRow};
use stint_types::{EnvId, RunId, Timestamp, WorkerId};

use crate::fixtures;
use crate::queues::add_queue;

fn version(env_id: &EnvId, version: &str, fingerprint: &str, seq: i64) -> WorkerVersionRow {
    WorkerVersionRow {
        env_id: env_id.clone(),
        version: version.into(),
        fingerprint: fingerprint.into(),
        seq,
        created_at: Timestamp(1_000 - seq),
    }
}

async fn insert(store: &Arc<dyn Store>, row: &WorkerVersionRow) -> Result<(), Error> {
    let row = row.clone();
    store.write(move |tx| Box::pin(async move { tx.worker_version_insert(&row).await })).await
}

/// What the environment's version lookups find: by name, by fingerprint, and its current one.
async fn lookups(
    store: &Arc<dyn Store>,
    env_id: &EnvId,
    name: &str,
    fingerprint: &str,
) -> (Option<WorkerVersionRow>, Option<WorkerVersionRow>, Option<WorkerVersionRow>) {
    let (env_id, name, fingerprint) = (env_id.clone(), name.to_string(), fingerprint.to_string());
    store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.worker_version_get(&env_id, &name).await?,
                    tx.worker_version_by_fingerprint(&env_id, &fingerprint).await?,
                    tx.worker_version_current(&env_id).await?,
                ))
            })
        })
        .await
        .unwrap()
}

/// A version is found by name and by fingerprint; the current one is the highest place, whatever
/// the times say; a name, fingerprint or place taken in the environment is a duplicate and adds
/// nothing; another environment has its own.
pub async fn versions_are_unique_per_environment_and_the_last_made_is_current(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    assert_eq!(lookups(&store, &env, "20261130.1", "aa").await, (None, None, None));
    let first = version(&env, "20261130.1", "aa", 1);
    let second = version(&env, "20261130.2", "bb", 2);
    insert(&store, &first).await.unwrap();
    insert(&store, &second).await.unwrap();
    assert_eq!(
        lookups(&store, &env, "20261130.1", "aa").await,
        (Some(first.clone()), Some(first.clone()), Some(second.clone()))
    );
    assert_eq!(lookups(&store, &env, "20261130.2", "bb").await.0, Some(second.clone()));

    for duplicate in [
        version(&env, "20261130.1", "cc", 3),
        version(&env, "20261130.3", "aa", 3),
        version(&env, "20261130.3", "cc", 2),
    ] {
        let answer = insert(&store, &duplicate).await;
        assert!(matches!(answer, Err(Error::Duplicate(_))), "{duplicate:?}: {answer:?}");
    }
    assert_eq!(lookups(&store, &env, "20261130.3", "cc").await, (None, None, Some(second.clone())), "nothing added");

    let other = fixtures::env_id();
    let theirs = version(&other, "20261130.1", "aa", 1);
    insert(&store, &theirs).await.unwrap();
    assert_eq!(lookups(&store, &other, "20261130.1", "aa").await.2, Some(theirs));
    assert_eq!(lookups(&store, &env, "20261130.1", "aa").await.2, Some(second), "each environment its own");
}

/// A worker keeps its version in each environment it serves, in their order; a worker without
/// versions has none.
pub async fn workers_keep_their_versions(store: Arc<dyn Store>) {
    let (a, b) = (fixtures::env_id(), fixtures::env_id());
    let workers = [
        (vec![a.clone()], vec!["20261130.1".to_string()], Some("20261130.1")),
        (vec![b.clone(), a.clone()], vec!["20261130.4".to_string(), "20261130.2".to_string()], Some("20261130.2")),
        (vec![a.clone()], Vec::new(), None),
    ];
    for (n, (env_ids, versions, in_a)) in workers.into_iter().enumerate() {
        let worker = WorkerRow {
            id: WorkerId::from_parts(9_000 + n as u64, 7),
            env_id: env_ids[0].clone(),
            env_ids,
            version: "build-7".into(),
            versions,
            task_ids: vec!["t".into()],
            created_at: Timestamp(5),
        };
        let stored = worker.clone();
        store.write(move |tx| Box::pin(async move { tx.worker_insert(&stored).await })).await.unwrap();
        let id = worker.id.clone();
        let found = store.read(move |tx| Box::pin(async move { tx.worker_get(&id).await })).await.unwrap();
        assert_eq!(found.as_ref(), Some(&worker));
        assert_eq!(worker.version_in(&a), in_a);
        assert_eq!(worker.version_in(&fixtures::env_id()), None, "no version where it does not serve");
    }
}

/// Inserts a run of task `t` waiting in `queue` with `score`, locked to `version`.
async fn enqueue(
    store: &Arc<dyn Store>,
    queue: &stint_store::QueueRow,
    score: i64,
    key: Option<&str>,
    version: Option<&str>,
) -> RunRow {
    let (mut run, snapshot) = fixtures::queued_run(queue, "t", score);
    run.concurrency_key = key.map(str::to_string);
    run.version = version.map(str::to_string);
    let stored = run.clone();
    store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await.unwrap();
    stored
}

/// What a worker of `version` finds in the queue: the runs a take of `lane` returns, the
/// queue's head score and the keys of its lanes.
async fn seen(
    store: &Arc<dyn Store>,
    queue: &stint_store::QueueRow,
    lane: Option<&str>,
    version: Option<&str>,
) -> (Vec<RunId>, Option<i64>, Vec<String>) {
    let (queue, lane, version) = (queue.clone(), lane.map(str::to_string), version.map(str::to_string));
    store
        .read(move |tx| {
            Box::pin(async move {
                let tasks = ["t".to_string()];
                let lane = lane.as_deref().map_or(Lane::All, Lane::Key);
                let runs = tx.queue_take(&queue.id, lane, &tasks, version.as_deref(), 1_000, 10).await?;
                let heads = tx.queue_heads(&queue.env_id, &tasks, version.as_deref()).await?;
                let head = heads.into_iter().find(|h| h.queue.id == queue.id).map(|h| h.head_score);
                let keys = tx.queue_lanes(&queue.id, None, version.as_deref(), 1_000, 10).await?;
                Ok::<_, Error>((runs.into_iter().map(|r| r.id).collect(), head, keys))
            })
        })
        .await
        .unwrap()
}

/// A take, of the whole queue or of one lane, the queue's head and the listing of its lanes pass
/// over runs locked to another version; a worker without a version sees only runs not locked.
pub async fn takes_pass_over_runs_locked_to_another_version(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "task/t", None);
    add_queue(&store, &queue).await;
    let (v1, v2) = (Some("20261130.1"), Some("20261130.2"));
    let on_v1 = enqueue(&store, &queue, 10, None, v1).await;
    let on_v2 = enqueue(&store, &queue, 20, None, v2).await;
    let free = enqueue(&store, &queue, 30, None, None).await;
    let keyed_v1 = enqueue(&store, &queue, 15, Some("j"), v1).await;
    let keyed_v2 = enqueue(&store, &queue, 5, Some("k"), v2).await;
    let keyed = enqueue(&store, &queue, 40, Some("k"), None).await;
    let keys = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();

    assert_eq!(
        seen(&store, &queue, None, v1).await,
        (vec![on_v1.id.clone(), keyed_v1.id.clone(), free.id.clone(), keyed.id.clone()], Some(10), keys(&["j", "k"]))
    );
    assert_eq!(
        seen(&store, &queue, None, v2).await,
        (vec![keyed_v2.id.clone(), on_v2.id.clone(), free.id.clone(), keyed.id.clone()], Some(5), keys(&["k"]))
    );
    assert_eq!(
        seen(&store, &queue, None, None).await,
        (vec![free.id.clone(), keyed.id.clone()], Some(30), keys(&["k"])),
        "no version: only the runs not locked"
    );
    assert_eq!(seen(&store, &queue, None, Some("20261130.3")).await.1, Some(30), "another version: the same");
    assert_eq!(seen(&store, &queue, Some("j"), v2).await.0, Vec::<RunId>::new());
    assert_eq!(seen(&store, &queue, Some("k"), v1).await.0, vec![keyed.id.clone()]);
    assert_eq!(seen(&store, &queue, Some("k"), v2).await.0, vec![keyed_v2.id, keyed.id]);
}
