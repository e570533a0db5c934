//! Environment limits and the running counts of concurrency keys.

use std::sync::Arc;

use stint_store::{EnvLimits, Error, Store, StoreExt};

use crate::fixtures;
use crate::queues::add_queue;

/// An environment starts without limits; its limits are set and read back, also under its
/// lock; its running count is its queues' counts summed.
pub async fn environment_limits_round_trip(store: Arc<dyn Store>) {
    let (org, project, env) = fixtures::tenancy();
    let env_id = env.id.clone();
    let queues = [fixtures::queue(&env.id, "a", None), fixtures::queue(&env.id, "b", None)];
    for queue in &queues {
        add_queue(&store, queue).await;
    }
    let ids = (queues[0].id.clone(), queues[1].id.clone());
    let set = EnvLimits { concurrency_limit: Some(7), burst_factor: 1.5, paused: true };
    let (fresh, locked, running, missing) = store
        .write(move |tx| {
            Box::pin(async move {
                tx.organization_insert(&org).await?;
                tx.project_insert(&project).await?;
                tx.environment_insert(&env).await?;
                let fresh = tx.env_limits(&env.id).await?;
                tx.env_set_limits(&env.id, &set).await?;
                tx.queue_add_running(&ids.0, 2, 0).await?;
                tx.queue_add_running(&ids.1, 3, 1).await?;
                let locked = tx.env_lock(&env.id).await?;
                let running = tx.env_running(&env.id).await?;
                let missing = tx.env_limits(&fixtures::env_id()).await?;
                Ok::<_, Error>((fresh, locked, running, missing))
            })
        })
        .await
        .unwrap();
    assert_eq!(fresh, Some(EnvLimits::default()));
    assert_eq!(locked, Some(set));
    assert_eq!(running, 5);
    assert_eq!(missing, None);
    let read = store.read(move |tx| Box::pin(async move { tx.env_limits(&env_id).await })).await.unwrap();
    assert_eq!(read, Some(set));
}

/// A key's running count moves by deltas, never below zero, and a key whose count reaches zero
/// is no longer listed.
pub async fn lane_counts_move_and_empty_keys_go(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "keyed", Some(2));
    let other = fixtures::queue(&env, "other", Some(2));
    add_queue(&store, &queue).await;
    add_queue(&store, &other).await;
    let (q, o) = (queue.id.clone(), other.id.clone());
    let (first, second) = store
        .write(move |tx| {
            Box::pin(async move {
                tx.lane_add_running(&q, "a", 2).await?;
                tx.lane_add_running(&q, "b", 1).await?;
                tx.lane_add_running(&o, "a", 1).await?;
                tx.lane_add_running(&q, "a", -1).await?;
                let mut first = tx.lane_running(&q).await?;
                first.sort();
                tx.lane_add_running(&q, "b", -5).await?;
                tx.lane_add_running(&q, "c", -1).await?;
                let second = tx.lane_running(&q).await?;
                Ok::<_, Error>((first, second))
            })
        })
        .await
        .unwrap();
    assert_eq!(first, vec![("a".to_string(), 1), ("b".to_string(), 1)]);
    assert_eq!(second, vec![("a".to_string(), 1)]);
}
