//! Organizations, projects, environments and keys.

use std::sync::Arc;

use stint_store::{AccessTokenRow, AdminTokenRow, ApiKeyRow, EnvironmentRow, Error, Store, StoreExt};
use stint_types::{EnvId, EnvironmentType, KeyId, ProjectId, Timestamp, TokenId};

use crate::fixtures;

/// Rows inserted are listed back as written.
pub async fn inserts_and_lists(store: Arc<dyn Store>) {
    let (org, project, env) = fixtures::tenancy();
    let key = key_row(&env, "ab", "tr_prod_abcd", 5);
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
    let key = key_row(&env, "cd", "tr_dev_x", 1);
    let again = ApiKeyRow { id: KeyId::from_parts(1, 99), ..key.clone() };
    let same_id = ApiKeyRow { key_hash: "ce".repeat(32), ..key.clone() };
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
    assert!(matches!(result, Err(Error::Duplicate(_))), "same hash: {result:?}");
    let result = store.write(move |tx| Box::pin(async move { tx.api_key_insert(&same_id).await })).await;
    assert!(matches!(result, Err(Error::Duplicate(_))), "same id: {result:?}");
}

/// A key of `env` whose hash is `byte` repeated, made at `at`.
fn key_row(env: &EnvironmentRow, byte: &str, prefix: &str, at: i64) -> ApiKeyRow {
    ApiKeyRow {
        id: KeyId::from_parts(u64::try_from(at).unwrap(), u128::from(u8::from_str_radix(byte, 16).unwrap())),
        key_hash: byte.repeat(32),
        key_prefix: prefix.into(),
        env_id: env.id.clone(),
        name: Some(format!("key {byte}")),
        created_at: Timestamp(at),
        revoked_at: None,
    }
}

/// Writes the organization, project and environment of a fresh tenancy tree and returns them.
async fn tenancy_in(store: &Arc<dyn Store>) -> (stint_store::OrganizationRow, stint_store::ProjectRow, EnvironmentRow) {
    let (org, project, env) = fixtures::tenancy();
    let (o, p, e) = (org.clone(), project.clone(), env.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.organization_insert(&o).await?;
                tx.project_insert(&p).await?;
                tx.environment_insert(&e).await
            })
        })
        .await
        .unwrap();
    (org, project, env)
}

/// Organizations by slug, projects by reference, environments by id and by project.
pub async fn lookups_by_slug_ref_and_project(store: Arc<dyn Store>) {
    let (org, project, env) = tenancy_in(&store).await;
    let (_, other_project, other_env) = tenancy_in(&store).await;
    let dev =
        EnvironmentRow { id: EnvId::from_parts(u64::MAX >> 20, 1), kind: EnvironmentType::Development, ..env.clone() };
    let written = dev.clone();
    store.write(move |tx| Box::pin(async move { tx.environment_insert(&written).await })).await.unwrap();
    let (slug, reference, project_id, env_id, org_id) =
        (org.slug.clone(), project.reference.clone(), project.id.clone(), env.id.clone(), org.id.clone());
    let found = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.organization_by_slug(&slug).await?,
                    tx.organization_by_slug("no-such-org").await?,
                    tx.project_by_ref(&reference).await?,
                    tx.project_by_ref("proj_missing").await?,
                    tx.environment_get(&env_id).await?,
                    tx.environment_get(&EnvId::from_parts(1, 1)).await?,
                    tx.environment_list_by_project(&project_id).await?,
                    tx.organization_get(&org_id).await?,
                    tx.project_get(&project_id).await?,
                    tx.project_get(&ProjectId::from_parts(1, 1)).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(found.0, Some(org.clone()));
    assert_eq!(found.7, Some(org));
    assert_eq!(found.8, Some(project.clone()));
    assert_eq!(found.9, None);
    assert_eq!(found.1, None);
    assert_eq!(found.2, Some(project));
    assert_eq!(found.3, None);
    assert_eq!(found.4, Some(env.clone()));
    assert_eq!(found.5, None);
    assert_eq!(found.6, vec![env, dev], "only the project's environments, by id");
    assert!(!found.6.contains(&other_env) && other_project.id != found.6[0].project_id);
}

