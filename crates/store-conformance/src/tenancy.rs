//! Organizations, projects, environments and keys.

use std::sync::Arc;

use stint_store::{ApiKeyRow, Error, Store, StoreExt};
use stint_types::Timestamp;

use crate::fixtures;

/// Rows inserted are listed back as written.
pub async fn inserts_and_lists(store: Arc<dyn Store>) {
    let (org, project, env) = fixtures::tenancy();
    let key = ApiKeyRow {
        key_hash: "ab".repeat(32),
        key_prefix: "tr_prod_abcd".into(),
        env_id: env.id.clone(),
        created_at: Timestamp(5),
    };
    let (o, p, e, k) = (org.clone(), project.clone(), env.clone(), key.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.organization_insert(&o).await?;
                tx.project_insert(&p).await?;
                tx.environment_insert(&e).await?;
                tx.api_key_insert(&k).await?;
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    let (orgs, projects, envs, keys) = store
        .read(|tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.organization_list().await?,
                    tx.project_list().await?,
                    tx.environment_list().await?,
                    tx.api_key_list().await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(orgs, vec![org]);
    assert_eq!(projects, vec![project]);
    assert_eq!(envs, vec![env]);
    assert_eq!(keys, vec![key]);
}

/// Two keys with one hash cannot both exist.
pub async fn duplicate_key_is_refused(store: Arc<dyn Store>) {
    let (org, project, env) = fixtures::tenancy();
    let key = ApiKeyRow {
        key_hash: "cd".repeat(32),
        key_prefix: "tr_dev_x".into(),
        env_id: env.id.clone(),
        created_at: Timestamp(1),
    };
    let again = key.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.organization_insert(&org).await?;
                tx.project_insert(&project).await?;
                tx.environment_insert(&env).await?;
                tx.api_key_insert(&key).await
            })
        })
        .await
        .unwrap();
    let result = store.write(move |tx| Box::pin(async move { tx.api_key_insert(&again).await })).await;
    assert!(matches!(result, Err(Error::Duplicate(_))), "{result:?}");
}
