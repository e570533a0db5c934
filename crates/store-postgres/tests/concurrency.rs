//! What PostgreSQL adds to the conformance suite: several transactions, as several nodes run
//! them, dequeuing from one queue, moving one run, blocking a run on a waitpoint being completed
//! and storing one secret at the same time; several nodes starting together; a clear error when
//! the server is not there.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use stint_store::{Error, Lane, QueueRow, RunRow, StoreExt};
use stint_store_conformance::fixtures;
use stint_store_postgres::{Options, PostgresStore};
use stint_types::{ExecutionStatus, RunId, RunStatus, Timestamp, WaitpointKind, WaitpointStatus};
use tokio::sync::{Barrier, oneshot};

use crate::support::OnOwnSchema;

/// A queue holding `n` runs of task `t`.
async fn queue_with_runs(store: &OnOwnSchema, n: i64) -> (QueueRow, Vec<RunRow>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let runs: Vec<_> = (0..n).map(|i| fixtures::queued_run(&queue, "t", 100 + i)).collect();
    let (q, rows) = (queue.clone(), runs.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.queue_insert(&q).await?;
                for (run, snapshot) in &rows {
                    tx.run_insert(run, snapshot).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    (queue, runs.into_iter().map(|(run, _)| run).collect())
}

/// Two write transactions open at once, each taking one run of a queue holding several, get
/// different runs: the first one's claim is skipped by the second, not handed out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_get_the_same_run() {
    let store = Arc::new(OnOwnSchema::open().await);
    let (queue, runs) = queue_with_runs(&store, 5).await;
    let both_took = Arc::new(Barrier::new(2));
    let claim = || {
        let (store, both_took, queue_id) = (store.clone(), both_took.clone(), queue.id.clone());
        async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let taken = tx.queue_take(&queue_id, Lane::All, &["t".to_string()], None, i64::MAX, 1).await?;
                        // Neither commits before both have claimed.
                        both_took.wait().await;
                        Ok::<_, Error>(taken.into_iter().map(|r| r.id).collect::<Vec<_>>())
                    })
                })
                .await
                .unwrap()
        }
    };
    let (first, second) = tokio::join!(tokio::spawn(claim()), tokio::spawn(claim()));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!((first.len(), second.len()), (1, 1), "{first:?} {second:?}");
    assert_ne!(first, second, "two transactions claimed the same run");
    let oldest: HashSet<RunId> = runs[..2].iter().map(|r| r.id.clone()).collect();
    assert_eq!(HashSet::from([first[0].clone(), second[0].clone()]), oldest, "the two oldest runs are taken");
}

/// Four consumers dequeuing one run per transaction, as four nodes would, start every run
/// exactly once and never collide on a run (a collision would surface as a stale transition).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consumers_start_every_run_once() {
    let store = Arc::new(OnOwnSchema::open().await);
    let (queue, runs) = queue_with_runs(&store, 40).await;
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let (store, queue_id) = (store.clone(), queue.id.clone());
        consumers.push(tokio::spawn(async move {
            let mut started = Vec::new();
            loop {
                let queue_id = queue_id.clone();
                let taken = store
                    .write(move |tx| {
                        Box::pin(async move {
                            let taken =
                                tx.queue_take(&queue_id, Lane::All, &["t".to_string()], None, i64::MAX, 1).await?;
                            for run in &taken {
                                let (next, snapshot) =
                                    fixtures::moved(run, ExecutionStatus::Executing, RunStatus::Executing, 1_000);
                                tx.run_transition(&run.snapshot_id, &next, &snapshot).await?;
                            }
                            Ok::<_, Error>(taken.into_iter().map(|r| r.id).collect::<Vec<_>>())
                        })
                    })
                    .await
                    .expect("a claimed run moves on without a stale snapshot");
                if taken.is_empty() {
                    return started;
                }
                started.extend(taken);
            }
        }));
    }
    let mut started = Vec::new();
    for consumer in consumers {
        started.extend(consumer.await.unwrap());
    }
    let distinct: HashSet<RunId> = started.iter().cloned().collect();
    assert_eq!(distinct.len(), started.len(), "a run was started twice");
    assert_eq!(distinct, runs.iter().map(|r| r.id.clone()).collect::<HashSet<_>>(), "every run was started");
}