/// Keys are found by hash and by id, listed per environment (filtered by prefix, with `_` taken
/// literally), and revoked once: a second revocation keeps the first time.
pub async fn keys_are_found_listed_and_revoked(store: Arc<dyn Store>) {
    let (_, _, env) = tenancy_in(&store).await;
    let (_, _, other_env) = tenancy_in(&store).await;
    let first = key_row(&env, "a1", "tr_prod_ab12", 10);
    let second = key_row(&env, "a2", "tr_prod_sk_ab34", 11);
    // `tr_prod_ab` written with LIKE would match this one: `_` is any character there.
    let lookalike = key_row(&env, "a3", "tr_prodXab56", 12);
    let elsewhere = key_row(&other_env, "a4", "tr_prod_ab78", 13);
    let rows = vec![first.clone(), second.clone(), lookalike.clone(), elsewhere.clone()];
    store
        .write(move |tx| {
            Box::pin(async move {
                for row in &rows {
                    tx.api_key_insert(row).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    let (env_id, hash, id) = (env.id.clone(), second.key_hash.clone(), first.id.clone());
    let found = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.api_key_by_hash(&hash).await?,
                    tx.api_key_by_hash(&"ff".repeat(32)).await?,
                    tx.api_key_get(&id).await?,
                    tx.api_key_list_by_env(&env_id, None).await?,
                    tx.api_key_list_by_env(&env_id, Some("tr_prod_ab")).await?,
                    tx.api_key_list_by_env(&env_id, Some("tr_prod_sk_")).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(found.0, Some(second.clone()));
    assert_eq!(found.1, None);
    assert_eq!(found.2, Some(first.clone()));
    assert_eq!(found.3, vec![first.clone(), second.clone(), lookalike.clone()]);
    assert_eq!(found.4, vec![first.clone()]);
    assert_eq!(found.5, vec![second.clone()]);

    let id = first.id.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.api_key_revoke(&id, Timestamp(100)).await?;
                tx.api_key_revoke(&id, Timestamp(200)).await
            })
        })
        .await
        .unwrap();
    let (id, hash) = (first.id.clone(), first.key_hash.clone());
    let (by_id, by_hash, other) = store
        .read(move |tx| {
            Box::pin(async move {
                let other = tx.api_key_get(&KeyId::from_parts(11, 0xa2)).await?;
                Ok::<_, Error>((tx.api_key_get(&id).await?, tx.api_key_by_hash(&hash).await?, other))
            })
        })
        .await
        .unwrap();
    assert_eq!(by_id.as_ref().and_then(|k| k.revoked_at), Some(Timestamp(100)), "revoked once, at the first time");
    assert_eq!(by_hash, by_id, "a revoked key is still found, to be refused by its caller");
    assert_eq!(other.and_then(|k| k.revoked_at), None, "other keys are untouched");
}

/// Personal access tokens: inserted, found by hash and id, listed per project, revoked once;
/// a second token with the same hash or id is refused.
pub async fn access_tokens_round_trip(store: Arc<dyn Store>) {
    let (_, project, _) = tenancy_in(&store).await;
    let (_, other_project, _) = tenancy_in(&store).await;
    let token = |n: u8, project: &stint_store::ProjectRow| AccessTokenRow {
        id: TokenId::from_parts(100 + u64::from(n), u128::from(n)),
        token_hash: format!("{n:02x}").repeat(32),
        token_prefix: format!("tr_pat_{n:04}"),
        project_id: project.id.clone(),
        name: n.is_multiple_of(2).then(|| format!("token {n}")),
        created_at: Timestamp(i64::from(n)),
        revoked_at: None,
    };
    let (one, two, three) = (token(1, &project), token(2, &project), token(3, &other_project));
    let rows = vec![one.clone(), two.clone(), three.clone()];
    store
        .write(move |tx| {
            Box::pin(async move {
                for row in &rows {
                    tx.access_token_insert(row).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    let same_hash = AccessTokenRow { id: TokenId::from_parts(999, 9), ..one.clone() };
    let result = store.write(move |tx| Box::pin(async move { tx.access_token_insert(&same_hash).await })).await;
    assert!(matches!(result, Err(Error::Duplicate(_))), "same hash: {result:?}");
    let same_id = AccessTokenRow { token_hash: "ee".repeat(32), ..one.clone() };
    let result = store.write(move |tx| Box::pin(async move { tx.access_token_insert(&same_id).await })).await;
    assert!(matches!(result, Err(Error::Duplicate(_))), "same id: {result:?}");

    let id = two.id.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.access_token_revoke(&id, Timestamp(50)).await?;
                tx.access_token_revoke(&id, Timestamp(60)).await
            })
        })
        .await
        .unwrap();
    let (project_id, hash, id) = (project.id.clone(), one.token_hash.clone(), two.id.clone());
    let found = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.access_token_by_hash(&hash).await?,
                    tx.access_token_by_hash(&"ff".repeat(32)).await?,
                    tx.access_token_get(&id).await?,
                    tx.access_token_list(&project_id).await?,
                ))
            })
        })
        .await
        .unwrap();
    let revoked = AccessTokenRow { revoked_at: Some(Timestamp(50)), ..two };
    assert_eq!(found.0, Some(one.clone()));
    assert_eq!(found.1, None);
    assert_eq!(found.2, Some(revoked.clone()));
    assert_eq!(found.3, vec![one, revoked], "only the project's tokens, by id");
}

/// The instance has at most one admin token.
pub async fn admin_token_is_stored_once(store: Arc<dyn Store>) {
    let none = store.read(|tx| Box::pin(async move { tx.admin_token_get().await })).await.unwrap();
    assert_eq!(none, None);
    let token = AdminTokenRow { token_hash: "12".repeat(32), created_at: Timestamp(7) };
    let written = token.clone();
    store.write(move |tx| Box::pin(async move { tx.admin_token_insert(&written).await })).await.unwrap();
    let second = AdminTokenRow { token_hash: "34".repeat(32), created_at: Timestamp(8) };
    let result = store.write(move |tx| Box::pin(async move { tx.admin_token_insert(&second).await })).await;
    assert!(matches!(result, Err(Error::Duplicate(_))), "{result:?}");
    let found = store.read(|tx| Box::pin(async move { tx.admin_token_get().await })).await.unwrap();
    assert_eq!(found, Some(token));
}
