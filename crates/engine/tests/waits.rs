//! Durable execution: waitpoints (tokens, waits of time, child runs, batches), blocking and
//! resuming, suspension, and the journal a replaying worker gets.

mod common;

use std::time::Duration;

use common::{Harness, task};
use stint_engine::{CallAnswer, Completed, Config, Continuation, Error, Idempotency, TokenParams, TriggerParams, Wait};
use stint_store::{RunRow, WorkerRow};
use stint_types::{ExecutionStatus, JournalKind, RunStatus, SnapshotId, Timestamp, WaitpointId};

/// Blocks `run` (held by `worker`) on `wait` at `seq`; returns the answer.
async fn wait(h: &Harness, worker: &WorkerRow, run: &RunRow, seq: u32, wait: Wait) -> CallAnswer {
    h.engine.wait(worker, &run.id, &run.snapshot_id, seq, wait).await.unwrap()
}

/// The snapshot a blocking answer hands the worker.
fn waiting(answer: &CallAnswer) -> SnapshotId {
    match answer {
        CallAnswer::Waiting { snapshot_id, .. } => snapshot_id.clone(),
        other => panic!("expected the run to wait, got {other:?}"),
    }
}

async fn token(h: &Harness, timeout: Option<Timestamp>) -> WaitpointId {
    let params = TokenParams { timeout, ..TokenParams::default() };
    h.engine.create_wait_token(&h.prod, params).await.unwrap().waitpoint.id
}

async fn continue_now(h: &Harness, worker: &WorkerRow, run: &RunRow, snapshot: &SnapshotId, seq: u32) -> Continuation {
    h.engine.await_continue(worker, &run.id, snapshot, seq, Duration::ZERO).await.unwrap()
}

async fn started(h: &Harness, worker: &WorkerRow, task_id: &str) -> RunRow {
    h.trigger(&h.prod, task_id).await;
    h.dequeue(worker, 1).await.remove(0)
}

#[tokio::test]
async fn a_wait_of_time_blocks_and_goes_on_in_place_when_it_passes() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let until = h.engine.now().plus(Duration::from_secs(2));
    let blocked = waiting(&wait(&h, &worker, &run, 0, Wait::Until(until)).await);
    let now = h.run(&h.prod, &run.id).await;
    assert_eq!((now.execution_status, now.status), (ExecutionStatus::ExecutingWithWaitpoints, RunStatus::Waiting));
    assert_eq!(continue_now(&h, &worker, &run, &blocked, 0).await, Continuation::Wait);

    h.advance(1_999);
    assert_eq!(h.engine.run_due().await.unwrap().waitpoints, 0);
    h.advance(1);
    assert_eq!(h.engine.run_due().await.unwrap().waitpoints, 1);
    let Continuation::Continue { snapshot_id, entry } = continue_now(&h, &worker, &run, &blocked, 0).await else {
        panic!("expected the attempt to go on")
    };
    assert!(entry.completed && entry.kind == JournalKind::Wait);
    let now = h.run(&h.prod, &run.id).await;
    assert_eq!((now.execution_status, &now.snapshot_id), (ExecutionStatus::Executing, &snapshot_id));
    // The attempt goes on and completes with the snapshot it was given.
    let resumed = RunRow { snapshot_id, ..run };
    assert_eq!(h.succeed(&h.prod, &resumed, "1").await, Completed::Finished(RunStatus::Completed));
}

#[tokio::test]
async fn a_wait_already_over_does_not_block() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let answer = wait(&h, &worker, &run, 0, Wait::Until(h.engine.now())).await;
    assert!(matches!(answer, CallAnswer::Completed { ref snapshot_id, .. } if snapshot_id == &run.snapshot_id));
    assert_eq!(h.run(&h.prod, &run.id).await.execution_status, ExecutionStatus::Executing);
}

