//! Waitpoints: their keys, completion, due times, the waitpoints of runs and batches, and the
//! listing of tokens.

use std::sync::Arc;

use stint_store::{Error, Store, StoreExt, WaitpointListParams, WaitpointRow};
use stint_types::{BatchId, EnvId, RunId, Timestamp, WaitpointId, WaitpointKind, WaitpointStatus};

use crate::fixtures;

async fn insert(store: &Arc<dyn Store>, row: &WaitpointRow) -> Result<(), Error> {
    let row = row.clone();
    store.write(move |tx| Box::pin(async move { tx.waitpoint_insert(&row).await })).await
}

pub(crate) async fn insert_all(store: &Arc<dyn Store>, rows: &[&WaitpointRow]) {
    for row in rows {
        insert(store, row).await.unwrap();
    }
}

async fn get(store: &Arc<dyn Store>, id: &WaitpointId) -> Option<WaitpointRow> {
    let id = id.clone();
    store.read(move |tx| Box::pin(async move { tx.waitpoint_get(&id).await })).await.unwrap()
}

pub(crate) async fn complete(store: &Arc<dyn Store>, id: &WaitpointId, output: &str, is_error: bool, at: i64) -> bool {
    let (id, output) = (id.clone(), output.to_string());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.waitpoint_complete(&id, Some(&output), Some("application/json"), is_error, Timestamp(at)).await
            })
        })
        .await
        .unwrap()
}

/// A `MANUAL` waitpoint holding its creator's key.
fn keyed_token(env_id: &EnvId, key: &str, created_at: i64) -> WaitpointRow {
    WaitpointRow {
        idempotency_key: key.to_string(),
        user_key: true,
        ..fixtures::waitpoint(env_id, WaitpointKind::Manual, created_at)
    }
}

/// A waitpoint comes back as written, by id, many at once (locked in id order) and by its key; a
/// key is unique within an environment only, and a run or a batch has one waitpoint.
pub async fn waitpoints_round_trip_and_keys_are_unique_per_environment(store: Arc<dyn Store>) {
    let (env, other) = (fixtures::env_id(), fixtures::env_id());
    let token = WaitpointRow {
        idempotency_key_expires_at: Some(Timestamp(500)),
        completed_after: Some(Timestamp(900)),
        tags: vec!["a".into(), "b".into()],
        ..keyed_token(&env, "order-1", 10)
    };
    let run_id = fixtures::run_id();
    let of_run =
        WaitpointRow { completed_by_run_id: Some(run_id.clone()), ..fixtures::waitpoint(&env, WaitpointKind::Run, 11) };
    let batch_id = fixtures::batch_id();
    let of_batch = WaitpointRow {
        idempotency_key: batch_id.to_string(),
        completed_by_batch_id: Some(batch_id.clone()),
        ..fixtures::waitpoint(&env, WaitpointKind::Batch, 12)
    };
    insert_all(&store, &[&token, &of_run, &of_batch]).await;
    for row in [&token, &of_run, &of_batch] {
        assert_eq!(get(&store, &row.id).await.as_ref(), Some(row));
    }
    assert_eq!(get(&store, &fixtures::waitpoint_id()).await, None);

    let refused = [
        ("the key in the environment", keyed_token(&env, "order-1", 13)),
        ("the id", WaitpointRow { idempotency_key: "fresh".into(), ..token.clone() }),
        (
            "a second waitpoint of the run",
            WaitpointRow { completed_by_run_id: Some(run_id), ..fixtures::waitpoint(&env, WaitpointKind::Run, 13) },
        ),
        (
            "a second waitpoint of the batch",
            WaitpointRow {
                completed_by_batch_id: Some(batch_id),
                ..fixtures::waitpoint(&env, WaitpointKind::Batch, 13)
            },
        ),
    ];
    for (what, row) in &refused {
        let answer = insert(&store, row).await;
        assert!(matches!(answer, Err(Error::Duplicate(_))), "{what}: {answer:?}");
    }
    let elsewhere = keyed_token(&other, "order-1", 14);
    insert(&store, &elsewhere).await.unwrap();

    let ids = vec![of_batch.id.clone(), fixtures::waitpoint_id(), token.id.clone()];
    let (mut many, locked, none, by_key, other_by_key, missing) = store
        .write(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.waitpoint_get_many(&ids).await?,
                    tx.waitpoint_lock_many(&ids).await?,
                    tx.waitpoint_lock_many(&[]).await?,
                    tx.waitpoint_by_key(&env, "order-1").await?,
                    tx.waitpoint_by_key(&other, "order-1").await?,
                    tx.waitpoint_by_key(&env, "order-2").await?,
                ))
            })
        })
        .await
        .unwrap();
    many.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(many, vec![token.clone(), of_batch.clone()]);
    assert_eq!(locked, vec![token.clone(), of_batch], "locked in id order");
    assert_eq!(none, Vec::new());
    assert_eq!(by_key, Some(token));
    assert_eq!(other_by_key, Some(elsewhere));
    assert_eq!(missing, None);
}

