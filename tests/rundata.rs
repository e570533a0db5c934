//! What a task changes besides its output, through the built binaries: the example worker's
//! `progress` reports its steps in the run's metadata, visible while the run executes and final
//! after it; its `parent` triggers a child run, and each run shows the other.

use std::time::Duration;

use serde_json::json;
use stint_e2e::Stack;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_visible_while_the_run_executes_and_final_after() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let id = stack.api.trigger("progress", json!({"steps": 4, "step_ms": 1_500})).await.unwrap();

    // Sent about every second while the task works through its steps.
    let running = stack
        .api
        .wait_until(&id, LIMIT, |run| run["metadata"]["progress"]["done"].as_u64().is_some_and(|done| done >= 1))
        .await;
    assert_eq!(running["status"], json!("EXECUTING"), "{running}");
    assert_eq!(running["metadata"]["status"], json!("running"));
    assert_eq!(running["metadata"]["progress"]["total"], json!(4));
    let seen = stack.api.get(&format!("/api/v1/runs/{id}/metadata")).await.unwrap();
    assert!(seen["metadata"]["log"].as_array().is_some_and(|log| !log.is_empty() && log.len() < 4), "{seen}");

    let finished = stack.api.wait_finished(&id, LIMIT).await;
    assert_eq!(finished["status"], json!("COMPLETED"), "{finished}");
    assert_eq!(
        finished["metadata"],
        json!({
            "status": "done",
            "progress": {"total": 4, "done": 4},
            "log": ["step 1", "step 2", "step 3", "step 4"]
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_triggers_a_child_and_each_shows_the_other() {
    let stack = Stack::start(&[]);
    let _worker = stack.worker(5);
    let parent =
        stack.api.trigger("parent", json!({"child": "hello-world", "payload": {"name": "Kid"}})).await.unwrap();
    let parent_run = stack.api.wait_finished(&parent, LIMIT).await;
    assert_eq!(parent_run["status"], json!("COMPLETED"), "{parent_run}");
    let child = parent_run["output"]["child"].as_str().unwrap().to_string();

    let child_run = stack.api.wait_finished(&child, LIMIT).await;
    assert_eq!(child_run["status"], json!("COMPLETED"), "{child_run}");
    assert_eq!(child_run["output"], json!({"message": "Hello, Kid!"}));
    assert_eq!(child_run["depth"], json!(1));
    assert_eq!(child_run["tags"], json!(["child"]));
    assert_eq!(child_run["relatedRuns"]["parent"]["id"], json!(parent));
    assert_eq!(child_run["relatedRuns"]["root"]["id"], json!(parent));

    let parent_run = stack.api.run(&parent).await.unwrap();
    assert_eq!(parent_run["depth"], json!(0));
    assert_eq!(parent_run["relatedRuns"]["children"][0]["id"], json!(child), "{parent_run}");
    assert_eq!(parent_run["relatedRuns"]["children"][0]["taskIdentifier"], json!("hello-world"));
}
