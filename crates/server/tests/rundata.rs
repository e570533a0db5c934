//! Tags, metadata and related runs over HTTP: merges and limits, every metadata operation and
//! the ways a change is refused, the worker's metadata calls, `parentRunId` and `relatedRuns`.

mod common;

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn put(s: &TestServer, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    s.send(s.http.put(format!("{}{path}", s.base)).bearer_auth(key).json(&body)).await
}

#[tokio::test]
async fn tags_merge_with_the_runs_and_are_limited() {
    let s = TestServer::start().await;
    let id = s.trigger(PROD_KEY, "t", json!({"options": {"tags": ["a"]}})).await;
    let path = format!("/api/v1/runs/{id}/tags");
    let (status, body) = s.post(PROD_KEY, &path, json!({"tags": "b"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"message": "Successfully set 1 new tags."})));
    let (status, body) = s.post(PROD_KEY, &path, json!({"tags": [" a ", "c", "c", ""]})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"message": "Successfully set 1 new tags."})));
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["tags"], json!(["a", "b", "c"]));
    let (_, listed) = s.get(PROD_KEY, "/api/v1/runs?filter[tag]=c").await;
    assert_eq!(listed["data"][0]["id"], json!(id), "{listed}");

    let eight: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    let (status, body) = s.post(PROD_KEY, &path, json!({"tags": eight})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error_of(&body).starts_with("tags:") && error_of(&body).contains("at most 10"), "{body}");
    let (status, body) = s.post(PROD_KEY, &path, json!({"tags": "x".repeat(129)})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error_of(&body).starts_with("tags:"), "{body}");
    let (status, _) = s.post(PROD_KEY, &path, json!({"tags": 5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["tags"], json!(["a", "b", "c"]), "refused tags change nothing");

    let (status, _) = s.post(DEV_KEY, &path, json!({"tags": "z"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another environment's run is not found");
}

#[tokio::test]
async fn metadata_is_read_replaced_and_changed_by_each_operation() {
    let s = TestServer::start().await;
    let id = s.trigger(PROD_KEY, "t", json!({"options": {"metadata": {"a": 1}}})).await;
    let path = format!("/api/v1/runs/{id}/metadata");
    assert_eq!(s.get(PROD_KEY, &path).await, (StatusCode::OK, json!({"metadata": {"a": 1}})));

    // Each case: the operations, and the metadata after them.
    let cases = [
        (json!([{"type": "set", "key": "b", "value": "x"}]), json!({"a": 1, "b": "x"})),
        (json!([{"type": "set", "key": "$.p.q", "value": [1]}]), json!({"a": 1, "b": "x", "p": {"q": [1]}})),
        (json!([{"type": "append", "key": "$.p.q", "value": 2}]), json!({"a": 1, "b": "x", "p": {"q": [1, 2]}})),
        (json!([{"type": "remove", "key": "$.p.q", "value": 1}]), json!({"a": 1, "b": "x", "p": {"q": [2]}})),
        (json!([{"type": "increment", "key": "a", "value": 2.5}]), json!({"a": 3.5, "b": "x", "p": {"q": [2]}})),
        (json!([{"type": "delete", "key": "b"}]), json!({"a": 3.5, "p": {"q": [2]}})),
        (json!([{"type": "update", "value": {"fresh": true}}]), json!({"fresh": true})),
        (
            json!([{"type": "increment", "key": "$.n.done", "value": 1}, {"type": "append", "key": "log", "value": "one"}]),
            json!({"fresh": true, "n": {"done": 1}, "log": ["one"]}),
        ),
    ];
    for (operations, after) in cases {
        let (status, body) = put(&s, PROD_KEY, &path, json!({"operations": operations})).await;
        assert_eq!((status, &body["metadata"]), (StatusCode::OK, &after), "{operations}: {body}");
        assert_eq!(s.get(PROD_KEY, &path).await.1["metadata"], after);
    }
    let (status, body) = put(&s, PROD_KEY, &path, json!({"metadata": {"replaced": 1}})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"metadata": {"replaced": 1}})));
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{id}")).await;
    assert_eq!(run["metadata"], json!({"replaced": 1}));

    let untouched = s.trigger(PROD_KEY, "t", json!({})).await;
    let (status, body) = s.get(PROD_KEY, &format!("/api/v1/runs/{untouched}/metadata")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"metadata": {}})));
    assert_eq!(s.get(DEV_KEY, &path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(put(&s, DEV_KEY, &path, json!({"metadata": {}})).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metadata_changes_that_cannot_apply_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let id = s.trigger(PROD_KEY, "t", json!({"options": {"metadata": {"a": 1}}})).await;
    let path = format!("/api/v1/runs/{id}/metadata");
    let refusals = [
        (json!({"operations": [{"type": "set", "key": "__proto__", "value": 1}]}), "operations:"),
        (json!({"operations": [{"type": "set", "key": "$.a.constructor.x", "value": 1}]}), "operations:"),
        (json!({"operations": [{"type": "append", "key": "$.x.prototype", "value": 1}]}), "operations:"),
        (json!({"operations": [{"type": "set", "key": "$.a.b", "value": 1}]}), "operations:"),
        (json!({"operations": [{"type": "set", "key": "big", "value": "x".repeat(300_000)}]}), "metadata:"),
        (json!({"metadata": {"big": "x".repeat(300_000)}}), "metadata:"),
        (json!({"metadata": [1, 2]}), "metadata must be a JSON object"),
        (json!({"metadata": {}, "metadataType": "application/super+json"}), "metadataType"),
    ];
    for (body, expected) in refusals {
        let (status, answer) = put(&s, PROD_KEY, &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(error_of(&answer).starts_with(expected), "{expected}: {answer}");
    }
    let (status, _) = put(&s, PROD_KEY, &path, json!({"operations": [{"type": "explode", "key": "a"}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown operation");
    assert_eq!(s.get(PROD_KEY, &path).await.1, json!({"metadata": {"a": 1}}));
}

#[tokio::test]
async fn a_child_run_shows_its_parent_and_root_and_they_show_their_children() {
    let s = TestServer::start().await;
    let root = s.trigger(PROD_KEY, "root", json!({})).await;
    let child = s.trigger(PROD_KEY, "child", json!({"options": {"parentRunId": root}})).await;
    let grandchild = s.trigger(PROD_KEY, "grandchild", json!({"options": {"parentRunId": child}})).await;

    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{grandchild}")).await;
    assert_eq!(run["depth"], json!(2));
    assert_eq!(run["relatedRuns"]["parent"]["id"], json!(child));
    assert_eq!(run["relatedRuns"]["parent"]["depth"], json!(1));
    assert_eq!(run["relatedRuns"]["parent"]["taskIdentifier"], json!("child"));
    assert_eq!(run["relatedRuns"]["parent"]["triggerFunction"], json!("trigger"));
    assert_eq!(run["relatedRuns"]["root"]["id"], json!(root));
    assert_eq!(run["relatedRuns"]["root"]["status"], json!("QUEUED"));
    assert!(run["relatedRuns"].get("children").is_none(), "{run}");

    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{child}")).await;
    assert_eq!(run["depth"], json!(1));
    assert_eq!(run["relatedRuns"]["parent"]["id"], json!(root));
    assert_eq!(run["relatedRuns"]["root"]["id"], json!(root));
    let children: Vec<&Value> = run["relatedRuns"]["children"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(children, vec![&json!(grandchild)]);

    let second = s.trigger(PROD_KEY, "child", json!({"options": {"parentRunId": root}})).await;
    let (_, run) = s.get(PROD_KEY, &format!("/api/v3/runs/{root}")).await;
    assert_eq!(run["depth"], json!(0));
    assert!(run["relatedRuns"].get("parent").is_none() && run["relatedRuns"].get("root").is_none(), "{run}");
    let children: Vec<&Value> = run["relatedRuns"]["children"].as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(children, vec![&json!(child), &json!(second)], "oldest first");

    // Operations on the parent and the root through the child's metadata.
    let body = json!({
        "operations": [{"type": "set", "key": "mine", "value": 1}],
        "parentOperations": [{"type": "append", "key": "children", "value": "g"}],
        "rootOperations": [{"type": "increment", "key": "$.progress.done", "value": 1}]
    });
    let (status, answer) = put(&s, PROD_KEY, &format!("/api/v1/runs/{grandchild}/metadata"), body.clone()).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"metadata": {"mine": 1}})));
    assert_eq!(
        s.get(PROD_KEY, &format!("/api/v1/runs/{child}/metadata")).await.1["metadata"],
        json!({"children": ["g"]})
    );
    let root_metadata = s.get(PROD_KEY, &format!("/api/v1/runs/{root}/metadata")).await.1;
    assert_eq!(root_metadata["metadata"], json!({"progress": {"done": 1}}));
    // Without a parent or root they are ignored.
    let (status, answer) = put(&s, PROD_KEY, &format!("/api/v1/runs/{root}/metadata"), body).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"metadata": {"progress": {"done": 1}, "mine": 1}})));
}