/// Moves `run` to a new executing snapshot, in a write job of its own.
fn transition_job(
    store: &Arc<OnOwnSchema>,
    run: &RunRow,
    before: Arc<Barrier>,
    go: Option<oneshot::Receiver<()>>,
    after: Option<(oneshot::Sender<()>, PgConnection, String)>,
) -> (RunRow, tokio::task::JoinHandle<Result<(), Error>>) {
    let (next, snapshot) = fixtures::moved(run, ExecutionStatus::Executing, RunStatus::Executing, 2);
    let (store, expected, moved) = (store.clone(), run.snapshot_id.clone(), next.clone());
    let handle = tokio::spawn(async move {
        store
            .write(move |tx| {
                Box::pin(async move {
                    before.wait().await;
                    if let Some(go) = go {
                        go.await.unwrap();
                    }
                    let outcome = tx.run_transition(&expected, &moved, &snapshot).await;
                    if let Some((moved_signal, mut watcher, schema)) = after {
                        moved_signal.send(()).unwrap();
                        wait_for_lock_waiter(&mut watcher, &schema).await;
                    }
                    Ok(outcome)
                })
            })
            .await
            .and_then(|outcome| outcome)
    });
    (next, handle)
}

/// Waits until a session is blocked on a lock while holding a lock on a table of `schema`.
async fn wait_for_lock_waiter(watcher: &mut PgConnection, schema: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock' AND EXISTS ( \
               SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = a.pid AND n.nspname = $1)",
        )
        .bind(schema)
        .fetch_one(&mut *watcher)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the competing transaction never waited for the row lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two transactions move one run from the same snapshot; the second waits on the first's row
/// lock and, once the first commits, finds the snapshot moved on: exactly one wins, the other is
/// stale and names the winner's snapshot, and history holds the winner's step only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_waiting_on_another_is_stale_after_it_commits() {
    let store = Arc::new(OnOwnSchema::open().await);
    let (_, runs) = queue_with_runs(&store, 1).await;
    let run = &runs[0];
    let watcher = PgConnection::connect(&support::url()).await.unwrap();
    let both_began = Arc::new(Barrier::new(2));
    let (moved, go) = oneshot::channel();
    let (winner, first) =
        transition_job(&store, run, both_began.clone(), None, Some((moved, watcher, store.schema.clone())));
    let (_, second) = transition_job(&store, run, both_began, Some(go), None);
    first.await.unwrap().expect("the first transition commits");
    match second.await.unwrap() {
        Err(Error::Stale { run_id, current }) => {
            assert_eq!(run_id, run.id);
            assert_eq!(current, winner.snapshot_id);
        }
        other => panic!("expected the second transition to be stale, got {other:?}"),
    }
    let id = run.id.clone();
    let (stored, history) = store
        .read(move |tx| Box::pin(async move { Ok::<_, Error>((tx.run_get(&id).await?, tx.snapshot_list(&id).await?)) }))
        .await
        .unwrap();
    assert_eq!(stored, Some(winner.clone()));
    let steps: Vec<_> = history.into_iter().map(|s| s.id).collect();
    assert_eq!(steps, vec![run.snapshot_id.clone(), winner.snapshot_id]);
}

/// Transitions from one snapshot racing freely: in every round exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_transitions_from_one_snapshot_let_exactly_one_win() {
    let store = Arc::new(OnOwnSchema::open().await);
    let (_, runs) = queue_with_runs(&store, 10).await;
    for run in &runs {
        let both_began = Arc::new(Barrier::new(2));
        let (a, first) = transition_job(&store, run, both_began.clone(), None, None);
        let (b, second) = transition_job(&store, run, both_began, None, None);
        let outcomes = [(a, first.await.unwrap()), (b, second.await.unwrap())];
        let winners: Vec<&RunRow> = outcomes.iter().filter(|(_, o)| o.is_ok()).map(|(r, _)| r).collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        for (_, outcome) in &outcomes {
            if let Err(error) = outcome {
                assert!(
                    matches!(error, Error::Stale { current, .. } if *current == winners[0].snapshot_id),
                    "{error:?}"
                );
            }
        }
    }
}