#[tokio::test]
async fn a_run_blocked_on_several_waitpoints_goes_on_when_all_complete_in_any_order() {
    for order in [[0, 1], [1, 0]] {
        let h = Harness::new().await;
        let worker = h.worker(&h.prod, vec![task("t")]).await;
        let run = started(&h, &worker, "t").await;
        let tokens = [token(&h, None).await, token(&h, None).await];
        for token in &tokens {
            h.engine.block_on_token(&h.prod, &run.id, token).await.unwrap();
        }
        assert_eq!(h.run(&h.prod, &run.id).await.execution_status, ExecutionStatus::ExecutingWithWaitpoints);
        assert!(h.engine.complete_wait_token(&h.prod, &tokens[order[0]], None).await.unwrap());
        assert_eq!(h.run(&h.prod, &run.id).await.execution_status, ExecutionStatus::ExecutingWithWaitpoints);
        assert!(h.engine.complete_wait_token(&h.prod, &tokens[order[1]], None).await.unwrap());
        assert_eq!(h.run(&h.prod, &run.id).await.execution_status, ExecutionStatus::Executing);
    }
}

#[tokio::test]
async fn a_token_completes_once_with_its_first_data() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let id = token(&h, None).await;
    let blocked = waiting(&wait(&h, &worker, &run, 0, Wait::Token(id.clone())).await);
    assert!(h.engine.complete_wait_token(&h.prod, &id, Some("{\"ok\":1}".into())).await.unwrap());
    assert!(!h.engine.complete_wait_token(&h.prod, &id, Some("{\"ok\":2}".into())).await.unwrap());
    let Continuation::Continue { entry, .. } = continue_now(&h, &worker, &run, &blocked, 0).await else {
        panic!("expected the attempt to go on")
    };
    assert_eq!(entry.output, Some(serde_json::json!({"ok": 1})));
    assert!(!entry.is_error);
    let stored = h.engine.wait_token(&h.prod, &id).await.unwrap();
    assert_eq!(stored.output.as_deref(), Some("{\"ok\":1}"));
}

#[tokio::test]
async fn a_token_times_out_with_trigger_dev_error() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let id = token(&h, Some(h.engine.now().plus(Duration::from_secs(5)))).await;
    let blocked = waiting(&wait(&h, &worker, &run, 0, Wait::Token(id.clone())).await);
    h.advance(5_000);
    assert_eq!(h.engine.run_due().await.unwrap().waitpoints, 1);
    let Continuation::Continue { entry, .. } = continue_now(&h, &worker, &run, &blocked, 0).await else {
        panic!("expected the attempt to go on")
    };
    assert!(entry.is_error);
    assert_eq!(entry.output.unwrap()["code"], "TRIGGER_WAITPOINT_TIMEOUT");
    // Completing it afterwards changes nothing.
    assert!(!h.engine.complete_wait_token(&h.prod, &id, None).await.unwrap());
}

#[tokio::test]
async fn tokens_with_one_key_are_one_token_until_the_key_expires() {
    let h = Harness::new().await;
    let keyed = |ttl| TokenParams {
        idempotency_key: Some("approval-42".into()),
        idempotency_key_ttl: ttl,
        ..TokenParams::default()
    };
    let first = h.engine.create_wait_token(&h.prod, keyed(Some(Duration::from_secs(60)))).await.unwrap();
    let again = h.engine.create_wait_token(&h.prod, keyed(Some(Duration::from_secs(60)))).await.unwrap();
    assert!(!first.cached && again.cached);
    assert_eq!(first.waitpoint.id, again.waitpoint.id);
    // Another environment has keys of its own.
    let dev = h.engine.create_wait_token(&h.dev, keyed(None)).await.unwrap();
    assert!(!dev.cached && dev.waitpoint.id != first.waitpoint.id);
    h.advance(60_000);
    let fresh = h.engine.create_wait_token(&h.prod, keyed(None)).await.unwrap();
    assert!(!fresh.cached && fresh.waitpoint.id != first.waitpoint.id);
    let old = h.engine.wait_token(&h.prod, &first.waitpoint.id).await.unwrap();
    assert_eq!(old.inactive_idempotency_key.as_deref(), Some("approval-42"));
}

