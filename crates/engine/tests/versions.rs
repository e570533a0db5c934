//! Worker versions: each distinct registration of an environment's workers is a version
//! `YYYYMMDD.N`; a run locks to the version that first starts it, or to the one `lockToVersion`
//! names, and only workers of that version take it; a replay runs on the current version.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, Seeded, task};
use stint_engine::{Completed, Error, TaskSpec, TriggerParams};
use stint_store::{EnvironmentRow, RunRow, WorkerRow};
use stint_types::{EnvironmentType, RunId, RunStatus};

/// `START`, 2027-01-15T08:00:00Z, is on this day.
const DAY: &str = "20270115";
const DAY_MS: u64 = 86_400_000;

async fn register(h: &Harness, env: &EnvironmentRow, label: &str, tasks: Vec<TaskSpec>) -> WorkerRow {
    h.engine.register_worker(env, label.into(), tasks).await.unwrap()
}

/// The worker's version in its environment.
fn version(worker: &WorkerRow) -> String {
    worker.version_in(&worker.env_id).expect("a registered worker has a version").to_string()
}

async fn trigger_locked(h: &Harness, task: &str, lock: Option<&str>) -> Result<RunRow, Error> {
    let params = TriggerParams { lock_to_version: lock.map(str::to_string), ..TriggerParams::new(task, "1") };
    h.engine.trigger(&h.prod, params).await.map(|t| t.run)
}

#[tokio::test]
async fn versions_count_up_per_day_and_identical_registrations_share_one() {
    let h = Harness::new().await;
    let first = register(&h, &h.prod, "1.0.0", vec![task("a"), task("b")]).await;
    assert_eq!(version(&first), format!("{DAY}.1"));
    assert_eq!(first.version, "1.0.0", "the worker's own string stays its build label");

    let same = register(&h, &h.prod, "1.0.0", vec![task("b"), task("a")]).await;
    assert_ne!(same.id, first.id);
    assert_eq!(version(&same), format!("{DAY}.1"), "another process of the same build shares the version");

    let relabelled = register(&h, &h.prod, "1.0.1", vec![task("a"), task("b")]).await;
    assert_eq!(version(&relabelled), format!("{DAY}.2"), "a new label is a new version");
    let retuned =
        register(&h, &h.prod, "1.0.0", vec![TaskSpec { max_duration: Some(9), ..task("a") }, task("b")]).await;
    assert_eq!(version(&retuned), format!("{DAY}.3"), "changed settings are a new version");
    assert_eq!(version(&register(&h, &h.prod, "1.0.0", vec![task("a"), task("b")]).await), format!("{DAY}.1"));

    h.advance(DAY_MS);
    let tomorrow = register(&h, &h.prod, "2.0.0", vec![task("a")]).await;
    assert_eq!(version(&tomorrow), "20270116.1", "numbers start again each day");
    let later = register(&h, &h.prod, "2.0.1", vec![task("a")]).await;
    assert_eq!(version(&later), "20270116.2");

    let dev = register(&h, &h.dev, "1.0.0", vec![task("a"), task("b")]).await;
    assert_eq!(version(&dev), "20270116.1", "each environment numbers its own versions");
}

/// A run failed on v1 is retried only by a v1 worker, even when a v2 worker asks first; a run that
/// no version has started yet goes to whichever asks first and locks to it.
#[tokio::test]
async fn a_retry_waits_for_a_worker_of_the_version_that_first_ran_it() {
    let h = Harness::new().await;
    let old = register(&h, &h.prod, "1", vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    assert_eq!(run.version, None, "a run is not locked until it starts");
    let first = h.dequeue(&old, 1).await.remove(0);
    assert_eq!(first.version.as_deref(), Some(version(&old).as_str()), "the first start locks the run");
    assert!(matches!(h.fail(&h.prod, &first, "boom").await, Completed::Retrying { .. }));

    let new = register(&h, &h.prod, "2", vec![task("t")]).await;
    assert_ne!(version(&new), version(&old));
    h.advance(1_000);
    assert!(h.dequeue(&new, 10).await.is_empty(), "the v2 worker gets nothing");
    let second = h.dequeue(&old, 10).await.remove(0);
    assert_eq!((second.id.clone(), second.attempt_number), (run.id.clone(), 2));
    assert_eq!(second.version, first.version, "the lock never changes");
    assert_eq!(second.worker_id.as_ref(), Some(&old.id));

    let fresh = h.trigger(&h.prod, "t").await;
    let taken = h.dequeue(&new, 10).await;
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&fresh.id]);
    assert_eq!(taken[0].version.as_deref(), Some(version(&new).as_str()));
}

