//! Durable calls of a context against an in-memory server that keeps a journal as the worker
//! protocol describes it, so replay, waiting and the ends of an attempt are tested without HTTP.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicUsize;

use futures::FutureExt;
use serde_json::json;
use stint_protocol::types::{JournalKind, RunStatus};
use stint_protocol::worker::DequeuedRun;

use super::*;
use crate::Task;
use crate::context::Triggers;
use crate::context::tests::dequeued;
use crate::task::Outcome;

/// What the fake server was asked, and how it answers.
#[derive(Default)]
struct FakeServer {
    /// The run's journal, by position.
    journal: Mutex<BTreeMap<u32, JournalEntry>>,
    steps: Mutex<Vec<StepRequest>>,
    waits: Mutex<Vec<WaitRequest>>,
    continues: Mutex<Vec<ContinueRequest>>,
    /// Answers to wait calls, in order; a wait completes at once when none is left.
    wait_answers: Mutex<VecDeque<CallResponse>>,
    /// Answers to continue calls, in order.
    continue_answers: Mutex<VecDeque<ContinueResponse>>,
    metadata_flushes: AtomicUsize,
    ended: Mutex<Option<End>>,
    /// A heartbeat answer the attempt gets while its first continue call is in flight: this
    /// snapshot moves from the first id to the second.
    moved_by_heartbeat: Mutex<Option<(Arc<HeldSnapshot>, &'static str, &'static str)>>,
}

/// A fake server shared with the context under test.
struct Fake(Arc<FakeServer>);

impl FakeServer {
    fn entry(seq: u32, kind: JournalKind, name: &str, output: Option<Value>) -> JournalEntry {
        JournalEntry {
            seq,
            kind,
            name: name.into(),
            completed: output.is_some(),
            output,
            is_error: false,
            waitpoint_id: None,
        }
    }

    /// The journal the server holds now, as a dequeue hands it to the run's next attempt.
    fn journal(&self) -> Vec<JournalEntry> {
        self.journal.lock().values().cloned().collect()
    }
}

