//! What a task changes besides its output, against the real server started in-process: metadata
//! visible through the API while the run executes and final after, child runs triggered from a
//! task, and the SDK's [`Client`] with typed trigger options.

#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use stint_sdk::{BatchItem, Client, Error, Task, TaskContext, TaskError, TriggerOptions};
use support::{KEY, PATIENCE, TestServer};
use tokio::sync::{Notify, oneshot};

/// Starts `worker`; the returned sender stops it.
fn start(worker: stint_sdk::Worker) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), Error>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// A task `progress` that counts to 2 in its metadata, waits for the gate, then finishes the
/// count and logs it: the first changes reach the server while it waits, the last with its
/// completion.
fn progress(gate: Arc<Notify>) -> Task {
    Task::new("progress", move |ctx: TaskContext, _: Value| {
        let gate = Arc::clone(&gate);
        async move {
            let metadata = ctx.metadata();
            metadata.set("status", "running")?;
            metadata.increment("$.progress.done", 1)?;
            metadata.increment("$.progress.done", 1)?;
            metadata.append("log", "two")?;
            gate.notified().await;
            metadata.increment("$.progress.done", 1)?;
            metadata.append("log", "three")?;
            metadata.set("status", "done")?;
            Ok::<_, TaskError>(metadata.get("$.progress.done"))
        }
    })
}

#[tokio::test]
async fn metadata_reaches_the_server_while_the_run_executes_and_is_final_with_its_completion() {
    let server = TestServer::start().await;
    let gate = Arc::new(Notify::new());
    let (stop, worker) = start(server.worker().task(progress(Arc::clone(&gate))));
    let id = server.api.trigger_with("progress", json!({"options": {"metadata": {"given": true}}})).await.unwrap();

    let running = server.api.wait_until(&id, PATIENCE, |run| run["metadata"]["progress"]["done"] == 2).await;
    assert_eq!(running["status"], "EXECUTING");
    assert_eq!(
        running["metadata"],
        json!({"given": true, "status": "running", "progress": {"done": 2}, "log": ["two"]})
    );

    gate.notify_one();
    let finished = server.wait_finished(&id).await;
    assert_eq!(finished["status"], "COMPLETED", "{finished}");
    assert_eq!(finished["output"], json!(3));
    let expected = json!({"given": true, "status": "done", "progress": {"done": 3}, "log": ["two", "three"]});
    assert_eq!(finished["metadata"], expected);
    assert_eq!(server.api.get(&format!("/api/v1/runs/{id}/metadata")).await.unwrap(), json!({"metadata": expected}));
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_task_triggers_a_child_run_that_knows_its_parent() {
    let server = TestServer::start().await;
    let children = Arc::new(Mutex::new(Vec::new()));
    let parent = Task::new("parent", {
        let children = Arc::clone(&children);
        move |ctx: TaskContext, _: Value| {
            let children = Arc::clone(&children);
            async move {
                let child =
                    ctx.trigger("child", json!({"from": ctx.run_id()}), TriggerOptions::new().tag("child")).await?;
                children.lock().push(child.id.clone());
                let items = (0..2).map(|i| BatchItem::new("child", json!({"batch": i}))).collect();
                let batch = ctx.batch_trigger(items).await?;
                children.lock().extend(batch.runs.into_iter().map(|run| run.id));
                Ok::<_, TaskError>(json!({"child": child.id}))
            }
        }
    });
    let child = Task::new("child", |_ctx: TaskContext, payload: Value| async move { Ok::<_, TaskError>(payload) });
    let (stop, worker) = start(server.worker().task(parent).task(child));
    let id = server.trigger("parent", json!({})).await;
    let parent_run = server.wait_finished(&id).await;
    assert_eq!(parent_run["status"], "COMPLETED", "{parent_run}");
    let child_id = children.lock()[0].clone();
    assert_eq!(parent_run["output"], json!({"child": child_id}));
    assert_eq!(parent_run["relatedRuns"]["children"][0]["id"], json!(child_id));
    let batched: Vec<String> = children.lock()[1..].to_vec();
    assert_eq!(batched.len(), 2, "a batch of two children");
    for (at, id) in batched.iter().enumerate() {
        let run = server.wait_finished(id).await;
        assert_eq!(run["output"], json!({"batch": at}), "{run}");
        assert_eq!(run["relatedRuns"]["parent"]["id"], json!(parent_run["id"]), "{run}");
        assert!(run["batchId"].is_string(), "{run}");
    }
    assert_eq!(parent_run["relatedRuns"]["children"].as_array().unwrap().len(), 3);

    let child_run = server.wait_finished(&child_id).await;
    assert_eq!(child_run["output"], json!({"from": id}));
    assert_eq!(child_run["depth"], 1);
    assert_eq!(child_run["tags"], json!(["child"]));
    assert_eq!(child_run["relatedRuns"]["parent"]["id"], json!(id));
    assert_eq!(child_run["relatedRuns"]["root"]["id"], json!(id));
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_client_triggers_with_typed_options_and_retrieves_runs() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url, KEY).unwrap();
    let options = TriggerOptions::new()
        .queue("emails")
        .concurrency_key("customer-1")
        .idempotency_key("welcome-1")
        .idempotency_key_ttl(Duration::from_secs(3_600))
        .tags(["welcome", "customer-1"])
        .metadata(json!({"campaign": "spring"}))
        .max_attempts(2)
        .max_duration(Duration::from_secs(60))
        .priority(Duration::from_secs(10))
        .machine("small-1x")
        .test(true);
    let first = client.trigger("send/welcome", json!({"to": "ada@example.com"}), options.clone()).await.unwrap();
    assert!(!first.is_cached);
    let again = client.trigger("send/welcome", json!({"to": "ada@example.com"}), options).await.unwrap();
    assert_eq!((again.id.as_str(), again.is_cached), (first.id.as_str(), true));

    let run = client.retrieve(&first.id).await.unwrap();
    assert_eq!(run.common.task_identifier, "send/welcome");
    assert_eq!(run.common.tags, vec!["welcome", "customer-1"]);
    assert_eq!(run.common.metadata, Some(json!({"campaign": "spring"})));
    assert!(run.common.is_test);
    assert_eq!(run.payload, Some(json!({"to": "ada@example.com"})));

    let items = vec![
        BatchItem::new("send/welcome", json!({"to": "b@example.com"})),
        BatchItem::new("send/report", json!({"n": 2})).options(TriggerOptions::new().tag("report")),
    ];
    let batch = client.batch_trigger(items).await.unwrap();
    assert!(batch.id.starts_with("batch_"), "{batch:?}");
    assert_eq!(batch.runs.len(), 2);
    let report = client.retrieve(&batch.runs[1].id).await.unwrap();
    assert_eq!(
        (report.common.task_identifier.as_str(), report.common.tags.clone()),
        ("send/report", vec!["report".to_string()])
    );
    let bad =
        client.batch_trigger(vec![BatchItem::new("t", json!(1)).options(TriggerOptions::new().max_attempts(0))]).await;
    assert!(matches!(&bad, Err(Error::Rejected { call: "batch trigger", status: 422, .. })), "{bad:?}");

    let refused = client.trigger("t", json!(null), TriggerOptions::new().tags((0..11).map(|i| format!("t{i}")))).await;
    assert!(matches!(&refused, Err(Error::Rejected { call: "trigger", status: 422, .. })), "{refused:?}");
    let missing = client.retrieve("run_01arz3ndektsv4rrffq69g5fav").await;
    assert!(matches!(&missing, Err(Error::Rejected { status: 404, .. })), "{missing:?}");
}
