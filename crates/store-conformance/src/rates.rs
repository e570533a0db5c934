//! Rate limits of queues and the theoretical arrival times of their lanes.

use std::sync::Arc;

use stint_store::{Error, RateLimit, RateOverride, Store, StoreExt};
use stint_types::Timestamp;

use crate::fixtures;
use crate::queues::{add_queue, enqueue};

/// A queue's declared rate limit and its override are stored with the queue, read back by every
/// lookup (the queue heads included), changed and cleared.
pub async fn rate_limits_round_trip(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let declared = RateLimit { limit: 100, period_ms: 60_000, per_key: true };
    let set = RateOverride { rate: RateLimit { limit: 3, period_ms: 10_000, per_key: false }, at: Timestamp(1234) };
    let mut queue = fixtures::queue(&env, "rated", Some(2));
    queue.rate_limit = Some(declared);
    queue.rate_override = Some(set);
    add_queue(&store, &queue).await;
    enqueue(&store, &queue, "t", 10).await;
    let plain = fixtures::queue(&env, "plain", None);
    add_queue(&store, &plain).await;

    let (id, env_id, name) = (queue.id.clone(), env.clone(), queue.name.clone());
    let (got, by_name, locked, heads) = store
        .write(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.queue_get(&id).await?,
                    tx.queue_by_name(&env_id, &name).await?,
                    tx.queue_lock(&id).await?,
                    tx.queue_heads(&env_id, &["t".to_string()], None).await?,
                ))
            })
        })
        .await
        .unwrap();
    for read in [got.unwrap(), by_name.unwrap(), locked.unwrap()] {
        assert_eq!(read, queue, "every lookup reads the rate limits back");
        assert_eq!(read.rate(), Some(set.rate), "the override is in force");
    }
    assert_eq!(heads.len(), 1);
    assert_eq!((&heads[0].queue, heads[0].head_score), (&queue, 10), "heads read the rates and the score");

    let (id, plain_id) = (queue.id.clone(), plain.id.clone());
    let changed = RateLimit { limit: 5, period_ms: 1_000, per_key: false };
    let (cleared, other) = store
        .write(move |tx| {
            Box::pin(async move {
                tx.rate_set_override(&id, None).await?;
                tx.rate_set_declared(&id, Some(changed)).await?;
                let cleared = tx.queue_get(&id).await?.unwrap();
                tx.rate_set_declared(&id, None).await?;
                Ok::<_, Error>((cleared, tx.queue_get(&plain_id).await?.unwrap()))
            })
        })
        .await
        .unwrap();
    assert_eq!((cleared.rate_limit, cleared.rate_override, cleared.rate()), (Some(changed), None, Some(changed)));
    assert_eq!((other.rate_limit, other.rate_override), (None, None), "another queue is untouched");
    let id = queue.id.clone();
    let last = store.read(move |tx| Box::pin(async move { tx.queue_get(&id).await })).await.unwrap().unwrap();
    assert_eq!(last.rate(), None);
}

/// Lane times are written, moved, read back only for the lanes asked (a lane without a row is
/// left out), and pruned: only the queue's rows at or before the time given, at most as many as
/// asked.
pub async fn rate_times_are_set_read_and_pruned(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let queue = fixtures::queue(&env, "keys", None);
    let other = fixtures::queue(&env, "other", None);
    add_queue(&store, &queue).await;
    add_queue(&store, &other).await;
    let (q, o) = (queue.id.clone(), other.id.clone());
    let (asked, moved, pruned, left, kept) = store
        .write(move |tx| {
            Box::pin(async move {
                tx.rate_set_tats(&q, &[("", 100), ("a", 200), ("b", 300), ("c", 5_000)]).await?;
                tx.rate_set_tats(&o, &[("", 10), ("a", 20)]).await?;
                let mut asked = tx.rate_tats(&q, &["a", "", "missing"]).await?;
                asked.sort();
                tx.rate_set_tats(&q, &[("a", 7_000), ("d", 250)]).await?;
                let mut moved = tx.rate_tats(&q, &["a", "d"]).await?;
                moved.sort();
                // Rows at or before 300: '', 'b' and 'd'; two of them go first, then the last.
                let mut pruned = tx.rate_prune(&q, 300, 2).await?;
                pruned += 10 * tx.rate_prune(&q, 300, 10).await?;
                let mut left = tx.rate_tats(&q, &["", "a", "b", "c", "d"]).await?;
                left.sort();
                let mut kept = tx.rate_tats(&o, &["", "a"]).await?;
                kept.sort();
                Ok::<_, Error>((asked, moved, pruned, left, kept))
            })
        })
        .await
        .unwrap();
    assert_eq!(asked, vec![(String::new(), 100), ("a".to_string(), 200)]);
    assert_eq!(moved, vec![("a".to_string(), 7_000), ("d".to_string(), 250)]);
    assert_eq!(pruned, 2 + 10, "two rows, then the one left");
    assert_eq!(left, vec![("a".to_string(), 7_000), ("c".to_string(), 5_000)]);
    assert_eq!(kept, vec![(String::new(), 10), ("a".to_string(), 20)], "another queue's rows stay");
    let q = queue.id.clone();
    let none = store.read(move |tx| Box::pin(async move { tx.rate_tats(&q, &[]).await })).await.unwrap();
    assert!(none.is_empty());
}
