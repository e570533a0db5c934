//! What a waiting run needs besides waitpoints: the edges blocking it, its batch's unfinished
//! runs, its journal, the instance's secrets, and the `resuming` flag of runs.

use std::sync::Arc;

use stint_store::{Error, JournalRow, NewRun, RunRow, Store, StoreExt, Transition};
use stint_types::{ExecutionStatus, JournalKind, RunId, RunStatus, Timestamp, WaitpointId, WaitpointKind};

use crate::fixtures;
use crate::waitpoints::{complete, insert_all};

async fn block(store: &Arc<dyn Store>, run: &RunId, waitpoints: &[&WaitpointId]) {
    let run = run.clone();
    let waitpoints: Vec<WaitpointId> = waitpoints.iter().map(|w| (*w).clone()).collect();
    store
        .write(move |tx| Box::pin(async move { tx.waitpoint_block(&run, &waitpoints, Timestamp(7)).await }))
        .await
        .unwrap();
}

async fn blocked_runs(store: &Arc<dyn Store>, waitpoints: &[&WaitpointId]) -> Vec<RunId> {
    let waitpoints: Vec<WaitpointId> = waitpoints.iter().map(|w| (*w).clone()).collect();
    store.read(move |tx| Box::pin(async move { tx.waitpoint_blocked_runs(&waitpoints).await })).await.unwrap()
}

async fn pending_count(store: &Arc<dyn Store>, run: &RunId) -> u32 {
    let run = run.clone();
    store.read(move |tx| Box::pin(async move { tx.waitpoint_pending_count(&run).await })).await.unwrap()
}

/// Blocking a run twice on a waitpoint makes one edge; a run's pending count falls as its
/// waitpoints complete; unblocking removes its edges and no other run's.
pub async fn blocking_is_idempotent_and_counts_pending_waitpoints(store: Arc<dyn Store>) {
    let env = fixtures::env_id();
    let (r1, r2, r3) = (fixtures::run_id(), fixtures::run_id(), fixtures::run_id());
    let [w1, w2, w3] = [1, 2, 3].map(|n| fixtures::waitpoint(&env, WaitpointKind::Manual, n));
    insert_all(&store, &[&w1, &w2, &w3]).await;
    block(&store, &r2, &[&w1.id, &w2.id]).await;
    block(&store, &r2, &[&w1.id]).await;
    block(&store, &r1, &[&w2.id]).await;
    block(&store, &r3, &[&w3.id]).await;
    block(&store, &r3, &[]).await;

    assert_eq!(blocked_runs(&store, &[&w2.id, &w1.id]).await, vec![r1.clone(), r2.clone()], "distinct, by id");
    assert_eq!(blocked_runs(&store, &[]).await, Vec::<RunId>::new());
    assert_eq!(pending_count(&store, &r2).await, 2, "one edge per waitpoint");
    assert!(complete(&store, &w1.id, "null", false, 9).await);
    assert_eq!(pending_count(&store, &r2).await, 1);
    assert_eq!(pending_count(&store, &r1).await, 1);
    assert_eq!(pending_count(&store, &fixtures::run_id()).await, 0);

    let id = r2.clone();
    store.write(move |tx| Box::pin(async move { tx.waitpoint_unblock(&id).await })).await.unwrap();
    assert_eq!(pending_count(&store, &r2).await, 0);
    assert_eq!(blocked_runs(&store, &[&w1.id, &w2.id, &w3.id]).await, vec![r1, r3]);
}

/// A batch's unfinished runs are the runs carrying its id without a finish time.
pub async fn unfinished_runs_of_a_batch_are_counted(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let (batch, other) = (fixtures::batch_id(), fixtures::batch_id());
    let mut runs = Vec::new();
    for (index, of) in [(0u32, &batch), (1, &batch), (2, &batch), (0, &other)] {
        let (mut run, snapshot) = fixtures::queued_run(&queue, "t", 10 + i64::from(index));
        run.batch_id = Some(of.clone());
        run.batch_index = Some(index);
        if index == 2 {
            run.status = RunStatus::Completed;
            run.execution_status = ExecutionStatus::Finished;
            run.finished_at = Some(Timestamp(20));
        }
        runs.push(NewRun { run, snapshot });
    }
    runs.push({
        let (run, snapshot) = fixtures::queued_run(&queue, "t", 30);
        NewRun { run, snapshot }
    });
    let (mut finished, snapshot) = fixtures::moved(&runs[0].run, ExecutionStatus::Finished, RunStatus::Completed, 40);
    finished.finished_at = Some(Timestamp(40));
    let expected = runs[0].run.snapshot_id.clone();
    let counts = |store: Arc<dyn Store>| {
        let (batch, other) = (batch.clone(), other.clone());
        async move {
            store
                .read(move |tx| {
                    Box::pin(async move {
                        Ok::<_, Error>((
                            tx.batch_unfinished(&batch).await?,
                            tx.batch_unfinished(&other).await?,
                            tx.batch_unfinished(&fixtures::batch_id()).await?,
                        ))
                    })
                })
                .await
                .unwrap()
        }
    };
    // An item answered by a run of no batch (its idempotency key found it) is not one of the
    // batch's runs.
    let (answered, item) = (runs[4].run.id.clone(), batch.clone());
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.run_insert_many(&runs).await?;
                tx.batch_item_insert(&item, 3, &answered).await
            })
        })
        .await
        .unwrap();
    assert_eq!(counts(store.clone()).await, (2, 1, 0));
    store
        .write(move |tx| Box::pin(async move { tx.run_transition(&expected, &finished, &snapshot).await }))
        .await
        .unwrap();
    assert_eq!(counts(store.clone()).await, (1, 1, 0));
}