#[tokio::test]
async fn an_unknown_parent_run_is_refused() {
    let s = TestServer::start().await;
    let dev_run = s.trigger(DEV_KEY, "t", json!({})).await;
    let missing = "run_01arz3ndektsv4rrffq69g5fav";
    for (parent, expected) in [
        (json!(dev_run), "parentRunId"),
        (json!(missing), "parentRunId"),
        (json!("nope"), "parentRunId"),
        (json!(7), "parentRunId"),
    ] {
        let (status, body) =
            s.post(PROD_KEY, "/api/v1/tasks/t/trigger", json!({"options": {"parentRunId": parent}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{parent}: {body}");
        assert!(error_of(&body).starts_with(expected), "{body}");
    }
    assert_eq!(s.run_count(PROD_KEY).await, 0, "nothing was made");
}

#[tokio::test]
async fn the_worker_changes_metadata_while_the_run_executes_and_with_its_completion() {
    let s = TestServer::start().await;
    let id = s.trigger(PROD_KEY, "t", json!({"options": {"metadata": {"step": 0}}})).await;
    let (_, registered) =
        s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": [{"id": "t"}]})).await;
    let worker = registered["workerId"].as_str().unwrap().to_string();
    let (_, taken) =
        s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/dequeue"), json!({"maxRuns": 1, "waitMs": 0})).await;
    let snapshot = taken["runs"][0]["snapshotId"].as_str().unwrap().to_string();
    let metadata = format!("/api/v1/workers/{worker}/metadata");
    let increment = json!([{"type": "increment", "key": "step", "value": 1}]);
    let body = json!({"runs": [
        {"runId": id, "snapshotId": snapshot, "operations": increment},
        {"runId": id, "snapshotId": "snapshot_01arz3ndektsv4rrffq69g5fav", "operations": increment},
        {"runId": id, "snapshotId": snapshot, "operations": [{"type": "set", "key": "$.__proto__.x", "value": 1}]},
        {"runId": "run_nope", "snapshotId": snapshot, "operations": increment}
    ]});
    let (status, answer) = s.post(PROD_KEY, &metadata, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcomes: Vec<&Value> = answer["runs"].as_array().unwrap().iter().map(|r| &r["outcome"]).collect();
    assert_eq!(outcomes, vec!["UPDATED", "STALE", "INVALID", "NOT_FOUND"], "{answer}");
    assert!(answer["runs"][2]["error"].as_str().unwrap().contains("__proto__"), "{answer}");
    let path = format!("/api/v1/runs/{id}/metadata");
    assert_eq!(s.get(PROD_KEY, &path).await.1["metadata"], json!({"step": 1}));

    let completion = json!({"completions": [{
        "runId": id, "snapshotId": snapshot, "ok": true, "output": 1,
        "metadataOperations": [{"type": "increment", "key": "step", "value": 1}, {"type": "set", "key": "done", "value": true}]
    }]});
    let (status, answer) = s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/complete"), completion.clone()).await;
    assert_eq!((status, &answer["results"][0]["outcome"]), (StatusCode::OK, &json!("RUN_FINISHED")), "{answer}");
    assert_eq!(s.get(PROD_KEY, &path).await.1["metadata"], json!({"step": 2, "done": true}));
    let (_, answer) = s.post(PROD_KEY, &format!("/api/v1/workers/{worker}/complete"), completion).await;
    assert_eq!(answer["results"][0]["outcome"], json!("STALE"));
    assert_eq!(
        s.get(PROD_KEY, &path).await.1["metadata"],
        json!({"step": 2, "done": true}),
        "a stale completion changes nothing"
    );
}
