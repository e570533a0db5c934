//! Batches: made with a count, given their items (deduplicated by index), sealed when every
//! index has arrived, and complete when every run has finished; and the one-request form.

mod common;

use std::time::Duration;

use common::{Harness, task};
use stint_engine::{BatchItem, BatchParams, Error, Idempotency, TriggerParams};
use stint_store::{EnvironmentRow, RunListParams};
use stint_types::{BatchId, BatchStatus, RunStatus};

fn item(index: u32) -> BatchItem {
    BatchItem { index, params: TriggerParams::new("t", format!("{{\"i\":{index}}}")) }
}

fn keyed(index: u32, key: &str) -> BatchItem {
    let idempotency = Some(Idempotency { key: key.into(), ttl: Duration::from_secs(3_600) });
    BatchItem { index, params: TriggerParams { idempotency, ..TriggerParams::new("t", "{}") } }
}

async fn create(h: &Harness, env: &EnvironmentRow, run_count: u32, key: Option<&str>) -> BatchId {
    let params = BatchParams { run_count, idempotency_key: key.map(str::to_string) };
    h.engine.create_batch(env, params).await.unwrap().batch.id
}

/// Every run of the batch, as a listing by batch finds them.
async fn runs_of(h: &Harness, batch: &BatchId) -> usize {
    let params = RunListParams { batch_id: Some(batch.clone()), limit: 100, ..RunListParams::default() };
    h.engine.runs(&h.prod, params).await.unwrap().len()
}

#[tokio::test]
async fn a_thousand_items_make_a_thousand_runs_in_item_order() {
    let h = Harness::new().await;
    let batch = create(&h, &h.prod, 1_000, None).await;
    // Sent in reverse: the batch's order is its items' indexes, not their arrival.
    let items: Vec<BatchItem> = (0..1_000).rev().map(item).collect();
    let added = h.engine.add_batch_items(&h.prod, &batch, items).await.unwrap();
    assert_eq!((added.accepted, added.deduplicated), (1_000, 0));
    assert!(added.batch.sealed());
    assert_eq!(added.batch.status, BatchStatus::Processing);

    let view = h.engine.batch(&h.prod, &batch).await.unwrap();
    assert_eq!(view.items.len(), 1_000);
    for (at, item) in view.items.iter().enumerate() {
        assert_eq!(item.index, at as u32);
        let run = h.run(&h.prod, &item.run_id).await;
        assert_eq!(run.payload, format!("{{\"i\":{at}}}"), "item {at}'s run carries its payload");
        assert_eq!((run.batch_id.as_ref(), run.batch_index), (Some(&batch), Some(at as u32)));
        assert_eq!(run.status, RunStatus::Queued);
    }
    let mut ids: Vec<_> = view.items.iter().map(|i| i.run_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1_000, "a run per item");
}

#[tokio::test]
async fn a_stream_sent_again_makes_no_second_run_and_is_counted() {
    let h = Harness::new().await;
    let batch = create(&h, &h.prod, 10, None).await;
    let first = h.engine.add_batch_items(&h.prod, &batch, (0..6).map(item).collect()).await.unwrap();
    assert_eq!((first.accepted, first.deduplicated, first.batch.items_received), (6, 0, 6));
    assert!(!first.batch.sealed());
    assert_eq!(first.batch.status, BatchStatus::Pending);

    // The whole stream again, with one index twice: only the four missing items are new.
    let mut again: Vec<BatchItem> = (0..10).map(item).collect();
    again.push(item(7));
    let second = h.engine.add_batch_items(&h.prod, &batch, again).await.unwrap();
    assert_eq!((second.accepted, second.deduplicated, second.batch.items_received), (4, 7, 10));
    assert!(second.batch.sealed());

    let third = h.engine.add_batch_items(&h.prod, &batch, (0..10).map(item).collect()).await.unwrap();
    assert_eq!((third.accepted, third.deduplicated), (0, 10));
    assert_eq!(third.batch.sealed_at, second.batch.sealed_at, "sealed once");
    assert_eq!(runs_of(&h, &batch).await, 10);
}