/// A run is blocked on a waitpoint, under its lock, while another transaction completes the
/// waitpoint: the completion waits for the block to commit and then finds the run it blocked, so
/// no run is left waiting on a completed waitpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_waiting_on_a_block_finds_the_blocked_run() {
    let store = Arc::new(OnOwnSchema::open().await);
    let waitpoint = fixtures::waitpoint(&fixtures::env_id(), WaitpointKind::Manual, 1);
    let row = waitpoint.clone();
    store.write(move |tx| Box::pin(async move { tx.waitpoint_insert(&row).await })).await.unwrap();
    let run_id = fixtures::run_id();
    let (locked, go) = oneshot::channel();
    let blocker = {
        let (store, id, run_id) = (store.clone(), waitpoint.id.clone(), run_id.clone());
        let (mut watcher, schema) = (PgConnection::connect(&support::url()).await.unwrap(), store.schema.clone());
        tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let found = tx.waitpoint_lock_many(std::slice::from_ref(&id)).await?;
                        locked.send(()).unwrap();
                        // The completion is waiting for this transaction's lock from here on.
                        wait_for_lock_waiter(&mut watcher, &schema).await;
                        tx.waitpoint_block(&run_id, &[id], Timestamp(2)).await?;
                        Ok::<_, Error>(found.into_iter().map(|w| w.status).collect::<Vec<_>>())
                    })
                })
                .await
        })
    };
    let completer = {
        let (store, id) = (store.clone(), waitpoint.id.clone());
        tokio::spawn(async move {
            go.await.unwrap();
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let completed = tx
                            .waitpoint_complete(&id, Some("{}"), Some("application/json"), false, Timestamp(3))
                            .await?;
                        Ok::<_, Error>((completed, tx.waitpoint_blocked_runs(&[id]).await?))
                    })
                })
                .await
        })
    };
    assert_eq!(blocker.await.unwrap().unwrap(), vec![WaitpointStatus::Pending], "the block saw it pending");
    assert_eq!(completer.await.unwrap().unwrap(), (true, vec![run_id]), "the completion saw the block's edge");
}

/// Nodes storing the instance's secret at the same time, each with a value of its own, all get
/// the one stored first, and it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_racing_to_store_a_secret_all_get_one() {
    let store = Arc::new(OnOwnSchema::open().await);
    let all_began = Arc::new(Barrier::new(3));
    let racers: Vec<_> = (0..3)
        .map(|n| {
            let (store, all_began) = (store.clone(), all_began.clone());
            tokio::spawn(async move {
                store
                    .write(move |tx| {
                        Box::pin(async move {
                            all_began.wait().await;
                            tx.secret_get_or_insert("signing", &format!("value-{n}")).await
                        })
                    })
                    .await
            })
        })
        .collect();
    let mut values = HashSet::new();
    for racer in racers {
        values.insert(racer.await.unwrap().unwrap());
    }
    assert_eq!(values.len(), 1, "{values:?}");
    let later = store.write(|tx| Box::pin(async move { tx.secret_get_or_insert("signing", "later").await })).await;
    assert!(values.contains(&later.unwrap()));
}

/// Nodes starting together on a new schema all open: the migration is applied once, under the
/// advisory lock, and the others find it done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_all_open() {
    let schema = support::new_schema();
    let options = support::options(&schema);
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let options = options.clone();
            tokio::spawn(async move { PostgresStore::open(&options).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for open in opens {
        outcomes.push(open.await.unwrap());
    }
    let dropped = support::drop_schema(&schema);
    for outcome in outcomes {
        if let Err(error) = outcome {
            support::no_server(&options, error);
        }
    }
    dropped.unwrap();
}

/// A server that is not there is unavailable, named without the password.
#[tokio::test]
async fn an_unreachable_server_is_named_without_its_password() {
    let options = Options::new("postgres://stint:hunter2@127.0.0.1:1/stint");
    match PostgresStore::open(&options).await {
        Err(Error::Unavailable(message)) => {
            assert!(message.contains("postgres://stint:***@127.0.0.1:1/stint"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        Err(other) => panic!("expected unavailable, got {other:?}"),
        Ok(_) => panic!("opened a store on a closed port"),
    }
}
