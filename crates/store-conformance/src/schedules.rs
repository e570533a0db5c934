//! Schedules: their uniqueness rules, updates, listing, due times, and the runs they fired.

use std::sync::Arc;

use stint_store::{Error, ScheduleFireRow, ScheduleRow, Store, StoreExt};
use stint_types::{EnvId, RunId, ScheduleId, Timestamp};

use crate::fixtures;

async fn insert(store: &Arc<dyn Store>, row: &ScheduleRow) -> Result<(), Error> {
    let row = row.clone();
    store.write(move |tx| Box::pin(async move { tx.schedule_insert(&row).await })).await
}

async fn insert_all(store: &Arc<dyn Store>, rows: &[&ScheduleRow]) {
    for row in rows {
        insert(store, row).await.unwrap();
    }
}

async fn get(store: &Arc<dyn Store>, id: &ScheduleId) -> Option<ScheduleRow> {
    let id = id.clone();
    store.read(move |tx| Box::pin(async move { tx.schedule_get(&id).await })).await.unwrap()
}

async fn fire(store: &Arc<dyn Store>, row: &ScheduleFireRow) -> Result<(), Error> {
    let row = row.clone();
    store.write(move |tx| Box::pin(async move { tx.schedule_fire_insert(&row).await })).await
}

async fn fire_of(store: &Arc<dyn Store>, run_id: &RunId) -> Option<ScheduleFireRow> {
    let run_id = run_id.clone();
    store.read(move |tx| Box::pin(async move { tx.schedule_fire_of_run(&run_id).await })).await.unwrap()
}

/// The ids of the schedules due at `now`, at most `limit`, and the earliest next run of any.
async fn due(store: &Arc<dyn Store>, now: i64, limit: u32) -> (Vec<ScheduleId>, Option<Timestamp>) {
    store
        .read(move |tx| {
            Box::pin(async move {
                let due = tx.schedule_due(Timestamp(now), limit).await?;
                Ok::<_, Error>((due.into_iter().map(|s| s.id).collect(), tx.schedule_next_due().await?))
            })
        })
        .await
        .unwrap()
}

/// The ids of the environment's schedules (of `task` when given), `offset` skipped, at most
/// `limit`, and how many there are.
async fn list(
    store: &Arc<dyn Store>,
    env_id: &EnvId,
    task: Option<&str>,
    offset: u64,
    limit: u32,
) -> (Vec<ScheduleId>, u64) {
    let (env_id, task) = (env_id.clone(), task.map(str::to_string));
    store
        .read(move |tx| {
            Box::pin(async move {
                let listed = tx.schedule_list(&env_id, task.as_deref(), offset, limit).await?;
                let count = tx.schedule_count(&env_id, task.as_deref()).await?;
                Ok::<_, Error>((listed.into_iter().map(|s| s.id).collect(), count))
            })
        })
        .await
        .unwrap()
}

/// A schedule with the creator's dedup key.
fn keyed(env_id: &EnvId, task: &str, key: &str) -> ScheduleRow {
    ScheduleRow { dedup_key: Some(key.to_string()), ..fixtures::schedule(env_id, task, Some(100)) }
}

/// A schedule declared by `task`.
fn declared(env_id: &EnvId, task: &str) -> ScheduleRow {
    ScheduleRow { kind: "DECLARATIVE".into(), ..fixtures::schedule(env_id, task, Some(100)) }
}

