//! Leases and signals: coordination between nodes sharing a database.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use stint_store::{Error, Signal, Store, StoreExt};
use stint_types::Timestamp;

use crate::fixtures;

async fn acquire(store: &Arc<dyn Store>, holder: &'static str, now: i64) -> Option<i64> {
    store
        .write(move |tx| {
            Box::pin(async move { tx.lease_acquire("work", holder, Timestamp(now), Timestamp(now + 100)).await })
        })
        .await
        .unwrap()
}

/// A lease has one holder until it expires or is released; its epoch grows when it changes hands.
pub async fn a_lease_has_one_holder_until_it_expires(store: Arc<dyn Store>) {
    assert_eq!(acquire(&store, "a", 1_000).await, Some(1));
    assert_eq!(acquire(&store, "b", 1_050).await, None, "held by a until 1,100");
    assert_eq!(acquire(&store, "a", 1_090).await, Some(1), "a renews, until 1,190");
    assert_eq!(acquire(&store, "b", 1_150).await, None);
    assert_eq!(acquire(&store, "b", 1_190).await, Some(2), "expired: b takes it");
    assert_eq!(acquire(&store, "a", 1_200).await, None);
    store.write(|tx| Box::pin(async move { tx.lease_release("work", "a").await })).await.unwrap();
    assert_eq!(acquire(&store, "a", 1_210).await, None, "only the holder can release");
    store.write(|tx| Box::pin(async move { tx.lease_release("work", "b").await })).await.unwrap();
    assert_eq!(acquire(&store, "a", 1_220).await, Some(1), "released: a takes a new lease");
}

/// Signals reach subscribers when their transaction commits, and never when it rolls back.
/// A store without subscribers (one node) has nothing to check.
pub async fn signals_arrive_when_committed(store: Arc<dyn Store>) {
    let Some(mut signals) = store.subscribe() else { return };
    let committed = Signal::Work(fixtures::env_id());
    let rolled_back = Signal::Work(fixtures::env_id());
    // The subscription may take a moment to start listening: send until the first one arrives.
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let signal = rolled_back.clone();
            let failed = store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.signal(&signal).await?;
                        Err::<(), Error>(Error::NotFound("on purpose".into()))
                    })
                })
                .await;
            assert!(failed.is_err());
            let signal = committed.clone();
            store.write(move |tx| Box::pin(async move { tx.signal(&signal).await })).await.unwrap();
            if let Ok(received) = tokio::time::timeout(Duration::from_millis(200), signals.next()).await {
                return received;
            }
        }
    })
    .await
    .expect("a committed signal arrives");
    assert_eq!(first, Some(committed));
}