#[tokio::test]
async fn another_environments_token_is_not_found() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let theirs = h.engine.create_wait_token(&h.dev, TokenParams::default()).await.unwrap().waitpoint.id;
    assert!(matches!(h.engine.wait_token(&h.prod, &theirs).await, Err(Error::NotFound(_))));
    assert!(matches!(h.engine.complete_wait_token(&h.prod, &theirs, None).await, Err(Error::NotFound(_))));
    let error = h.engine.wait(&worker, &run.id, &run.snapshot_id, 0, Wait::Token(theirs)).await.unwrap_err();
    assert!(matches!(error, Error::NotFound(_)));
    assert_eq!(h.run(&h.prod, &run.id).await.execution_status, ExecutionStatus::Executing, "nothing changed");
}

#[tokio::test]
async fn a_suspended_run_frees_its_slot_and_resumes_its_attempt_through_the_queue() {
    let h = Harness::new().await;
    let limited = stint_engine::TaskSpec { concurrency_limit: Some(1), ..task("t") };
    let worker = h.worker(&h.prod, vec![limited]).await;
    let first = started(&h, &worker, "t").await;
    let second = h.trigger(&h.prod, "t").await;
    let id = token(&h, None).await;
    let blocked = waiting(&wait(&h, &worker, &first, 0, Wait::Token(id.clone())).await);
    // Before the threshold the run keeps its slot: the second cannot start.
    assert!(h.dequeue(&worker, 1).await.is_empty());
    assert_eq!(continue_now(&h, &worker, &first, &blocked, 0).await, Continuation::Wait);
    h.advance(Config::default().suspend_after.as_millis() as u64);
    assert_eq!(continue_now(&h, &worker, &first, &blocked, 0).await, Continuation::Suspend);
    let suspended = h.run(&h.prod, &first.id).await;
    assert_eq!((suspended.execution_status, suspended.status), (ExecutionStatus::Suspended, RunStatus::Waiting));
    assert!(suspended.heartbeat_deadline.is_none());

    let taken = h.dequeue(&worker, 1).await;
    assert_eq!(taken[0].id, second.id, "the freed slot starts the second run");
    assert!(h.engine.complete_wait_token(&h.prod, &id, Some("7".into())).await.unwrap());
    let queued = h.run(&h.prod, &first.id).await;
    assert_eq!((queued.execution_status, queued.resuming), (ExecutionStatus::Queued, true));
    assert!(h.dequeue(&worker, 1).await.is_empty(), "the queue's one slot is taken");
    h.succeed(&h.prod, &taken[0], "1").await;

    let resumed = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!((resumed.id.clone(), resumed.attempt_number), (first.id.clone(), 1), "the same attempt goes on");
    let journals = h.engine.journals(std::slice::from_ref(&resumed)).await.unwrap();
    let entry = &journals[&first.id][0];
    assert!(entry.completed);
    assert_eq!(entry.output, Some(serde_json::json!(7)));
    assert_eq!(h.succeed(&h.prod, &resumed, "2").await, Completed::Finished(RunStatus::Completed));
}

#[tokio::test]
async fn steps_are_recorded_once_and_a_different_call_is_a_mismatch() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let record = |seq: u32, name: &str| {
        h.engine.record_step(&worker, &run.id, &run.snapshot_id, seq, name.to_string(), "{\"n\":1}".into())
    };
    assert!(matches!(record(0, "charge").await.unwrap(), CallAnswer::Completed { .. }));
    assert!(matches!(record(0, "charge").await.unwrap(), CallAnswer::Completed { .. }), "sent again");
    let CallAnswer::Mismatch(message) = record(0, "refund").await.unwrap() else { panic!("expected a mismatch") };
    assert!(message.contains("charge") && message.contains("refund"), "{message}");
    let answer = wait(&h, &worker, &run, 0, Wait::Until(h.engine.now())).await;
    assert!(matches!(answer, CallAnswer::Mismatch(_)));
    // A stale snapshot records nothing.
    let stale = SnapshotId::from_parts(1, 1);
    let answer = h.engine.record_step(&worker, &run.id, &stale, 1, "x".into(), "1".into()).await.unwrap();
    assert_eq!(answer, CallAnswer::Stale);
}