/// A schedule comes back as written, by id and by its dedup key; an update writes every field but
/// the id, environment, kind and creation time, and can clear the optional ones.
pub async fn schedules_round_trip_and_updates_keep_what_is_fixed(store: Arc<dyn Store>) {
    let (env, other) = (fixtures::env_id(), fixtures::env_id());
    let full = ScheduleRow {
        timezone: "Europe/Paris".into(),
        external_id: Some("customer-7".into()),
        last_run: Some(Timestamp(40)),
        created_at: Timestamp(5),
        updated_at: Timestamp(6),
        ..keyed(&env, "report", "daily-report")
    };
    let bare = ScheduleRow { active: false, ..fixtures::schedule(&env, "report", None) };
    insert_all(&store, &[&full, &bare]).await;
    assert_eq!(get(&store, &full.id).await.as_ref(), Some(&full));
    assert_eq!(get(&store, &bare.id).await.as_ref(), Some(&bare));
    assert_eq!(get(&store, &fixtures::schedule_id()).await, None);

    let by_key = |env: &EnvId, key: &'static str| {
        let (store, env) = (store.clone(), env.clone());
        async move {
            store.read(move |tx| Box::pin(async move { tx.schedule_by_dedup_key(&env, key).await })).await.unwrap()
        }
    };
    assert_eq!(by_key(&env, "daily-report").await, Some(full.clone()));
    assert_eq!(by_key(&other, "daily-report").await, None, "a key belongs to its environment");
    assert_eq!(by_key(&env, "weekly-report").await, None);

    let changed = ScheduleRow {
        id: full.id.clone(),
        env_id: other.clone(),
        kind: "DECLARATIVE".into(),
        task_id: "summary".into(),
        cron: "0 9 * * 1".into(),
        timezone: "UTC".into(),
        external_id: None,
        dedup_key: Some("weekly-report".into()),
        active: false,
        next_run: Some(Timestamp(120)),
        due_at: Some(Timestamp(110)),
        last_run: Some(Timestamp(100)),
        created_at: Timestamp(50),
        updated_at: Timestamp(60),
    };
    let row = changed.clone();
    store.write(move |tx| Box::pin(async move { tx.schedule_update(&row).await })).await.unwrap();
    let kept = ScheduleRow { env_id: env.clone(), kind: full.kind.clone(), created_at: full.created_at, ..changed };
    assert_eq!(get(&store, &full.id).await, Some(kept.clone()));
    assert_eq!(by_key(&env, "weekly-report").await, Some(kept), "found by its new key");
    assert_eq!(by_key(&env, "daily-report").await, None, "its old key is free");
    assert_eq!(get(&store, &bare.id).await, Some(bare), "other schedules are untouched");
}

/// The id, a dedup key the environment has and a second declared schedule of a task in an
/// environment are refused, each without ending the transaction; the same key or declaration in
/// another environment, or of another task, is not.
pub async fn duplicate_schedules_are_refused_and_the_transaction_goes_on(store: Arc<dyn Store>) {
    let (env, other) = (fixtures::env_id(), fixtures::env_id());
    let with_key = keyed(&env, "report", "k1");
    let by_task = declared(&env, "report");
    insert_all(&store, &[&with_key, &by_task]).await;

    let refused = vec![
        ("the id", ScheduleRow { dedup_key: None, ..with_key.clone() }),
        ("the key in the environment", keyed(&env, "other-task", "k1")),
        ("a second declaration of the task", declared(&env, "report")),
        ("a declaration with a taken key", ScheduleRow { dedup_key: Some("k1".into()), ..declared(&env, "summary") }),
    ];
    let allowed = vec![
        keyed(&other, "report", "k1"),
        declared(&other, "report"),
        declared(&env, "summary"),
        fixtures::schedule(&env, "report", None),
        fixtures::schedule(&env, "report", None),
        keyed(&env, "report", "k2"),
    ];
    let attempts = refused.clone();
    let to_add = allowed.clone();
    let answers = store
        .write(move |tx| {
            Box::pin(async move {
                let mut answers = Vec::new();
                for (what, row) in &attempts {
                    answers.push((*what, tx.schedule_insert(row).await));
                }
                // Writes after a refusal go on in the same transaction and commit with it.
                for row in &to_add {
                    tx.schedule_insert(row).await?;
                }
                Ok::<_, Error>(answers)
            })
        })
        .await
        .unwrap();
    for (what, answer) in &answers {
        assert!(matches!(answer, Err(Error::Duplicate(_))), "{what}: {answer:?}");
    }
    for row in &allowed {
        assert_eq!(get(&store, &row.id).await.as_ref(), Some(row));
    }
    for (what, row) in &refused[1..] {
        assert_eq!(get(&store, &row.id).await, None, "{what} added nothing");
    }
    assert_eq!(get(&store, &with_key.id).await, Some(with_key.clone()), "the first holder is unchanged");

    // An update onto a taken key is refused too.
    let taking = ScheduleRow { dedup_key: Some("k1".into()), ..allowed[3].clone() };
    let answer = store.write(move |tx| Box::pin(async move { tx.schedule_update(&taking).await })).await;
    assert!(matches!(answer, Err(Error::Duplicate(_))), "{answer:?}");
}