#[tokio::test]
async fn a_batch_is_pending_until_sealed_and_completed_when_its_runs_have_finished() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let batch = create(&h, &h.prod, 3, None).await;
    assert_eq!(h.engine.batch(&h.prod, &batch).await.unwrap().batch.status, BatchStatus::Pending);
    h.engine.add_batch_items(&h.prod, &batch, vec![item(0), item(2)]).await.unwrap();
    let view = h.engine.batch(&h.prod, &batch).await.unwrap();
    assert_eq!((view.batch.status, view.items.len()), (BatchStatus::Pending, 2));

    h.advance(1_000);
    h.engine.add_batch_items(&h.prod, &batch, vec![item(1)]).await.unwrap();
    let view = h.engine.batch(&h.prod, &batch).await.unwrap();
    assert_eq!(view.batch.status, BatchStatus::Processing);
    assert_eq!(view.batch.sealed_at, Some(h.engine.now()));

    let taken = h.dequeue(&worker, 10).await;
    assert_eq!(taken.len(), 3);
    h.advance(500);
    for run in &taken[..2] {
        h.succeed(&h.prod, run, "null").await;
    }
    assert_eq!(h.engine.batch(&h.prod, &batch).await.unwrap().batch.status, BatchStatus::Processing);
    h.advance(500);
    h.fail(&h.prod, &taken[2], "no").await;
    // A failed attempt with attempts left is retried: the batch is not done until the run is.
    assert_eq!(h.engine.batch(&h.prod, &batch).await.unwrap().batch.status, BatchStatus::Processing);
    h.engine.cancel(&h.prod, &taken[2].id).await.unwrap();
    let view = h.engine.batch(&h.prod, &batch).await.unwrap();
    assert_eq!(view.batch.status, BatchStatus::Completed);
    assert_eq!(view.batch.updated_at, h.engine.now(), "updated when its last run ended");
}

#[tokio::test]
async fn a_batch_idempotency_key_answers_the_batch_it_made() {
    let h = Harness::new().await;
    let params = BatchParams { run_count: 2, idempotency_key: Some("nightly".into()) };
    let first = h.engine.create_batch(&h.prod, params.clone()).await.unwrap();
    assert!(!first.cached);
    let again = h.engine.create_batch(&h.prod, params.clone()).await.unwrap();
    assert!(again.cached);
    assert_eq!(again.batch.id, first.batch.id);
    let other_env = h.engine.create_batch(&h.dev, params).await.unwrap();
    assert!(!other_env.cached, "keys are per environment");
    assert_ne!(other_env.batch.id, first.batch.id);
    assert_ne!(create(&h, &h.prod, 2, None).await, first.batch.id);
}

#[tokio::test]
async fn an_index_outside_the_batch_or_a_bad_count_stores_nothing() {
    let h = Harness::new().await;
    let batch = create(&h, &h.prod, 3, None).await;
    let refused = h.engine.add_batch_items(&h.prod, &batch, vec![item(0), item(3)]).await.unwrap_err();
    assert!(matches!(&refused, Error::Invalid(m) if m.starts_with("items[3]:")), "{refused}");
    assert_eq!(runs_of(&h, &batch).await, 0);
    assert_eq!(h.engine.batch(&h.prod, &batch).await.unwrap().batch.items_received, 0);
    for run_count in [0, 1_001] {
        let params = BatchParams { run_count, idempotency_key: None };
        assert!(matches!(h.engine.create_batch(&h.prod, params).await, Err(Error::Invalid(_))));
    }
}

#[tokio::test]
async fn another_environments_batch_is_not_found() {
    let h = Harness::new().await;
    let batch = create(&h, &h.prod, 1, None).await;
    assert!(matches!(h.engine.batch(&h.dev, &batch).await, Err(Error::NotFound(_))));
    let refused = h.engine.add_batch_items(&h.dev, &batch, vec![item(0)]).await;
    assert!(matches!(refused, Err(Error::NotFound(_))));
    assert_eq!(runs_of(&h, &batch).await, 0);
}

#[tokio::test]
async fn items_with_idempotency_keys_are_answered_by_the_runs_they_name() {
    let h = Harness::new().await;
    let idempotency = Some(Idempotency { key: "k1".into(), ttl: Duration::from_secs(3_600) });
    let existing = h.engine.trigger(&h.prod, TriggerParams { idempotency, ..TriggerParams::new("t", "{}") }).await;
    let existing = existing.unwrap().run;
    let batch = create(&h, &h.prod, 4, None).await;
    let items = vec![keyed(0, "k1"), keyed(1, "k2"), keyed(2, "k2"), item(3)];
    let added = h.engine.add_batch_items(&h.prod, &batch, items).await.unwrap();
    assert_eq!((added.accepted, added.batch.items_received), (4, 4));
    let view = h.engine.batch(&h.prod, &batch).await.unwrap();
    let ids: Vec<_> = view.items.iter().map(|i| i.run_id.clone()).collect();
    assert_eq!(ids[0], existing.id, "k1 names the run triggered before");
    assert_eq!(ids[1], ids[2], "two items with one key are one run");
    assert_eq!(runs_of(&h, &batch).await, 2, "the batch made two runs");

    // Sent again, nothing new; the recorded items are deduplicated too.
    let again = vec![keyed(0, "k1"), keyed(1, "k2"), keyed(2, "k2"), item(3)];
    let again = h.engine.add_batch_items(&h.prod, &batch, again).await.unwrap();
    assert_eq!((again.accepted, again.deduplicated), (0, 4));
}