#[tokio::test]
async fn a_parent_waits_for_its_child_which_runs_on_the_parents_version() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("parent"), task("child")]).await;
    let parent = started(&h, &worker, "parent").await;
    let answer = wait(&h, &worker, &parent, 0, Wait::Run(TriggerParams::new("child", "{\"x\":1}"))).await;
    let blocked = waiting(&answer);
    let child = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(child.parent_run_id.as_ref(), Some(&parent.id));
    assert_eq!(child.version, parent.version, "the child is locked to the parent's version");
    h.succeed(&h.prod, &child, "{\"y\":2}").await;
    let Continuation::Continue { entry, .. } = continue_now(&h, &worker, &parent, &blocked, 0).await else {
        panic!("expected the parent to go on")
    };
    let result = entry.output.unwrap();
    assert_eq!(
        (result["ok"].clone(), result["output"].clone()),
        (serde_json::json!(true), serde_json::json!({"y": 2}))
    );
    assert_eq!(result["id"], child.id.to_string());
}

#[tokio::test]
async fn a_parent_waiting_on_a_cached_child_gets_its_result_and_a_failed_child_its_error() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("parent"), task("child")]).await;
    let keyed = || TriggerParams {
        idempotency: Some(Idempotency { key: "once".into(), ttl: Duration::from_secs(3_600) }),
        ..TriggerParams::new("child", "1")
    };
    let child = h.engine.trigger(&h.prod, keyed()).await.unwrap().run;
    let child = h.dequeue(&worker, 1).await.into_iter().find(|r| r.id == child.id).unwrap();
    h.succeed(&h.prod, &child, "\"done\"").await;
    let parent = started(&h, &worker, "parent").await;
    // The key names the finished child: the wait is over at once, with its output.
    let CallAnswer::Completed { entry, .. } = wait(&h, &worker, &parent, 0, Wait::Run(keyed())).await else {
        panic!("expected the finished child's result at once")
    };
    let result = entry.output.unwrap();
    assert_eq!((result["ok"].clone(), result["output"].clone()), (serde_json::json!(true), serde_json::json!("done")));
    assert_eq!(result["id"], child.id.to_string());

    // A child that fails for good comes back as its error.
    let failing = TriggerParams { max_attempts: Some(1), ..TriggerParams::new("child", "2") };
    let blocked = waiting(&wait(&h, &worker, &parent, 1, Wait::Run(failing)).await);
    let child = h.dequeue(&worker, 1).await.remove(0);
    h.fail(&h.prod, &child, "boom").await;
    let Continuation::Continue { entry, .. } = continue_now(&h, &worker, &parent, &blocked, 1).await else {
        panic!("expected the parent to go on")
    };
    let result = entry.output.unwrap();
    assert_eq!(
        (result["ok"].clone(), result["status"].clone()),
        (serde_json::json!(false), serde_json::json!("FAILED"))
    );
    assert_eq!(result["error"]["message"], "boom");
}

#[tokio::test]
async fn a_batch_comes_back_in_item_order_failures_included() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("parent"), task("child")]).await;
    let parent = started(&h, &worker, "parent").await;
    let items =
        (0..3).map(|i| TriggerParams { max_attempts: Some(1), ..TriggerParams::new("child", i.to_string()) }).collect();
    let blocked = waiting(&wait(&h, &worker, &parent, 0, Wait::Batch(items)).await);
    let mut children = h.dequeue(&worker, 3).await;
    children.sort_by_key(|r| r.batch_index);
    // Finished out of order; the middle one fails.
    h.succeed(&h.prod, &children[2], "\"c\"").await;
    h.fail(&h.prod, &children[1], "middle").await;
    assert_eq!(continue_now(&h, &worker, &parent, &blocked, 0).await, Continuation::Wait);
    h.succeed(&h.prod, &children[0], "\"a\"").await;
    let Continuation::Continue { entry, .. } = continue_now(&h, &worker, &parent, &blocked, 0).await else {
        panic!("expected the parent to go on")
    };
    let runs = entry.output.unwrap()["runs"].as_array().unwrap().clone();
    let oks: Vec<_> = runs.iter().map(|r| r["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [true, false, true]);
    assert_eq!(
        (runs[0]["output"].clone(), runs[2]["output"].clone()),
        (serde_json::json!("a"), serde_json::json!("c"))
    );
}

#[tokio::test]
async fn waiting_on_itself_is_a_recursive_wait_deadlock() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let keyed = || TriggerParams {
        idempotency: Some(Idempotency { key: "me".into(), ttl: Duration::from_secs(3_600) }),
        ..TriggerParams::new("t", "1")
    };
    let run = h.engine.trigger(&h.prod, keyed()).await.unwrap().run;
    let run = h.dequeue(&worker, 1).await.into_iter().find(|r| r.id == run.id).unwrap();
    let error = h.engine.wait(&worker, &run.id, &run.snapshot_id, 0, Wait::Run(keyed())).await.unwrap_err();
    assert!(error.to_string().contains("RECURSIVE_WAIT_DEADLOCK"), "{error}");
    assert_eq!(h.run(&h.prod, &run.id).await.execution_status, ExecutionStatus::Executing, "nothing changed");
}

