//! What a run carries besides its state: tags, metadata changed through the API, by the worker
//! holding the run and with its completion, and the runs it triggered.

mod common;

use common::{Harness, task};
use serde_json::{Value, json};
use stint_engine::{Completion, Error, HeldUpdate, MetadataChange, Outcome, TriggerParams};
use stint_types::metadata::Operation;
use stint_types::{RunId, RunStatus};

fn ops(value: Value) -> Vec<Operation> {
    serde_json::from_value(value).unwrap()
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn operations(value: Value) -> MetadataChange {
    MetadataChange { operations: ops(value), ..MetadataChange::default() }
}

#[tokio::test]
async fn a_child_run_knows_its_parent_root_and_depth() {
    let h = Harness::new().await;
    let root = h.trigger(&h.prod, "root").await;
    let child_of =
        |parent: &RunId| TriggerParams { parent_run_id: Some(parent.clone()), ..TriggerParams::new("c", "1") };
    let child = h.engine.trigger(&h.prod, child_of(&root.id)).await.unwrap().run;
    let grandchild = h.engine.trigger(&h.prod, child_of(&child.id)).await.unwrap().run;
    assert_eq!(
        (child.parent_run_id.as_ref(), child.root_run_id.as_ref(), child.depth),
        (Some(&root.id), Some(&root.id), 1)
    );
    assert_eq!(
        (grandchild.parent_run_id.as_ref(), grandchild.root_run_id.as_ref(), grandchild.depth),
        (Some(&child.id), Some(&root.id), 2)
    );

    let related = h.engine.related(&h.prod, &grandchild.id).await.unwrap();
    assert_eq!(related.parent.map(|r| r.id), Some(child.id.clone()));
    assert_eq!(related.root.map(|r| r.id), Some(root.id.clone()));
    assert!(related.children.is_empty());
    let second = h.engine.trigger(&h.prod, child_of(&root.id)).await.unwrap().run;
    let related = h.engine.related(&h.prod, &root.id).await.unwrap();
    assert_eq!((related.parent, related.root), (None, None));
    assert_eq!(related.children.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![child.id, second.id]);

    // A parent of another environment is as unknown as a missing one.
    let refused = h.engine.trigger(&h.dev, child_of(&root.id)).await.unwrap_err();
    assert!(matches!(&refused, Error::Invalid(m) if m.starts_with("parentRunId")), "{refused:?}");
}

#[tokio::test]
async fn tags_merge_up_to_the_limit() {
    let h = Harness::new().await;
    let params = TriggerParams { tags: vec!["a".into()], ..TriggerParams::new("t", "1") };
    let run = h.engine.trigger(&h.prod, params).await.unwrap().run;
    let added = h.engine.add_tags(&h.prod, &run.id, vec![" b ".into(), "a".into(), "".into(), "b".into()]).await;
    assert_eq!(added.unwrap(), 1);
    assert_eq!(h.run(&h.prod, &run.id).await.tags, vec!["a", "b"]);
    let too_many: Vec<String> = (0..9).map(|i| format!("t{i}")).collect();
    let refused = h.engine.add_tags(&h.prod, &run.id, too_many).await.unwrap_err();
    assert!(matches!(&refused, Error::Invalid(m) if m.starts_with("tags:")), "{refused:?}");
    assert_eq!(h.run(&h.prod, &run.id).await.tags, vec!["a", "b"], "nothing was added");
    assert!(matches!(h.engine.add_tags(&h.dev, &run.id, vec!["x".into()]).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn metadata_of_a_finished_run_changes_for_an_hour() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    h.succeed(&h.prod, &attempt, "1").await;
    let set = |n: u64| operations(json!([{"type": "set", "key": "n", "value": n}]));
    h.advance(3_600_000);
    assert_eq!(h.engine.update_metadata(&h.prod, &attempt.id, set(1)).await.unwrap(), object(json!({"n": 1})));
    h.advance(1);
    let refused = h.engine.update_metadata(&h.prod, &attempt.id, set(2)).await.unwrap_err();
    assert!(matches!(&refused, Error::Invalid(m) if m.starts_with("metadata:")), "{refused:?}");
    assert_eq!(h.engine.metadata(&h.prod, &attempt.id).await.unwrap(), object(json!({"n": 1})));
}

#[tokio::test]
async fn parent_and_root_operations_change_those_runs_and_are_ignored_without_them() {
    let h = Harness::new().await;
    let root = h.trigger(&h.prod, "root").await;
    let child_of =
        |parent: &RunId| TriggerParams { parent_run_id: Some(parent.clone()), ..TriggerParams::new("c", "1") };
    let child = h.engine.trigger(&h.prod, child_of(&root.id)).await.unwrap().run;
    let grandchild = h.engine.trigger(&h.prod, child_of(&child.id)).await.unwrap().run;
    let change = MetadataChange {
        metadata: Some(object(json!({"own": true}))),
        operations: ops(json!([{"type": "set", "key": "n", "value": 1}])),
        parent_operations: ops(json!([{"type": "append", "key": "done", "value": "g"}])),
        root_operations: ops(json!([{"type": "increment", "key": "$.progress.done", "value": 1}])),
    };
    let own = h.engine.update_metadata(&h.prod, &grandchild.id, change.clone()).await.unwrap();
    assert_eq!(own, object(json!({"own": true, "n": 1})));
    assert_eq!(h.engine.metadata(&h.prod, &child.id).await.unwrap(), object(json!({"done": ["g"]})));
    // The child's parent and root are one run: both lists apply to it, parent's first.
    h.engine.update_metadata(&h.prod, &child.id, change.clone()).await.unwrap();
    assert_eq!(
        h.engine.metadata(&h.prod, &root.id).await.unwrap(),
        object(json!({"progress": {"done": 2}, "done": ["g"]}))
    );
    // The root has neither: only its own operations apply.
    h.engine.update_metadata(&h.prod, &root.id, change).await.unwrap();
    assert_eq!(h.engine.metadata(&h.prod, &root.id).await.unwrap(), object(json!({"own": true, "n": 1})));

    // Nothing changes when any list cannot apply.
    let bad = MetadataChange {
        operations: ops(json!([{"type": "set", "key": "x", "value": 1}])),
        parent_operations: ops(json!([{"type": "set", "key": "$.__proto__.x", "value": 1}])),
        ..MetadataChange::default()
    };
    let refused = h.engine.update_metadata(&h.prod, &grandchild.id, bad).await.unwrap_err();
    assert!(matches!(&refused, Error::Invalid(m) if m.starts_with("parentOperations:")), "{refused:?}");
    assert_eq!(h.engine.metadata(&h.prod, &grandchild.id).await.unwrap(), object(json!({"own": true, "n": 1})));
}

#[tokio::test]
async fn the_worker_holding_a_run_changes_its_metadata_while_it_runs_and_with_its_completion() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let other = h.worker(&h.prod, vec![task("t")]).await;
    let params = TriggerParams { metadata: Some("{\"step\":0}".into()), ..TriggerParams::new("t", "1") };
    let run = h.engine.trigger(&h.prod, params).await.unwrap().run;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    let increment = ops(json!([{"type": "increment", "key": "step", "value": 1}]));
    let held = |snapshot| vec![(run.id.clone(), snapshot, increment.clone())];

    let answers = h.engine.update_held_metadata(&worker, held(attempt.snapshot_id.clone())).await.unwrap();
    assert_eq!(answers, vec![HeldUpdate::Updated]);
    let answers = h.engine.update_held_metadata(&other, held(attempt.snapshot_id.clone())).await.unwrap();
    assert_eq!(answers, vec![HeldUpdate::Stale], "another worker does not hold the run");
    let answers = h.engine.update_held_metadata(&worker, held(run.snapshot_id.clone())).await.unwrap();
    assert_eq!(answers, vec![HeldUpdate::Stale], "an old snapshot");
    let too_big = vec![(
        run.id.clone(),
        attempt.snapshot_id.clone(),
        ops(json!([{"type": "set", "key": "big", "value": "x".repeat(300_000)}])),
    )];
    let answers = h.engine.update_held_metadata(&worker, too_big).await.unwrap();
    assert!(matches!(&answers[0], HeldUpdate::Invalid(m) if m.contains("over the limit")), "{answers:?}");
    let answers = h
        .engine
        .update_held_metadata(&h.worker(&h.dev, vec![task("t")]).await, held(attempt.snapshot_id.clone()))
        .await;
    assert_eq!(answers.unwrap(), vec![HeldUpdate::NotFound], "a worker of another environment");
    assert_eq!(h.engine.metadata(&h.prod, &run.id).await.unwrap(), object(json!({"step": 1})));

    // The completion carries the last changes, and they land with it.
    let completion = |snapshot_id| Completion {
        run_id: run.id.clone(),
        snapshot_id,
        outcome: Outcome::Success("1".into()),
        metadata: ops(
            json!([{"type": "increment", "key": "step", "value": 1}, {"type": "append", "key": "log", "value": "done"}]),
        ),
    };
    let completed =
        h.engine.complete_with_metadata(vec![h.prod.clone()], vec![completion(attempt.snapshot_id.clone())]);
    assert_eq!(completed.await.unwrap(), vec![stint_engine::Completed::Finished(RunStatus::Completed)]);
    assert_eq!(h.engine.metadata(&h.prod, &run.id).await.unwrap(), object(json!({"step": 2, "log": ["done"]})));
    // A stale completion's changes are dropped with it.
    let again = h.engine.complete_with_metadata(vec![h.prod.clone()], vec![completion(attempt.snapshot_id.clone())]);
    assert!(matches!(again.await.unwrap()[0], stint_engine::Completed::Stale { .. }));
    assert_eq!(h.engine.metadata(&h.prod, &run.id).await.unwrap(), object(json!({"step": 2, "log": ["done"]})));
    let answers = h.engine.update_held_metadata(&worker, held(attempt.snapshot_id.clone())).await.unwrap();
    assert_eq!(answers, vec![HeldUpdate::Stale], "a finished run is no longer held");
}

#[tokio::test]
async fn a_transition_after_a_metadata_change_keeps_it() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = h.trigger(&h.prod, "t").await;
    let attempt = h.dequeue(&worker, 1).await.remove(0);
    h.engine
        .update_metadata(&h.prod, &run.id, operations(json!([{"type": "set", "key": "k", "value": "v"}])))
        .await
        .unwrap();
    h.fail(&h.prod, &attempt, "boom").await;
    let retried = h.run(&h.prod, &run.id).await;
    assert_eq!(retried.status, RunStatus::Queued);
    assert_eq!(retried.metadata.as_deref(), Some("{\"k\":\"v\"}"));
    h.engine.cancel(&h.prod, &run.id).await.unwrap();
    assert_eq!(h.engine.metadata(&h.prod, &run.id).await.unwrap(), object(json!({"k": "v"})));
}