/// A retired key moves aside for a random one, and a new waitpoint can then hold it.
pub async fn a_retired_key_can_be_held_again(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let old = keyed_token(&env, "k", 10);
    insert(&store, &old).await.unwrap();
    let id = old.id.clone();
    store.write(move |tx| Box::pin(async move { tx.waitpoint_retire_key(&id, "random-1").await })).await.unwrap();
    let retired =
        WaitpointRow { idempotency_key: "random-1".into(), inactive_idempotency_key: Some("k".into()), ..old.clone() };
    assert_eq!(get(&store, &old.id).await, Some(retired.clone()));

    let new = keyed_token(&env, "k", 20);
    insert(&store, &new).await.unwrap();
    let (by_key, by_random) = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((tx.waitpoint_by_key(&env, "k").await?, tx.waitpoint_by_key(&env, "random-1").await?))
            })
        })
        .await
        .unwrap();
    assert_eq!(by_key, Some(new));
    assert_eq!(by_random, Some(retired));
}

/// A waitpoint is completed once: a second completion changes nothing and says so.
pub async fn completing_is_once_and_keeps_the_first_output(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let (token, failed) =
        (fixtures::waitpoint(&env, WaitpointKind::Manual, 10), fixtures::waitpoint(&env, WaitpointKind::Run, 11));
    insert_all(&store, &[&token, &failed]).await;
    assert!(complete(&store, &token.id, "{\"a\":1}", false, 50).await);
    assert!(!complete(&store, &token.id, "{\"b\":2}", true, 60).await);
    let completed = WaitpointRow {
        status: WaitpointStatus::Completed,
        completed_at: Some(Timestamp(50)),
        output: Some("{\"a\":1}".into()),
        output_type: Some("application/json".into()),
        ..token.clone()
    };
    assert_eq!(get(&store, &token.id).await, Some(completed));

    assert!(complete(&store, &failed.id, "{\"message\":\"boom\"}", true, 70).await);
    let got = get(&store, &failed.id).await.unwrap();
    assert_eq!((got.status, got.output_is_error), (WaitpointStatus::Completed, true));
    assert!(!complete(&store, &fixtures::waitpoint_id(), "null", false, 80).await, "a missing one is not pending");
}

async fn due(store: &Arc<dyn Store>, now: i64, limit: u32) -> (Vec<WaitpointId>, Option<Timestamp>) {
    store
        .read(move |tx| {
            Box::pin(async move {
                let due = tx.waitpoint_due(Timestamp(now), limit).await?;
                Ok::<_, Error>((due.into_iter().map(|w| w.id).collect(), tx.waitpoint_next_due().await?))
            })
        })
        .await
        .unwrap()
}