#[tokio::test]
async fn a_parent_whose_child_needs_its_slot_gives_it_up_at_once() {
    let h = Harness::new().await;
    let limited = stint_engine::TaskSpec { concurrency_limit: Some(1), ..task("t") };
    let worker = h.worker(&h.prod, vec![limited]).await;
    let parent = started(&h, &worker, "t").await;
    let blocked = waiting(&wait(&h, &worker, &parent, 0, Wait::Run(TriggerParams::new("t", "2"))).await);
    assert_eq!(h.run(&h.prod, &parent.id).await.execution_status, ExecutionStatus::Suspended);
    assert_eq!(continue_now(&h, &worker, &parent, &blocked, 0).await, Continuation::Suspend);
    let child = h.dequeue(&worker, 1).await.remove(0);
    h.succeed(&h.prod, &child, "3").await;
    let resumed = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!(resumed.id, parent.id);
}

#[tokio::test]
async fn a_blocked_attempt_whose_worker_is_lost_is_suspended_not_failed() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let id = token(&h, None).await;
    waiting(&wait(&h, &worker, &run, 0, Wait::Token(id.clone())).await);
    h.advance(Config::default().timeouts.executing.as_millis() as u64);
    assert_eq!(h.engine.sweep_stalled().await.unwrap(), 1);
    let now = h.run(&h.prod, &run.id).await;
    assert_eq!((now.execution_status, now.attempt_number, now.error.is_none()), (ExecutionStatus::Suspended, 1, true));
    h.engine.complete_wait_token(&h.prod, &id, None).await.unwrap();
    let resumed = h.dequeue(&worker, 1).await.remove(0);
    assert_eq!((resumed.id, resumed.attempt_number), (run.id, 1));
}

#[tokio::test]
async fn heartbeats_of_a_blocked_attempt_keep_it_and_learn_its_new_snapshot() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let blocked = waiting(&wait(&h, &worker, &run, 0, Wait::Token(token(&h, None).await)).await);
    let verdicts = h.engine.heartbeat(&worker, vec![(run.id.clone(), run.snapshot_id.clone())]).await.unwrap();
    assert_eq!(verdicts, vec![stint_engine::HeartbeatVerdict::Moved(blocked.clone())]);
    let verdicts = h.engine.heartbeat(&worker, vec![(run.id.clone(), blocked)]).await.unwrap();
    assert_eq!(verdicts, vec![stint_engine::HeartbeatVerdict::Continue]);
}

#[tokio::test]
async fn cancelling_a_suspended_run_ends_it() {
    let h = Harness::new().await;
    let worker = h.worker(&h.prod, vec![task("t")]).await;
    let run = started(&h, &worker, "t").await;
    let id = token(&h, None).await;
    let blocked = waiting(&wait(&h, &worker, &run, 0, Wait::Token(id.clone())).await);
    h.advance(Config::default().suspend_after.as_millis() as u64);
    assert_eq!(continue_now(&h, &worker, &run, &blocked, 0).await, Continuation::Suspend);
    h.engine.cancel(&h.prod, &run.id).await.unwrap();
    h.engine.complete_wait_token(&h.prod, &id, None).await.unwrap();
    assert_eq!(h.run(&h.prod, &run.id).await.status, RunStatus::Canceled);
}