impl Connection for Fake {
    fn step(&self, request: StepRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>> {
        let server = &self.0;
        server.steps.lock().push(request.clone());
        let entry = FakeServer::entry(request.seq, JournalKind::Step, &request.name, Some(request.output));
        let entry = server.journal.lock().entry(request.seq).or_insert(entry).clone();
        let response = if entry.name == request.name {
            CallResponse { outcome: CallOutcome::Completed, snapshot_id: None, entry: Some(entry), error: None }
        } else {
            let error = format!("position {} holds step {:?}", entry.seq, entry.name);
            CallResponse { outcome: CallOutcome::Mismatch, snapshot_id: None, entry: None, error: Some(error) }
        };
        Box::pin(async move { Ok(response) })
    }

    fn wait(&self, request: WaitRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>> {
        let server = &self.0;
        server.waits.lock().push(request);
        let answer = server.wait_answers.lock().pop_front();
        let response = answer.unwrap_or_else(|| CallResponse {
            outcome: CallOutcome::Completed,
            snapshot_id: None,
            entry: Some(FakeServer::entry(0, JournalKind::Wait, "", Some(Value::Null))),
            error: None,
        });
        Box::pin(async move { Ok(response) })
    }

    fn resume(&self, request: ContinueRequest) -> BoxFuture<'_, Result<ContinueResponse, DurableError>> {
        let server = &self.0;
        server.continues.lock().push(request);
        if let Some((snapshot, from, to)) = server.moved_by_heartbeat.lock().take() {
            snapshot.advance(from, to);
        }
        let answer = server.continue_answers.lock().pop_front();
        let response = answer.expect("a continue call is answered as the test says");
        Box::pin(async move { Ok(response) })
    }

    fn flush_metadata<'a>(&'a self, _metadata: &'a Metadata) -> BoxFuture<'a, ()> {
        self.0.metadata_flushes.fetch_add(1, Ordering::Relaxed);
        Box::pin(async {})
    }

    fn end(&self, end: End) {
        *self.0.ended.lock() = Some(end);
    }
}

/// A context of an attempt of `run`, holding snapshot `snapshot_1`, connected to `server`.
fn context(run: &mut DequeuedRun, server: &Arc<FakeServer>) -> TaskContext {
    let snapshot = HeldSnapshot::new(run.snapshot_id.clone());
    let connection: Arc<dyn Connection> = Arc::new(Fake(Arc::clone(server)));
    TaskContext::from_run(run, Triggers::Unavailable("no client in tests"), snapshot, Some(connection))
}

/// A context of a run dequeued with `journal`.
fn replaying(journal: Vec<JournalEntry>, server: &Arc<FakeServer>) -> TaskContext {
    let mut run = dequeued("durable", 2, Value::Null);
    run.journal = journal;
    context(&mut run, server)
}

fn snapshot_of(ctx: &TaskContext) -> String {
    ctx.durable().snapshot.current()
}

#[tokio::test]
async fn a_replay_returns_the_recorded_results_in_order_without_making_the_calls() {
    let server = Arc::new(FakeServer::default());
    let child = json!({"id": "run_c", "taskIdentifier": "child", "ok": true, "status": "COMPLETED", "output": 7});
    let batch = json!({"id": "batch_b", "runs": [child,
        {"id": "run_d", "taskIdentifier": "child", "ok": false, "status": "FAILED",
         "error": {"type": "STRING_ERROR", "raw": "boom"}}]});
    let ctx = replaying(
        vec![
            FakeServer::entry(0, JournalKind::Step, "fetch", Some(json!([1, 2]))),
            FakeServer::entry(1, JournalKind::Wait, "2026-01-01T00:00:00.000Z", Some(Value::Null)),
            FakeServer::entry(2, JournalKind::Token, "waitpoint_t", Some(json!({"approved": true}))),
            FakeServer::entry(3, JournalKind::Run, "child", Some(child)),
            FakeServer::entry(4, JournalKind::Batch, "2", Some(batch)),
        ],
        &server,
    );
    let fetched: Vec<u32> = ctx.step("fetch", || async { panic!("a recorded step does not run") }).await.unwrap();
    assert_eq!(fetched, [1, 2]);
    ctx.wait_for(Duration::from_secs(3_600)).await.unwrap();
    let approval: Value = ctx.wait_for_token("waitpoint_t").await.unwrap().unwrap();
    assert_eq!(approval, json!({"approved": true}));
    let run = ctx.trigger_and_wait("child", json!({}), TriggerOptions::new()).await.unwrap();
    assert_eq!((run.id.as_str(), run.output::<u32>()), ("run_c", Ok(7)));
    let items = vec![BatchItem::new("child", 1), BatchItem::new("child", 2)];
    let batch = ctx.batch_trigger_and_wait(items).await.unwrap();
    assert_eq!(batch.runs.iter().map(RunResult::is_ok).collect::<Vec<_>>(), [true, false]);
    assert_eq!(batch.runs[1].status, RunStatus::Failed);
    assert!(server.steps.lock().is_empty() && server.waits.lock().is_empty(), "nothing was sent");
    // The first call past the journal is made, at the next position.
    let fresh: String = ctx.step("fresh", || async { Ok("new".to_string()) }).await.unwrap();
    assert_eq!(fresh, "new");
    assert_eq!(server.steps.lock()[0].seq, 5);
}

#[tokio::test]
async fn a_failed_step_is_not_recorded_and_runs_again_in_the_next_attempt() {
    let server = Arc::new(FakeServer::default());
    let runs = AtomicUsize::new(0);
    let flaky =
        || async { if runs.fetch_add(1, Ordering::Relaxed) == 0 { Err(TaskError::new("flaky")) } else { Ok(42_u32) } };
    let first = replaying(Vec::new(), &server);
    let error = first.step("flaky", flaky).await.unwrap_err();
    assert!(matches!(&error, DurableError::Step(e) if e.message() == "flaky"), "{error:?}");
    assert!(server.steps.lock().is_empty(), "a failed step records nothing");
    assert!(first.durable_failure().is_none(), "a step's failure is the task's to handle");

    let second = replaying(server.journal(), &server);
    assert_eq!(second.step("flaky", flaky).await.unwrap(), 42);
    assert_eq!(runs.load(Ordering::Relaxed), 2);
    let recorded = server.steps.lock();
    assert_eq!((recorded.len(), recorded[0].seq, &recorded[0].output), (1, 0, &json!(42)));
}

#[tokio::test]
async fn a_call_other_than_the_recorded_one_fails_the_attempt_whatever_the_task_does() {
    let server = Arc::new(FakeServer::default());
    let journal = vec![FakeServer::entry(0, JournalKind::Step, "charge", Some(json!("r")))];
    let task = Task::new("durable", |ctx: TaskContext, (): ()| async move {
        // The task swallows the error and goes on: the attempt fails all the same.
        let refund = ctx.step("refund", || async { Ok(1_u32) }).await;
        assert!(matches!(refund, Err(DurableError::NonDeterminism(_))));
        let later = ctx.step("later", || async { Ok(2_u32) }).await;
        assert!(matches!(later, Err(DurableError::NonDeterminism(_))), "later calls fail too");
        Ok::<_, TaskError>("done")
    });
    let mut run = dequeued("durable", 2, Value::Null);
    run.journal = journal;
    let ctx = context(&mut run, &server);
    let Outcome::Failure { error, skip_retrying } = task.handler.call(ctx, Value::Null).await else {
        panic!("the attempt fails")
    };
    assert!(skip_retrying);
    let stint_protocol::types::TaskRunError::BuiltInError { name, message, .. } = error else { panic!("{error:?}") };
    assert_eq!(name, "NonDeterminismError");
    assert!(
        message.starts_with("at position 0 the journal recorded step \"charge\", but the task called step \"refund\""),
        "{message}"
    );
    assert!(server.steps.lock().is_empty());
}

#[tokio::test]
async fn a_mismatch_found_by_the_server_is_a_non_determinism_error() {
    let server = Arc::new(FakeServer::default());
    server.wait_answers.lock().push_back(CallResponse {
        outcome: CallOutcome::Mismatch,
        snapshot_id: None,
        entry: None,
        error: Some("position 0 holds step \"x\"".into()),
    });
    let ctx = replaying(Vec::new(), &server);
    let error = ctx.wait_for_token::<Value>("waitpoint_t").await.unwrap_err();
    assert!(matches!(&error, DurableError::NonDeterminism(m) if m.contains("holds step \"x\"")), "{error:?}");
    assert_eq!(ctx.durable_failure().map(|e| e.name().to_string()).as_deref(), Some("NonDeterminismError"));
}

#[tokio::test]
async fn a_wait_not_completed_in_the_journal_is_awaited_again_at_its_position() {
    let server = Arc::new(FakeServer::default());
    server.wait_answers.lock().push_back(CallResponse {
        outcome: CallOutcome::Completed,
        snapshot_id: Some("snapshot_2".into()),
        entry: Some(FakeServer::entry(1, JournalKind::Token, "waitpoint_t", Some(json!("yes")))),
        error: None,
    });
    let ctx = replaying(
        vec![
            FakeServer::entry(0, JournalKind::Step, "prepare", Some(json!(null))),
            FakeServer::entry(1, JournalKind::Token, "waitpoint_t", None),
        ],
        &server,
    );
    ctx.step("prepare", || async { Ok(()) }).await.unwrap();
    let answer: String = ctx.wait_for_token("waitpoint_t").await.unwrap().unwrap();
    assert_eq!(answer, "yes");
    let waits = server.waits.lock();
    assert_eq!((waits.len(), waits[0].seq, waits[0].snapshot_id.as_str()), (1, 1, "snapshot_1"));
    assert!(matches!(&waits[0].wait, Wait::Token { id } if id == "waitpoint_t"));
    assert_eq!(snapshot_of(&ctx), "snapshot_2", "the snapshot the answer gave is held");
}

#[tokio::test]
async fn a_blocked_wait_asks_continue_with_the_blocked_snapshot_until_it_goes_on_under_the_new_one() {
    let server = Arc::new(FakeServer::default());
    server.wait_answers.lock().push_back(CallResponse {
        outcome: CallOutcome::Waiting,
        snapshot_id: Some("snapshot_blocked".into()),
        entry: None,
        error: None,
    });
    let mut timed_out = FakeServer::entry(
        0,
        JournalKind::Token,
        "waitpoint_t",
        Some(json!({
            "code": "TRIGGER_WAITPOINT_TIMEOUT", "message": "Waitpoint timed out at 2026-01-01T00:00:00.000Z"
        })),
    );
    timed_out.is_error = true;
    server.continue_answers.lock().extend([
        ContinueResponse { action: ContinueAction::Wait, snapshot_id: None, entry: None },
        ContinueResponse {
            action: ContinueAction::Continue,
            snapshot_id: Some("snapshot_on".into()),
            entry: Some(timed_out),
        },
    ]);
    let ctx = replaying(Vec::new(), &server);
    // The wait completes in place and a heartbeat says so before the continue call does.
    *server.moved_by_heartbeat.lock() = Some((Arc::clone(&ctx.durable().snapshot), "snapshot_blocked", "snapshot_on"));
    ctx.metadata().set("stage", "waiting").unwrap();
    let timeout = ctx.wait_for_token::<Value>("waitpoint_t").await.unwrap().unwrap_err();
    assert_eq!(timeout.message, "Waitpoint timed out at 2026-01-01T00:00:00.000Z");
    assert_eq!(server.metadata_flushes.load(Ordering::Relaxed), 1, "metadata goes before the run blocks");
    let continues = server.continues.lock();
    let sent: Vec<_> = continues.iter().map(|c| (c.snapshot_id.as_str(), c.seq, c.wait_ms)).collect();
    // Every continue names the blocked snapshot, which is how the server tells which answer to
    // give, even after the heartbeat moved the attempt on.
    assert_eq!(sent, [("snapshot_blocked", 0, CONTINUE_WAIT_MS), ("snapshot_blocked", 0, CONTINUE_WAIT_MS)]);
    assert_eq!(snapshot_of(&ctx), "snapshot_on");
    assert!(server.ended.lock().is_none());
}

#[tokio::test]
async fn a_suspended_or_stopped_wait_ends_the_attempt_and_never_returns() {
    for (action, end) in [(ContinueAction::Suspend, End::Suspend), (ContinueAction::Stop, End::Stop)] {
        let server = Arc::new(FakeServer::default());
        server.wait_answers.lock().push_back(CallResponse {
            outcome: CallOutcome::Waiting,
            snapshot_id: Some("snapshot_blocked".into()),
            entry: None,
            error: None,
        });
        server.continue_answers.lock().push_back(ContinueResponse { action, snapshot_id: None, entry: None });
        let ctx = replaying(Vec::new(), &server);
        assert!(ctx.wait_for(Duration::from_secs(60)).now_or_never().is_none(), "{action:?}: the call pends");
        assert_eq!(*server.ended.lock(), Some(end));
    }
    // A step answered STALE ends the attempt as a STOP does.
    struct Stale;
    impl Connection for Stale {
        fn step(&self, _: StepRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>> {
            let response = CallResponse { outcome: CallOutcome::Stale, snapshot_id: None, entry: None, error: None };
            Box::pin(async move { Ok(response) })
        }
        fn wait(&self, _: WaitRequest) -> BoxFuture<'_, Result<CallResponse, DurableError>> {
            unreachable!()
        }
        fn resume(&self, _: ContinueRequest) -> BoxFuture<'_, Result<ContinueResponse, DurableError>> {
            unreachable!()
        }
        fn flush_metadata<'a>(&'a self, _: &'a Metadata) -> BoxFuture<'a, ()> {
            unreachable!()
        }
        fn end(&self, end: End) {
            assert_eq!(end, End::Stop);
        }
    }
    let mut run = dequeued("durable", 1, Value::Null);
    let ctx =
        TaskContext::from_run(&mut run, Triggers::Unavailable("none"), HeldSnapshot::new("s"), Some(Arc::new(Stale)));
    assert!(ctx.step("s", || async { Ok(1) }).now_or_never().is_none());
}