/// An environment's schedules are listed oldest first (by id), of one task or all, a page at a
/// time, and counted; its declared ones are listed apart; a deleted schedule is gone.
pub async fn schedules_are_listed_counted_and_deleted(store: Arc<dyn Store>) {
    let (env, other, empty) = (fixtures::env_id(), fixtures::env_id(), fixtures::env_id());
    let a = fixtures::schedule(&env, "report", Some(10));
    let b = declared(&env, "summary");
    let c = fixtures::schedule(&env, "report", Some(30));
    let d = declared(&env, "report");
    let e = fixtures::schedule(&env, "summary", None);
    let elsewhere = declared(&other, "report");
    // Inserted out of id order: the order listed is the ids'.
    insert_all(&store, &[&d, &a, &elsewhere, &e, &c, &b]).await;
    let ids = |rows: &[&ScheduleRow]| rows.iter().map(|s| s.id.clone()).collect::<Vec<_>>();

    assert_eq!(list(&store, &env, None, 0, 10).await, (ids(&[&a, &b, &c, &d, &e]), 5));
    assert_eq!(list(&store, &env, None, 1, 2).await, (ids(&[&b, &c]), 5));
    assert_eq!(list(&store, &env, None, 4, 10).await, (ids(&[&e]), 5));
    assert_eq!(list(&store, &env, None, 5, 10).await, (Vec::new(), 5));
    assert_eq!(list(&store, &env, None, u64::MAX, 10).await, (Vec::new(), 5), "far past the end");
    assert_eq!(list(&store, &env, None, 0, 0).await, (Vec::new(), 5));
    assert_eq!(list(&store, &env, Some("report"), 0, 10).await, (ids(&[&a, &c, &d]), 3));
    assert_eq!(list(&store, &env, Some("report"), 1, 1).await, (ids(&[&c]), 3));
    assert_eq!(list(&store, &env, Some("report"), 2, 5).await, (ids(&[&d]), 3));
    assert_eq!(list(&store, &env, Some("summary"), 0, 10).await, (ids(&[&b, &e]), 2));
    assert_eq!(list(&store, &env, Some("missing"), 0, 10).await, (Vec::new(), 0));
    assert_eq!(list(&store, &other, None, 0, 10).await, (ids(&[&elsewhere]), 1));
    assert_eq!(list(&store, &empty, None, 0, 10).await, (Vec::new(), 0));

    let (listed_in_full, declared_here, declared_none) = {
        let (env, empty) = (env.clone(), empty.clone());
        store
            .read(move |tx| {
                Box::pin(async move {
                    Ok::<_, Error>((
                        tx.schedule_list(&env, None, 0, 2).await?,
                        tx.schedule_declarative(&env).await?,
                        tx.schedule_declarative(&empty).await?,
                    ))
                })
            })
            .await
            .unwrap()
    };
    assert_eq!(listed_in_full, vec![a.clone(), b.clone()], "listed rows are whole");
    assert_eq!(declared_here, vec![b.clone(), d.clone()]);
    assert_eq!(declared_none, Vec::new());

    // Deleting keeps the runs a schedule fired: they still name it.
    let run = fixtures::run_id();
    let fired = ScheduleFireRow { schedule_id: c.id.clone(), fire_time: Timestamp(30), run_id: run.clone() };
    fire(&store, &fired).await.unwrap();
    let delete = |id: &ScheduleId| {
        let (store, id) = (store.clone(), id.clone());
        async move { store.write(move |tx| Box::pin(async move { tx.schedule_delete(&id).await })).await.unwrap() }
    };
    assert!(delete(&c.id).await, "it existed");
    assert!(!delete(&c.id).await, "deleted already");
    assert!(!delete(&fixtures::schedule_id()).await, "never existed");
    assert_eq!(get(&store, &c.id).await, None);
    assert_eq!(list(&store, &env, Some("report"), 0, 10).await, (ids(&[&a, &d]), 2));
    assert_eq!(fire_of(&store, &run).await, Some(fired));
    assert_eq!(due(&store, 99, 10).await.0, ids(&[&a]), "a deleted schedule is not due");
}