#[tokio::test]
async fn the_one_request_form_makes_a_sealed_batch_and_its_runs_in_order() {
    let h = Harness::new().await;
    let items: Vec<TriggerParams> =
        (0..5).map(|i| TriggerParams::new(if i % 2 == 0 { "even" } else { "odd" }, format!("{i}"))).collect();
    let made = h.engine.trigger_batch(&h.prod, items.clone(), Some("once".into())).await.unwrap();
    assert!(!made.cached);
    assert!(made.batch.sealed());
    assert_eq!((made.batch.run_count, made.batch.items_received), (5, 5));
    let tasks: Vec<_> = made.runs.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(tasks, ["even", "odd", "even", "odd", "even"]);
    for (at, run) in made.runs.iter().enumerate() {
        assert_eq!(h.run(&h.prod, &run.run_id).await.payload, at.to_string());
    }
    let again = h.engine.trigger_batch(&h.prod, items, Some("once".into())).await.unwrap();
    assert!(again.cached);
    assert_eq!(again.batch.id, made.batch.id);
    let ids = |runs: &[stint_engine::BatchRun]| runs.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again.runs), ids(&made.runs));
    assert_eq!(runs_of(&h, &made.batch.id).await, 5);
}

#[tokio::test]
async fn a_waiting_worker_is_woken_for_a_batchs_runs() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let engine = h.engine.clone();
    let waiting = tokio::spawn(async move { engine.dequeue(&worker, 10, Duration::from_secs(10)).await.unwrap() });
    h.until_waiting(1).await;
    let batch = create(&h, &h.prod, 3, None).await;
    h.engine.add_batch_items(&h.prod, &batch, (0..3).map(item).collect()).await.unwrap();
    let taken = waiting.await.unwrap();
    assert!(!taken.is_empty(), "the waiting dequeue was woken and took the batch's runs");
    assert!(taken.iter().all(|run| run.batch_id.as_ref() == Some(&batch)));
}

#[tokio::test]
async fn items_take_every_trigger_option_delay_ttl_debounce_and_parent() {
    use stint_engine::{Debounce, DebounceMode, Delay};
    let h = Harness::new().await;
    let parent = h.trigger(&h.prod, "t").await;
    let batch = create(&h, &h.prod, 4, None).await;
    let debounce =
        || Debounce { key: "k".into(), delay: Duration::from_secs(5), mode: DebounceMode::Leading, max_delay: None };
    let items = vec![
        BatchItem {
            index: 0,
            params: TriggerParams {
                delay: Some(Delay::For(Duration::from_secs(60))),
                ttl_secs: Some(30),
                ..TriggerParams::new("t", "0")
            },
        },
        BatchItem { index: 1, params: TriggerParams { debounce: Some(debounce()), ..TriggerParams::new("t", "1") } },
        BatchItem { index: 2, params: TriggerParams { debounce: Some(debounce()), ..TriggerParams::new("t", "2") } },
        BatchItem {
            index: 3,
            params: TriggerParams { parent_run_id: Some(parent.id.clone()), ..TriggerParams::new("t", "3") },
        },
    ];
    h.engine.add_batch_items(&h.prod, &batch, items).await.unwrap();
    let view = h.engine.batch(&h.prod, &batch).await.unwrap();
    let run = |at: usize| view.items[at].run_id.clone();
    let delayed = h.run(&h.prod, &run(0)).await;
    assert_eq!((delayed.status, delayed.ttl_secs), (RunStatus::Delayed, Some(30)));
    assert_eq!(run(1), run(2), "two items with one debounce key are one run");
    assert_eq!(h.run(&h.prod, &run(1)).await.debounce_key.as_deref(), Some("k"));
    assert_eq!(h.run(&h.prod, &run(3)).await.parent_run_id, Some(parent.id.clone()));

    let later = create(&h, &h.prod, 1, None).await;
    let pushed =
        BatchItem { index: 0, params: TriggerParams { debounce: Some(debounce()), ..TriggerParams::new("t", "4") } };
    h.engine.add_batch_items(&h.prod, &later, vec![pushed]).await.unwrap();
    let view = h.engine.batch(&h.prod, &later).await.unwrap();
    assert_eq!(view.items[0].run_id, run(1), "a later batch's item pushes the delayed run back");

    let bad = create(&h, &h.prod, 1, None).await;
    let orphan = BatchItem {
        index: 0,
        params: TriggerParams {
            parent_run_id: Some(stint_types::RunId::from_parts(1, 1)),
            ..TriggerParams::new("t", "5")
        },
    };
    let error = h.engine.add_batch_items(&h.prod, &bad, vec![orphan]).await.unwrap_err();
    assert!(matches!(&error, Error::Invalid(m) if m.contains("parentRunId")), "{error:?}");
}
