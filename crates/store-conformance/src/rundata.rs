//! What a run carries besides its state: metadata and tags, written apart from transitions, and
//! the runs it triggered.

use std::sync::Arc;

use stint_store::{Error, RunListParams, RunRow, SnapshotRow, Store, StoreExt};
use stint_types::{ExecutionStatus, RunId, RunStatus, Timestamp};

use crate::fixtures;

async fn insert(store: &Arc<dyn Store>, run: &RunRow, snapshot: &SnapshotRow) {
    let (run, snapshot) = (run.clone(), snapshot.clone());
    store.write(move |tx| Box::pin(async move { tx.run_insert(&run, &snapshot).await })).await.unwrap();
}

async fn get(store: &Arc<dyn Store>, id: &RunId) -> RunRow {
    let id = id.clone();
    store.read(move |tx| Box::pin(async move { tx.run_get(&id).await })).await.unwrap().unwrap()
}

/// Metadata and tags are set whatever the run's state, and a transition made from a copy of the
/// run read before leaves them as they were set.
pub async fn metadata_and_tags_outlive_transitions(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/m", None);
    let (mut run, first) = fixtures::queued_run(&queue, "m", 1);
    run.metadata = Some("{\"n\":0}".into());
    run.tags = vec!["a".into()];
    insert(&store, &run, &first).await;
    let read_before = run.clone();

    let id = run.id.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.run_set_metadata(&id, Some("{\"n\":5}"), Timestamp(2)).await?;
                tx.run_set_tags(&id, &["a".into(), "b".into()], Timestamp(2)).await
            })
        })
        .await
        .unwrap();
    let (next, snapshot) = fixtures::moved(&read_before, ExecutionStatus::Executing, RunStatus::Executing, 3);
    let expected = read_before.snapshot_id.clone();
    store.write(move |tx| Box::pin(async move { tx.run_transition(&expected, &next, &snapshot).await })).await.unwrap();

    let after = get(&store, &run.id).await;
    assert_eq!(after.status, RunStatus::Executing);
    assert_eq!(after.metadata.as_deref(), Some("{\"n\":5}"), "the transition kept the metadata set meanwhile");
    assert_eq!(after.tags, vec!["a".to_string(), "b".to_string()]);
    let params = RunListParams { tags: vec!["b".into()], limit: 10, ..RunListParams::default() };
    let tagged = store.read(move |tx| Box::pin(async move { tx.run_list(&params).await })).await.unwrap();
    assert_eq!(tagged.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![run.id.clone()]);

    let missing = fixtures::run_id();
    let answer =
        store.write(move |tx| Box::pin(async move { tx.run_set_metadata(&missing, None, Timestamp(4)).await })).await;
    assert!(matches!(answer, Err(Error::NotFound(_))), "{answer:?}");
}

/// Read-modify-writes of one run's metadata under its lock never lose a change, however many
/// run at once.
pub async fn locked_metadata_changes_are_not_lost(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/m", None);
    let (mut run, first) = fixtures::queued_run(&queue, "m", 1);
    run.metadata = Some("0".into());
    insert(&store, &run, &first).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, id) = (store.clone(), run.id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let locked = tx.run_lock(&id).await?.expect("the run exists");
                        let n: u64 = locked.metadata.as_deref().unwrap_or("0").parse().unwrap();
                        tx.run_set_metadata(&id, Some(&(n + 1).to_string()), Timestamp(2)).await
                    })
                })
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(get(&store, &run.id).await.metadata.as_deref(), Some("20"));
}

/// A run's children are listed oldest first, up to the limit, and only its own.
pub async fn children_are_listed_oldest_first(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/p", None);
    let (parent, first) = fixtures::queued_run(&queue, "p", 1);
    insert(&store, &parent, &first).await;
    let (other, first) = fixtures::queued_run(&queue, "p", 1);
    insert(&store, &other, &first).await;
    let mut children = Vec::new();
    for at in 0..4 {
        let (mut child, first) = fixtures::queued_run(&queue, "c", 10 + at);
        child.parent_run_id = Some(parent.id.clone());
        child.root_run_id = Some(parent.id.clone());
        child.depth = 1;
        insert(&store, &child, &first).await;
        children.push(child);
    }
    let (mut stranger, first) = fixtures::queued_run(&queue, "c", 20);
    stranger.parent_run_id = Some(other.id.clone());
    insert(&store, &stranger, &first).await;

    let id = parent.id.clone();
    let (all, first) = store
        .read(move |tx| {
            Box::pin(async move { Ok::<_, Error>((tx.run_children(&id, 100).await?, tx.run_children(&id, 2).await?)) })
        })
        .await
        .unwrap();
    assert_eq!(all, children);
    assert_eq!(first, children[..2].to_vec());
    let id = children[0].id.clone();
    let none = store.read(move |tx| Box::pin(async move { tx.run_children(&id, 100).await })).await.unwrap();
    assert!(none.is_empty());
}