/// Schedules whose next run is at or before now are due, active or not, earliest first and in id
/// order at one time, at most the limit; the earliest next run of any is the next due time.
pub async fn due_schedules_are_found_by_time_earliest_first(store: Arc<dyn Store>) {
    assert_eq!(due(&store, i64::MAX, 10).await, (Vec::new(), None));
    let (env, other) = (fixtures::env_id(), fixtures::env_id());
    let late = fixtures::schedule(&env, "report", Some(30));
    let first_at_20 = fixtures::schedule(&other, "report", Some(20));
    let second_at_20 = ScheduleRow { active: false, ..fixtures::schedule(&env, "summary", Some(20)) };
    let never = fixtures::schedule(&env, "report", None);
    // Due before its nominal time: what counts is when its run is to be made.
    let early = ScheduleRow { due_at: Some(Timestamp(25)), ..fixtures::schedule(&env, "report", Some(60)) };
    // Inserted out of order: what is due comes by time, then id.
    insert_all(&store, &[&late, &never, &second_at_20, &first_at_20]).await;

    assert_eq!(due(&store, 19, 10).await, (Vec::new(), Some(Timestamp(20))));
    assert_eq!(due(&store, 20, 10).await.0, vec![first_at_20.id.clone(), second_at_20.id.clone()], "due at its time");
    assert_eq!(
        due(&store, 100, 10).await.0,
        vec![first_at_20.id.clone(), second_at_20.id.clone(), late.id.clone()],
        "from every environment, inactive ones too"
    );
    assert_eq!(due(&store, 100, 1).await.0, vec![first_at_20.id.clone()]);
    assert_eq!(due(&store, 100, 0).await.0, Vec::new());
    insert_all(&store, &[&early]).await;
    assert_eq!(due(&store, 24, 10).await.1, Some(Timestamp(20)));
    assert_eq!(
        due(&store, 25, 10).await.0,
        vec![first_at_20.id.clone(), second_at_20.id.clone(), early.id.clone()],
        "due at its due time, before its next run"
    );
    let row = ScheduleRow { next_run: None, due_at: None, ..early.clone() };
    store.write(move |tx| Box::pin(async move { tx.schedule_update(&row).await })).await.unwrap();

    // Moving a schedule's chain on moves it out of what is due.
    for (row, next) in [(&first_at_20, Some(80)), (&second_at_20, None)] {
        let row = ScheduleRow {
            next_run: next.map(Timestamp),
            due_at: next.map(Timestamp),
            last_run: Some(Timestamp(20)),
            ..row.clone()
        };
        store.write(move |tx| Box::pin(async move { tx.schedule_update(&row).await })).await.unwrap();
    }
    assert_eq!(due(&store, 29, 10).await, (Vec::new(), Some(Timestamp(30))));
    assert_eq!(due(&store, 100, 10).await.0, vec![late.id.clone(), first_at_20.id.clone()]);
}