/// Over generated dequeues by workers of three versions, of runs locked at trigger or not, every
/// attempt of a run starts on the one version it locked to.
#[tokio::test]
async fn over_generated_dequeues_a_run_only_ever_runs_on_its_version() {
    let h = Harness::new().await;
    let mut workers = Vec::new();
    for label in ["a", "a", "b", "c"] {
        workers.push(register(&h, &h.prod, label, vec![task("t")]).await);
    }
    let versions: Vec<String> = workers.iter().map(version).collect();
    assert_eq!(versions[0], versions[1]);
    let mut seed = Seeded(0xfeed);
    let mut locks: HashMap<RunId, String> = HashMap::new();
    for _ in 0..30 {
        let lock = match seed.below(3) {
            0 => None,
            n => Some(versions[1 + n as usize].clone()),
        };
        let run = trigger_locked(&h, "t", lock.as_deref()).await.unwrap();
        assert_eq!(run.version, lock);
        if let Some(lock) = lock {
            locks.insert(run.id, lock);
        }
    }
    let mut starts = 0;
    for _ in 0..300 {
        let worker = &workers[seed.below(workers.len() as u64) as usize];
        for run in h.dequeue(worker, 1 + seed.below(3) as u32).await {
            starts += 1;
            let on = version(worker);
            assert_eq!(run.version.as_deref(), Some(on.as_str()), "a run starts only on its version");
            assert_eq!(locks.entry(run.id.clone()).or_insert_with(|| on.clone()), &on, "the lock never changes");
            if seed.below(3) == 0 {
                h.succeed(&h.prod, &run, "1").await;
            } else {
                h.fail(&h.prod, &run, "again").await;
            }
        }
        h.advance(seed.below(1_500));
    }
    assert!(starts >= 60, "the generated dequeues started {starts} attempts");
}

/// `lockToVersion` pins a run to an older version while a newer worker waits for work: the run is
/// not handed to it, and only the older worker takes it.
#[tokio::test]
async fn lock_to_version_pins_a_run_while_another_version_polls() {
    let h = Harness::new().await;
    let v1 = register(&h, &h.prod, "1", vec![task("t")]).await;
    let v2 = register(&h, &h.prod, "2", vec![task("t")]).await;

    let engine = h.engine.clone();
    let polling = v2.clone();
    let waiting = tokio::spawn(async move { engine.dequeue(&polling, 10, Duration::from_millis(300)).await.unwrap() });
    h.until_waiting(1).await;
    let pinned = trigger_locked(&h, "t", Some(&version(&v1))).await.unwrap();
    assert_eq!(pinned.version.as_deref(), Some(version(&v1).as_str()));
    assert_eq!(pinned.status, RunStatus::Queued, "not handed to the waiting v2 worker");
    assert!(waiting.await.unwrap().is_empty(), "the v2 worker's wait ends with nothing");
    assert!(h.dequeue(&v2, 10).await.is_empty());

    let taken = h.dequeue(&v1, 10).await;
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&pinned.id]);
    assert_eq!(taken[0].worker_id.as_ref(), Some(&v1.id));
}