#[tokio::test]
async fn durable_calls_side_by_side_fail_the_attempt() {
    let server = Arc::new(FakeServer::default());
    let ctx = replaying(Vec::new(), &server);
    let (gate, opened) = tokio::sync::oneshot::channel::<()>();
    let slow = ctx.step("slow", || async {
        opened.await.unwrap();
        Ok(1_u32)
    });
    let quick = async {
        let quick = ctx.step("quick", || async { Ok(2_u32) }).await;
        gate.send(()).unwrap();
        quick
    };
    let (slow, quick) = tokio::join!(slow, quick);
    assert!(slow.is_ok());
    assert!(matches!(&quick, Err(DurableError::ConcurrentCall(m)) if m.contains("step \"quick\"")), "{quick:?}");
    let failure = ctx.durable_failure().expect("the attempt fails");
    assert_eq!((failure.name(), failure.is_fatal()), ("ConcurrentDurableCallError", true));
    // Nesting a durable call inside a step is the same mistake.
    let nested = replaying(Vec::new(), &Arc::new(FakeServer::default()));
    let inner = nested.clone();
    let outer = nested.step("outer", || async move { Ok(inner.step("inner", || async { Ok(1_u32) }).await.is_err()) });
    assert_eq!(outer.await.ok(), Some(true));
    assert!(nested.durable_failure().is_some());
}