/// Pending `DATETIME` waits and `MANUAL` timeouts fall due at their time, earliest first;
/// completed waitpoints and those without a time never do.
pub async fn due_waitpoints_are_found_by_time_earliest_first(store: Arc<dyn Store>) {
    assert_eq!(due(&store, i64::MAX, 10).await, (Vec::new(), None));
    let env = fixtures::env_id();
    let at =
        |kind, time: i64| WaitpointRow { completed_after: Some(Timestamp(time)), ..fixtures::waitpoint(&env, kind, 1) };
    let wait = at(WaitpointKind::Datetime, 30);
    let timeout = at(WaitpointKind::Manual, 20);
    let done = at(WaitpointKind::Datetime, 10);
    let never = fixtures::waitpoint(&env, WaitpointKind::Manual, 1);
    let of_run = fixtures::waitpoint(&env, WaitpointKind::Run, 1);
    insert_all(&store, &[&wait, &timeout, &done, &never, &of_run]).await;
    assert!(complete(&store, &done.id, "null", false, 11).await);

    assert_eq!(due(&store, 19, 10).await, (Vec::new(), Some(Timestamp(20))));
    assert_eq!(due(&store, 20, 10).await.0, vec![timeout.id.clone()], "due at its time");
    assert_eq!(due(&store, 100, 10).await.0, vec![timeout.id.clone(), wait.id.clone()]);
    assert_eq!(due(&store, 100, 1).await.0, vec![timeout.id.clone()]);
    assert!(complete(&store, &timeout.id, "null", true, 21).await);
    assert_eq!(due(&store, 100, 10).await, (vec![wait.id.clone()], Some(Timestamp(30))));
}

/// The pending `RUN` waitpoints of finishing runs and `BATCH` waitpoints of finishing batches
/// are found by their runs and batches; a run's own waitpoint is found whatever its state.
pub async fn pending_waitpoints_of_runs_and_batches_are_found(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let (a, b, c) = (fixtures::run_id(), fixtures::run_id(), fixtures::run_id());
    let (x, y, z) = (fixtures::batch_id(), fixtures::batch_id(), fixtures::batch_id());
    let of_run = |run: &RunId| WaitpointRow {
        completed_by_run_id: Some(run.clone()),
        ..fixtures::waitpoint(&env, WaitpointKind::Run, 1)
    };
    let of_batch = |batch: &BatchId| WaitpointRow {
        completed_by_batch_id: Some(batch.clone()),
        ..fixtures::waitpoint(&env, WaitpointKind::Batch, 1)
    };
    let (of_a, of_b, of_x, of_y) = (of_run(&a), of_run(&b), of_batch(&x), of_batch(&y));
    // A waitpoint of another kind naming a run and a batch is neither's.
    let other_kind = WaitpointRow {
        completed_by_run_id: Some(c.clone()),
        completed_by_batch_id: Some(z.clone()),
        ..fixtures::waitpoint(&env, WaitpointKind::Manual, 1)
    };
    insert_all(&store, &[&of_a, &of_b, &of_x, &of_y, &other_kind]).await;
    assert!(complete(&store, &of_b.id, "null", false, 5).await);
    assert!(complete(&store, &of_y.id, "null", false, 5).await);

    let (runs, batches, no_runs, no_batches, own_a, own_b, own_c) = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.waitpoint_pending_for_runs(&[c.clone(), b.clone(), a.clone()]).await?,
                    tx.waitpoint_pending_for_batches(&[z, y, x]).await?,
                    tx.waitpoint_pending_for_runs(&[]).await?,
                    tx.waitpoint_pending_for_batches(&[]).await?,
                    tx.waitpoint_of_run(&a).await?,
                    tx.waitpoint_of_run(&b).await?,
                    tx.waitpoint_of_run(&c).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(runs, vec![of_a.clone()]);
    assert_eq!(batches, vec![of_x]);
    assert_eq!((no_runs, no_batches), (Vec::new(), Vec::new()));
    assert_eq!(own_a, Some(of_a));
    assert_eq!(own_b.map(|w| w.status), Some(WaitpointStatus::Completed));
    assert_eq!(own_c, None);
}

