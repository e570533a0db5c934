//! Transactions: atomicity per job, and many jobs committing at once.

use std::sync::Arc;

use stint_store::{Error, Store, StoreExt};

use crate::fixtures;

/// A job that fails leaves nothing behind, whether it ran alone or with others, and does not
/// undo other jobs committed with it.
pub async fn failed_job_rolls_back_only_itself(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let alone = fixtures::queue(&env, "alone", None);
    let failed = store
        .write(move |tx| {
            Box::pin(async move {
                tx.queue_insert(&alone).await?;
                Err::<(), Error>(Error::NotFound("on purpose".into()))
            })
        })
        .await;
    assert!(matches!(failed, Err(Error::NotFound(_))));
    let env_id = env.clone();
    let found = store.read(move |tx| Box::pin(async move { tx.queue_by_name(&env_id, "alone").await })).await.unwrap();
    assert_eq!(found, None, "the failed job's write was rolled back");
    let kept = fixtures::queue(&env, "kept", None);
    let dropped = fixtures::queue(&env, "dropped", None);
    let (k, d) = (kept.clone(), dropped.clone());
    let failing = store.write(move |tx| {
        Box::pin(async move {
            tx.queue_insert(&d).await?;
            Err::<(), Error>(Error::NotFound("on purpose".into()))
        })
    });
    let succeeding = store.write(move |tx| Box::pin(async move { tx.queue_insert(&k).await }));
    let (failed, succeeded) = futures::join!(failing, succeeding);
    assert!(matches!(failed, Err(Error::NotFound(_))));
    succeeded.unwrap();
    let env_id = env.clone();
    let (kept_found, dropped_found) = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((tx.queue_by_name(&env_id, "kept").await?, tx.queue_by_name(&env_id, "dropped").await?))
            })
        })
        .await
        .unwrap();
    assert_eq!(kept_found, Some(kept));
    assert_eq!(dropped_found, None);
}

/// Many concurrent write jobs all commit and are all visible afterwards.
pub async fn concurrent_writes_all_commit(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        let queue = fixtures::queue(&env, &format!("q{i}"), None);
        tasks.push(tokio::spawn(async move {
            store.write(move |tx| Box::pin(async move { tx.queue_insert(&queue).await })).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let env_id = env.clone();
    let found = store
        .read(move |tx| {
            Box::pin(async move {
                let mut found = 0;
                for i in 0..200 {
                    if tx.queue_by_name(&env_id, &format!("q{i}")).await?.is_some() {
                        found += 1;
                    }
                }
                Ok::<_, Error>(found)
            })
        })
        .await
        .unwrap();
    assert_eq!(found, 200);
}

/// A read started after a write was acknowledged sees it.
pub async fn reads_see_committed_writes(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    for i in 0..20 {
        let queue = fixtures::queue(&env, &format!("r{i}"), Some(i));
        let expected = queue.clone();
        store.write(move |tx| Box::pin(async move { tx.queue_insert(&queue).await })).await.unwrap();
        let env_id = env.clone();
        let name = expected.name.clone();
        let seen = store.read(move |tx| Box::pin(async move { tx.queue_by_name(&env_id, &name).await })).await.unwrap();
        assert_eq!(seen, Some(expected));
    }
}