/// A run's journal lists its entries in call order with every field; a place is taken once.
pub async fn journal_entries_are_kept_in_call_order(store: Arc<dyn Store>) {
    let (run, other) = (fixtures::run_id(), fixtures::run_id());
    let entry = |seq: u32, kind: JournalKind| JournalRow {
        run_id: run.clone(),
        seq,
        kind,
        name: format!("call {seq}"),
        waitpoint_id: None,
        output: None,
        child_run_id: None,
        batch_id: None,
        created_at: Timestamp(100 + i64::from(seq)),
    };
    let entries = vec![
        JournalRow { output: Some("{\"step\":0}".into()), ..entry(0, JournalKind::Step) },
        JournalRow { waitpoint_id: Some(fixtures::waitpoint_id()), ..entry(1, JournalKind::Wait) },
        JournalRow {
            waitpoint_id: Some(fixtures::waitpoint_id()),
            child_run_id: Some(fixtures::run_id()),
            ..entry(2, JournalKind::Run)
        },
        JournalRow {
            waitpoint_id: Some(fixtures::waitpoint_id()),
            batch_id: Some(fixtures::batch_id()),
            ..entry(3, JournalKind::Batch)
        },
    ];
    let shuffled = [entries[2].clone(), entries[0].clone(), entries[3].clone(), entries[1].clone()];
    let elsewhere = JournalRow { run_id: other.clone(), ..entry(0, JournalKind::Token) };
    let first = elsewhere.clone();
    store
        .write(move |tx| {
            Box::pin(async move {
                for row in shuffled.iter().chain([&first]) {
                    tx.journal_insert(row).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
    let again = JournalRow { output: Some("{\"step\":\"again\"}".into()), ..entry(1, JournalKind::Step) };
    let refused = store.write(move |tx| Box::pin(async move { tx.journal_insert(&again).await })).await;
    assert!(matches!(refused, Err(Error::Duplicate(_))), "{refused:?}");

    let (id, other_id, nobody) = (run.clone(), other.clone(), fixtures::run_id());
    let (listed, listed_other, empty) = store
        .read(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.journal_list(&id).await?,
                    tx.journal_list(&other_id).await?,
                    tx.journal_list(&nobody).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(listed, entries);
    assert_eq!(listed_other, vec![elsewhere]);
    assert_eq!(empty, Vec::new());
}

/// A named secret is stored once: later callers get the first value.
pub async fn a_secret_keeps_its_first_value(store: Arc<dyn Store>) {
    let got = store
        .write(move |tx| {
            Box::pin(async move {
                Ok::<_, Error>((
                    tx.secret_get_or_insert("signing", "first").await?,
                    tx.secret_get_or_insert("signing", "second").await?,
                    tx.secret_get_or_insert("other", "third").await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(got, ("first".into(), "first".into(), "third".into()));
    let later =
        store.write(move |tx| Box::pin(async move { tx.secret_get_or_insert("signing", "fourth").await })).await;
    assert_eq!(later.unwrap(), "first");
}

async fn get_run(store: &Arc<dyn Store>, id: &RunId) -> RunRow {
    let id = id.clone();
    store.read(move |tx| Box::pin(async move { tx.run_get(&id).await })).await.unwrap().unwrap()
}

/// A run's `resuming` flag is written by every way of adding and moving runs, one or many.
pub async fn resuming_is_kept_by_every_run_write(store: Arc<dyn Store>) {
    let queue = fixtures::queue(&fixtures::env_id(), "task/t", None);
    let (mut run, snapshot) = fixtures::queued_run(&queue, "t", 1);
    run.resuming = true;
    let (written, first) = (run.clone(), snapshot.clone());
    store.write(move |tx| Box::pin(async move { tx.run_insert(&written, &first).await })).await.unwrap();
    assert!(get_run(&store, &run.id).await.resuming, "inserted");

    let mut current = run;
    for resuming in [false, true] {
        let (mut next, snapshot) = fixtures::moved(&current, ExecutionStatus::Queued, RunStatus::Queued, 2);
        next.resuming = resuming;
        let (expected, written) = (current.snapshot_id.clone(), next.clone());
        store
            .write(move |tx| Box::pin(async move { tx.run_transition(&expected, &written, &snapshot).await }))
            .await
            .unwrap();
        assert_eq!(get_run(&store, &next.id).await.resuming, resuming, "moved");
        current = next;
    }

    let many: Vec<NewRun> = (0..12)
        .map(|i| {
            let (mut run, snapshot) = fixtures::queued_run(&queue, "t", 10 + i);
            run.resuming = i % 3 == 0;
            NewRun { run, snapshot }
        })
        .collect();
    let written = many.clone();
    store.write(move |tx| Box::pin(async move { tx.run_insert_many(&written).await })).await.unwrap();
    let moves: Vec<Transition> = many
        .iter()
        .map(|new| {
            let (mut run, snapshot) = fixtures::moved(&new.run, ExecutionStatus::Queued, RunStatus::Queued, 30);
            run.resuming = !new.run.resuming;
            Transition { expected: new.run.snapshot_id.clone(), run, snapshot }
        })
        .collect();
    for new in &many {
        assert_eq!(get_run(&store, &new.run.id).await.resuming, new.run.resuming, "inserted many at once");
    }
    let written = moves.clone();
    let answers = store.write(move |tx| Box::pin(async move { tx.run_transition_many(&written).await })).await.unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    for one in &moves {
        assert_eq!(get_run(&store, &one.run.id).await, one.run, "moved many at once");
    }
}