/// An environment's tokens are listed newest first, by status, error, creator's key, any of
/// some tags and creation time, and paged by id both ways; other kinds and environments are not.
pub async fn tokens_are_listed_by_filters_newest_first(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let token = |n: i64| fixtures::waitpoint(&env, WaitpointKind::Manual, 100 + n);
    let retired = WaitpointRow { inactive_idempotency_key: Some("key-0".into()), user_key: true, ..token(0) };
    let tokens = [
        WaitpointRow { tags: vec!["vip".into()], ..keyed_token(&env, "key-0", 101) },
        token(2),
        token(3),
        WaitpointRow { tags: vec!["vip".into(), "eu".into()], ..token(4) },
        WaitpointRow { tags: vec!["eu".into()], ..token(5) },
        token(6),
    ];
    let wait = fixtures::waitpoint(&env, WaitpointKind::Datetime, 107);
    let elsewhere = fixtures::waitpoint(&fixtures::env_id(), WaitpointKind::Manual, 108);
    insert_all(&store, &[&retired, &wait, &elsewhere]).await;
    insert_all(&store, &tokens.iter().collect::<Vec<_>>()).await;
    assert!(complete(&store, &tokens[1].id, "{\"ok\":true}", false, 120).await);
    assert!(complete(&store, &tokens[2].id, "{\"code\":\"TRIGGER_WAITPOINT_TIMEOUT\"}", true, 121).await);

    let list = |params: WaitpointListParams| {
        let store = store.clone();
        async move {
            let found = store.read(move |tx| Box::pin(async move { tx.waitpoint_list(&params).await })).await.unwrap();
            found.into_iter().map(|w| w.id).collect::<Vec<_>>()
        }
    };
    let ids = |at: &[usize]| at.iter().map(|i| tokens[*i].id.clone()).collect::<Vec<_>>();
    let base = WaitpointListParams { env_id: Some(env.clone()), limit: 100, ..WaitpointListParams::default() };
    let mut newest_first = ids(&[5, 4, 3, 2, 1, 0]);
    newest_first.push(retired.id.clone());
    assert_eq!(list(base.clone()).await, newest_first);
    let pending = WaitpointListParams { status: Some(WaitpointStatus::Pending), ..base.clone() };
    assert_eq!(list(pending).await, [ids(&[5, 4, 3, 0]), vec![retired.id.clone()]].concat());
    let completed = WaitpointListParams { status: Some(WaitpointStatus::Completed), ..base.clone() };
    assert_eq!(list(completed).await, ids(&[2, 1]));
    assert_eq!(list(WaitpointListParams { is_error: Some(true), ..base.clone() }).await, ids(&[2]));
    assert_eq!(list(WaitpointListParams { is_error: Some(false), ..base.clone() }).await, ids(&[1]), "completed only");
    let by_key = WaitpointListParams { idempotency_key: Some("key-0".into()), ..base.clone() };
    assert_eq!(list(by_key).await, ids(&[0]), "the key's holder");
    let random = WaitpointListParams { idempotency_key: Some(tokens[5].idempotency_key.clone()), ..base.clone() };
    assert_eq!(list(random).await, Vec::<WaitpointId>::new(), "a random key is not a creator's");
    let vip = WaitpointListParams { tags: vec!["vip".into()], ..base.clone() };
    assert_eq!(list(vip).await, ids(&[3, 0]));
    let any = WaitpointListParams { tags: vec!["vip".into(), "eu".into()], ..base.clone() };
    assert_eq!(list(any).await, ids(&[4, 3, 0]), "any of the tags, each token once");
    let range =
        WaitpointListParams { created_from: Some(Timestamp(103)), created_to: Some(Timestamp(104)), ..base.clone() };
    assert_eq!(list(range).await, ids(&[3, 2]));

    let page = list(WaitpointListParams { limit: 3, ..base.clone() }).await;
    assert_eq!(page, newest_first[..3].to_vec());
    let next = list(WaitpointListParams { limit: 3, after: Some(page[2].clone()), ..base.clone() }).await;
    assert_eq!(next, newest_first[3..6].to_vec());
    let previous = list(WaitpointListParams { limit: 2, before: Some(next[0].clone()), ..base.clone() }).await;
    assert_eq!(previous, newest_first[1..3].to_vec());
}