#[tokio::test]
async fn lock_to_version_must_name_a_version_of_the_environment() {
    let h = Harness::new().await;
    register(&h, &h.prod, "1", vec![task("t")]).await;
    let dev_only = version(&register(&h, &h.dev, "1", vec![task("t"), task("u")]).await);
    h.advance(DAY_MS);
    let dev_next = version(&register(&h, &h.dev, "2", vec![task("t")]).await);
    assert_eq!(dev_next, "20270116.1");

    for (lock, expected) in [
        ("20270116.1", "lockToVersion: no version '20270116.1' in this environment".to_string()),
        ("20270115.9", "lockToVersion: no version '20270115.9' in this environment".to_string()),
        ("1.0.0", "lockToVersion: '1.0.0' is not a version like 20261130.1".to_string()),
    ] {
        match trigger_locked(&h, "t", Some(lock)).await {
            Err(Error::Invalid(message)) => assert!(message.starts_with(&expected), "{lock}: {message}"),
            other => panic!("{lock}: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(dev_only, format!("{DAY}.1"));
    let runs = h.engine.runs(&h.prod, Default::default()).await.unwrap();
    assert!(runs.is_empty(), "nothing is stored by a refused trigger");
}

/// A replay runs on the environment's current version, whatever the original ran on; in an
/// environment whose workers never registered it is not locked.
#[tokio::test]
async fn a_replay_is_locked_to_the_current_version() {
    let h = Harness::new().await;
    let v1 = register(&h, &h.prod, "1", vec![task("t")]).await;
    h.trigger(&h.prod, "t").await;
    let original = h.dequeue(&v1, 1).await.remove(0);
    h.succeed(&h.prod, &original, "1").await;

    let v2 = register(&h, &h.prod, "2", vec![task("t")]).await;
    register(&h, &h.prod, "1", vec![task("t")]).await;
    let replay = h.engine.replay(&h.prod, &original.id).await.unwrap();
    assert_eq!(replay.replayed_from.as_ref(), Some(&original.id));
    assert_eq!(replay.version.as_deref(), Some(version(&v2).as_str()), "the current version is the one made last");
    assert!(h.dequeue(&v1, 10).await.is_empty(), "the original's version does not take the replay");
    assert_eq!(h.dequeue(&v2, 10).await.remove(0).id, replay.id);

    let unregistered = h.trigger(&h.dev, "t").await;
    assert_eq!(h.engine.replay(&h.dev, &unregistered.id).await.unwrap().version, None);
}

/// A worker pool has a version in each environment it serves, numbered by that environment, and
/// takes in each only the runs its version there may take.
#[tokio::test]
async fn a_pool_has_a_version_in_each_environment() {
    let h = Harness::new().await;
    let staging =
        h.engine.environments().await.unwrap().into_iter().find(|e| e.kind == EnvironmentType::Staging).unwrap();
    let prod_only = register(&h, &h.prod, "single", vec![task("t")]).await;
    let pool =
        h.engine.register_pool(vec![staging.clone(), h.prod.clone()], "pool".into(), vec![task("t")]).await.unwrap();
    assert_eq!(pool.version_in(&staging.id), Some(format!("{DAY}.1").as_str()));
    assert_eq!(pool.version_in(&h.prod.id), Some(format!("{DAY}.2").as_str()));
    assert_eq!(pool.version_in(&h.dev.id), None);

    let pinned = trigger_locked(&h, "t", Some(&version(&prod_only))).await.unwrap();
    let in_staging = h.engine.trigger(&staging, TriggerParams::new("t", "1")).await.unwrap().run;
    let taken = h.dequeue(&pool, 10).await;
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&in_staging.id], "not prod's pinned run");
    assert_eq!(taken[0].version.as_deref(), Some(format!("{DAY}.1").as_str()), "locked to its version in staging");
    assert_eq!(h.dequeue(&prod_only, 10).await.remove(0).id, pinned.id);
}

/// Registrations racing on several connections (on PostgreSQL, several transactions at once)
/// settle on one version per content, numbered without gaps.
#[tokio::test]
async fn racing_registrations_agree_on_versions() {
    let h = Harness::new().await;
    let mut racing = Vec::new();
    for n in 0..8 {
        let (engine, env) = (h.engine.clone(), h.prod.clone());
        let label = if n % 2 == 0 { "even" } else { "odd" };
        racing.push(tokio::spawn(async move {
            (label, engine.register_worker(&env, label.into(), vec![task("t")]).await.unwrap())
        }));
    }
    let mut by_label: HashMap<&str, Vec<String>> = HashMap::new();
    for one in racing {
        let (label, worker) = one.await.unwrap();
        by_label.entry(label).or_default().push(version(&worker));
    }
    let mut seen: Vec<String> = by_label
        .values()
        .map(|versions| {
            assert!(versions.iter().all(|v| v == &versions[0]), "one version per content: {versions:?}");
            versions[0].clone()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, vec![format!("{DAY}.1"), format!("{DAY}.2")]);
}

/// Keys whose ready runs are all locked to a version no live worker has do not hold up a worker of
/// another version: it reaches the keys beyond them in its first dequeue.
#[tokio::test]
async fn keys_holding_only_runs_of_another_version_are_passed_over() {
    let h = Harness::new().await;
    let old = register(&h, &h.prod, "old", vec![task("t")]).await;
    for n in 0..30 {
        let params = TriggerParams {
            concurrency_key: Some(format!("a{n:02}")),
            lock_to_version: Some(version(&old)),
            ..TriggerParams::new("t", "1")
        };
        h.engine.trigger(&h.prod, params).await.unwrap();
    }
    let new = register(&h, &h.prod, "new", vec![task("t")]).await;
    let fresh = h.trigger_keyed("t", Some("z"), 1).await.remove(0);
    let taken = h.dequeue(&new, 5).await;
    assert_eq!(taken.iter().map(|r| &r.id).collect::<Vec<_>>(), vec![&fresh.id]);
}