#[tokio::test]
async fn a_call_abandoned_midway_fails_the_attempt() {
    let server = Arc::new(FakeServer::default());
    let ctx = replaying(Vec::new(), &server);
    let abandoned = ctx.step("slow", std::future::pending::<Result<u32, TaskError>>);
    assert!(tokio::time::timeout(Duration::from_millis(1), abandoned).await.is_err());
    let failure = ctx.durable_failure().expect("the attempt fails");
    assert!(failure.message().contains("abandoned"), "{}", failure.message());
}

#[tokio::test]
async fn a_recorded_result_of_another_type_is_a_decode_error_not_retried() {
    let server = Arc::new(FakeServer::default());
    let ctx = replaying(vec![FakeServer::entry(0, JournalKind::Step, "count", Some(json!("three")))], &server);
    let error = ctx.step("count", || async { Ok(3_u32) }).await.unwrap_err();
    assert!(matches!(&error, DurableError::Decode(m) if m.contains("step \"count\" recorded at position 0")));
    let error = TaskError::from(error);
    assert_eq!((error.name(), error.is_fatal()), ("DurableDecodeError", true));
}

#[tokio::test]
async fn a_context_without_a_worker_replays_but_cannot_make_new_calls() {
    let mut run = dequeued("durable", 1, Value::Null);
    run.journal = vec![FakeServer::entry(0, JournalKind::Step, "a", Some(json!(1)))];
    let ctx = crate::context::tests::detached(&mut run);
    assert_eq!(ctx.step("a", || async { Ok(5_u32) }).await.unwrap(), 1);
    let error = ctx.wait_for(Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(error, DurableError::Unavailable(_)), "{error:?}");
}

#[test]
fn every_durable_call_can_be_awaited_in_a_task() {
    // A task's future must be `Send`; this compiles only if every durable call's future is.
    async fn all(ctx: TaskContext, (): ()) -> Result<u32, TaskError> {
        let n: u32 = ctx.step("n", || async { Ok(1) }).await?;
        ctx.wait_for(Duration::from_secs(1)).await?;
        ctx.wait_until(SystemTime::now()).await?;
        let () = ctx.wait_for_token("waitpoint_t").await??;
        let child = ctx.trigger_and_wait("child", n, TriggerOptions::new()).await?;
        let batch = ctx.batch_trigger_and_wait(vec![BatchItem::new("child", n)]).await?;
        Ok(child.output::<u32>()? + u32::try_from(batch.runs.len()).unwrap_or(0))
    }
    assert_eq!(Task::new("all", all).id(), "all");
}