/// A schedule fires once at a nominal time, whatever run a second firing would make, without
/// ending the transaction; the run it made knows the schedule and time.
pub async fn a_time_fires_once_and_a_run_knows_its_fire(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let (a, b) = (fixtures::schedule(&env, "report", Some(60)), fixtures::schedule(&env, "report", Some(60)));
    insert_all(&store, &[&a, &b]).await;
    let (run_1, run_2, run_3, run_4) = (fixtures::run_id(), fixtures::run_id(), fixtures::run_id(), fixtures::run_id());
    let at = |schedule: &ScheduleRow, time: i64, run: &RunId| ScheduleFireRow {
        schedule_id: schedule.id.clone(),
        fire_time: Timestamp(time),
        run_id: run.clone(),
    };
    let first = at(&a, 60, &run_1);
    fire(&store, &first).await.unwrap();

    let again = at(&a, 60, &run_2);
    let other_schedule = at(&b, 60, &run_3);
    let next_time = at(&a, 120, &run_4);
    let (refused, rows) = (again.clone(), vec![other_schedule.clone(), next_time.clone()]);
    let answer = store
        .write(move |tx| {
            Box::pin(async move {
                let answer = tx.schedule_fire_insert(&refused).await;
                for row in &rows {
                    tx.schedule_fire_insert(row).await?;
                }
                Ok::<_, Error>(answer)
            })
        })
        .await
        .unwrap();
    assert!(matches!(answer, Err(Error::Duplicate(_))), "the time fired already: {answer:?}");

    assert_eq!(fire_of(&store, &run_1).await, Some(first), "the first firing stays");
    assert_eq!(fire_of(&store, &run_2).await, None, "the refused firing recorded nothing");
    assert_eq!(fire_of(&store, &run_3).await, Some(other_schedule));
    assert_eq!(fire_of(&store, &run_4).await, Some(next_time));
    assert_eq!(fire_of(&store, &fixtures::run_id()).await, None, "a run no schedule made");

    let fired = |schedule: &ScheduleRow, time: i64| {
        let (store, id) = (store.clone(), schedule.id.clone());
        async move {
            store
                .read(move |tx| Box::pin(async move { tx.schedule_fire_at(&id, Timestamp(time)).await }))
                .await
                .unwrap()
        }
    };
    assert_eq!(fired(&a, 60).await.map(|f| f.run_id), Some(run_1.clone()));
    assert_eq!(fired(&a, 120).await.map(|f| f.run_id), Some(run_4.clone()));
    assert_eq!(fired(&b, 60).await.map(|f| f.run_id), Some(run_3.clone()));
    assert_eq!((fired(&a, 180).await, fired(&b, 120).await), (None, None), "times not fired");

    // A withdrawn fire is forgotten, and its time can fire again.
    let forget = |schedule: &ScheduleRow, time: i64| {
        let (store, id) = (store.clone(), schedule.id.clone());
        async move {
            store
                .write(move |tx| Box::pin(async move { tx.schedule_fire_delete(&id, Timestamp(time)).await }))
                .await
                .unwrap()
        }
    };
    assert!(forget(&a, 120).await);
    assert!(!forget(&a, 120).await, "forgotten already");
    assert_eq!(fired(&a, 120).await, None);
    assert_eq!(fire_of(&store, &run_4).await, None);
    assert_eq!(fired(&a, 60).await.map(|f| f.run_id), Some(run_1), "other times stay");
    fire(&store, &at(&a, 120, &fixtures::run_id())).await.unwrap();
}

/// A schedule moves along its chain only from the `next_run` the mover read: a second mover from
/// the same time changes nothing and learns so; only the chain is written.
pub async fn a_schedule_moves_on_only_from_the_time_it_was_read_at(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let row = ScheduleRow { last_run: Some(Timestamp(0)), ..keyed(&env, "report", "k") };
    let untouched = fixtures::schedule(&env, "report", Some(100));
    insert_all(&store, &[&row, &untouched]).await;
    let advance = |from: i64, next: Option<i64>, last: Option<i64>, now: i64| {
        let store = store.clone();
        let to = ScheduleRow {
            next_run: next.map(Timestamp),
            due_at: next.map(|t| Timestamp(t - 5)),
            last_run: last.map(Timestamp),
            updated_at: Timestamp(now),
            // Only the chain is written.
            cron: "0 0 * * *".into(),
            active: false,
            ..row.clone()
        };
        async move {
            store
                .write(move |tx| Box::pin(async move { tx.schedule_advance(Timestamp(from), &to).await }))
                .await
                .unwrap()
        }
    };
    assert!(advance(100, Some(160), Some(100), 101).await);
    let moved = ScheduleRow {
        next_run: Some(Timestamp(160)),
        due_at: Some(Timestamp(155)),
        last_run: Some(Timestamp(100)),
        updated_at: Timestamp(101),
        ..row.clone()
    };
    assert_eq!(get(&store, &row.id).await, Some(moved.clone()));
    assert!(!advance(100, Some(220), Some(160), 102).await, "moved on already");
    assert_eq!(get(&store, &row.id).await, Some(moved), "the losing mover changed nothing");
    assert!(advance(160, None, None, 103).await, "a chain can end");
    assert_eq!(get(&store, &row.id).await.map(|r| (r.next_run, r.due_at)), Some((None, None)));
    assert!(!advance(160, Some(1), None, 104).await, "an ended chain does not move");
    assert_eq!(get(&store, &untouched.id).await, Some(untouched));
}
