//! The queues API over HTTP: Trigger.dev's shapes, pause and resume, concurrency override and
//! reset, bad input answered with a clear 4xx, and no reach into another environment.

mod common;

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server with a run waiting in `task/t` and two in the custom queue `emails`.
async fn with_queues() -> TestServer {
    let s = TestServer::start().await;
    s.trigger(PROD_KEY, "t", json!({"payload": 1})).await;
    for _ in 0..2 {
        s.trigger(PROD_KEY, "mailer", json!({"payload": 1, "options": {"queue": {"name": "emails"}}})).await;
    }
    s
}

async fn task_queue(s: &TestServer) -> Value {
    let (status, queue) = s.get(PROD_KEY, "/api/v1/queues/t?type=task").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    queue
}

#[tokio::test]
async fn queues_are_listed_and_retrieved_in_trigger_devs_shapes() {
    let s = with_queues().await;
    let (status, page) = s.get(PROD_KEY, "/api/v1/queues").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pagination"], json!({"currentPage": 1, "totalPages": 1, "count": 2}));
    let names: Vec<&str> = page["data"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["emails", "t"], "by name, task queues by their task's id");

    let queue = task_queue(&s).await;
    let id = queue["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("queue_"), "{id}");
    assert_eq!(
        queue,
        json!({
            "id": id, "name": "t", "type": "task", "running": 0, "queued": 1, "paused": false,
            "concurrencyLimit": null,
            "concurrency": {"current": null, "base": null, "override": null, "overriddenAt": null, "overriddenBy": null},
            "releaseConcurrencyOnWaitpoint": true,
            "rateLimit": null,
        })
    );
    for path in [
        format!("/api/v1/queues/{id}"),
        format!("/api/v1/queues/{id}?type=id"),
        "/api/v1/queues/task%2Ft?type=task".into(),
    ] {
        let (status, same) = s.get(PROD_KEY, &path).await;
        assert_eq!((status, &same), (StatusCode::OK, &queue), "{path}");
    }
    let (_, emails) = s.get(PROD_KEY, "/api/v1/queues/emails?type=custom").await;
    assert_eq!((emails["type"].as_str(), emails["queued"].as_u64()), (Some("custom"), Some(2)));

    let (status, second) = s.get(PROD_KEY, "/api/v1/queues?page=2&perPage=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["pagination"], json!({"currentPage": 2, "totalPages": 2, "count": 2}));
    assert_eq!(second["data"].as_array().unwrap().len(), 1);

    let (status, missing) = s.get(PROD_KEY, "/api/v1/queues/nothing?type=custom").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&missing), "no queue named 'nothing'");
}

#[tokio::test]
async fn pause_resume_override_and_reset() {
    let s = with_queues().await;
    let (status, paused) = s.post(PROD_KEY, "/api/v1/queues/t/pause", json!({"type": "task", "action": "pause"})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["paused"], json!(true));
    assert_eq!(task_queue(&s).await["paused"], json!(true));
    let (_, resumed) = s.post(PROD_KEY, "/api/v1/queues/t/pause", json!({"type": "task", "action": "resume"})).await;
    assert_eq!(resumed["paused"], json!(false));

    let path = "/api/v1/queues/emails/concurrency/override";
    let (status, raised) = s.post(PROD_KEY, path, json!({"type": "custom", "concurrencyLimit": 5})).await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    assert_eq!(raised["concurrencyLimit"], json!(5));
    assert_eq!(
        (raised["concurrency"]["override"].clone(), raised["concurrency"]["base"].clone()),
        (json!(5), json!(null))
    );
    assert!(raised["concurrency"]["overriddenAt"].as_str().unwrap().ends_with('Z'));

    let (status, reset) = s.post(PROD_KEY, "/api/v1/queues/emails/concurrency/reset", json!({"type": "custom"})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["concurrencyLimit"], json!(null));
    assert_eq!(reset["concurrency"]["overriddenAt"], json!(null));
}

#[tokio::test]
async fn bad_queue_requests_get_a_clear_4xx_and_change_nothing() {
    let s = with_queues().await;
    let before = task_queue(&s).await;
    let cases: [(&str, Value, StatusCode, &str); 7] = [
        (
            "/api/v1/queues/t/pause",
            json!({"type": "task", "action": "stop"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant `stop`",
        ),
        ("/api/v1/queues/t/pause", json!({"type": "task"}), StatusCode::UNPROCESSABLE_ENTITY, "missing field `action`"),
        (
            "/api/v1/queues/t/pause",
            json!({"type": "queue", "action": "pause"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant `queue`",
        ),
        (
            "/api/v1/queues/t/concurrency/override",
            json!({"type": "task", "concurrencyLimit": 100_001}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "between 0 and 100000",
        ),
        (
            "/api/v1/queues/t/concurrency/override",
            json!({"type": "task", "concurrencyLimit": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "concurrencyLimit",
        ),
        (
            "/api/v1/queues/t/concurrency/override",
            json!({"type": "task", "concurrencyLimit": "5"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "concurrencyLimit",
        ),
        (
            "/api/v1/queues/t/concurrency/reset",
            json!({"type": "task", "force": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `force`",
        ),
    ];
    for (path, body, expected, says) in cases {
        let (status, answer) = s.post(PROD_KEY, path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(error_of(&answer).contains(says), "{path} {body}: {answer}");
    }
    let (status, _) = s.post_raw(PROD_KEY, "/api/v1/queues/t/pause", "{", "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for query in ["perPage=0", "perPage=101", "page=0", "page=x", "size=3"] {
        let (status, answer) = s.get(PROD_KEY, &format!("/api/v1/queues?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
    }
    let (status, answer) = s.get(PROD_KEY, "/api/v1/queues/t?type=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&answer), "type must be id, task or custom, got 'bogus'");
    assert_eq!(task_queue(&s).await, before);
}

#[tokio::test]
async fn another_environment_cannot_see_or_change_a_queue() {
    let s = with_queues().await;
    let before = task_queue(&s).await;
    let id = before["id"].as_str().unwrap();
    let (status, _) = s.get(DEV_KEY, &format!("/api/v1/queues/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.get(DEV_KEY, "/api/v1/queues/t?type=task").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (path, body) in [
        (format!("/api/v1/queues/{id}/pause"), json!({"action": "pause"})),
        (format!("/api/v1/queues/{id}/concurrency/override"), json!({"concurrencyLimit": 1})),
        (format!("/api/v1/queues/{id}/concurrency/reset"), json!({})),
        ("/api/v1/queues/t/pause".into(), json!({"type": "task", "action": "pause"})),
    ] {
        let (status, answer) = s.post(DEV_KEY, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    let (_, page) = s.get(DEV_KEY, "/api/v1/queues").await;
    assert_eq!(page["pagination"]["count"], json!(0));
    for key in ["", "tr_prod_wrongwrongwrongwrong"] {
        let (status, _) = s.get(key, "/api/v1/queues").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(task_queue(&s).await, before, "nothing the other key did changed the queue");
}

#[tokio::test]
async fn a_rate_limit_is_declared_overridden_reset_and_holds_back_starts() {
    let s = TestServer::start().await;
    let declared = json!({"limit": 2, "periodMs": 60_000, "perKey": false});
    let tasks = json!([{"id": "t", "queue": {"name": "task/t", "rateLimit": declared}}]);
    let (status, worker) = s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": tasks})).await;
    assert_eq!(status, StatusCode::OK, "{worker}");
    assert_eq!(task_queue(&s).await["rateLimit"], declared, "the declared rate, without overriddenAt");

    let path = "/api/v1/queues/t/rate-limit/override";
    let body = json!({"type": "task", "limit": 3, "periodMs": 10_000, "perKey": true});
    let (status, overridden) = s.post(PROD_KEY, path, body).await;
    assert_eq!(status, StatusCode::OK, "{overridden}");
    let rate = &overridden["rateLimit"];
    assert_eq!((&rate["limit"], &rate["periodMs"], &rate["perKey"]), (&json!(3), &json!(10_000), &json!(true)));
    assert!(rate["overriddenAt"].as_str().unwrap().ends_with('Z'), "{rate}");
    assert_eq!(task_queue(&s).await["rateLimit"], *rate);

    let (status, reset) = s.post(PROD_KEY, "/api/v1/queues/t/rate-limit/reset", json!({"type": "task"})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["rateLimit"], declared, "the declared rate is back");

    // Two starts per minute: the third run stays queued.
    for _ in 0..3 {
        s.trigger(PROD_KEY, "t", json!({"payload": 1})).await;
    }
    let dequeue = format!("/api/v1/workers/{}/dequeue", worker["workerId"].as_str().unwrap());
    let (status, taken) = s.post(PROD_KEY, &dequeue, json!({"maxRuns": 10, "waitMs": 0})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["runs"].as_array().unwrap().len(), 2);
    let (_, more) = s.post(PROD_KEY, &dequeue, json!({"maxRuns": 10, "waitMs": 0})).await;
    assert_eq!(more["runs"].as_array().unwrap().len(), 0);
    assert_eq!(task_queue(&s).await["queued"], json!(1));
}

#[tokio::test]
async fn bad_rate_limits_get_a_clear_4xx_and_change_nothing() {
    let s = with_queues().await;
    let before = task_queue(&s).await;
    let path = "/api/v1/queues/t/rate-limit/override";
    let cases: [(Value, &str); 7] = [
        (json!({"type": "task", "limit": 0, "periodMs": 1_000}), "rateLimit.limit must be between 1 and 100000"),
        (json!({"type": "task", "limit": 100_001, "periodMs": 1_000}), "rateLimit.limit"),
        (json!({"type": "task", "limit": 1, "periodMs": 999}), "rateLimit.periodMs must be between 1000 and 86400000"),
        (json!({"type": "task", "limit": 1, "periodMs": 86_400_001}), "rateLimit.periodMs"),
        (json!({"type": "task", "periodMs": 1_000}), "missing field `limit`"),
        (json!({"type": "task", "limit": 1, "periodMs": 1_000, "perKey": "yes"}), "invalid type"),
        (json!({"type": "task", "limit": 1, "periodMs": 1_000, "burst": 2}), "unknown field `burst`"),
    ];
    for (body, says) in cases {
        let (status, answer) = s.post(PROD_KEY, path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(error_of(&answer).contains(says), "{body}: {answer}");
    }
    let tasks = json!([{"id": "u", "queue": {"name": "u", "rateLimit": {"limit": 1, "periodMs": 10}}}]);
    let (status, answer) = s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": tasks})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(error_of(&answer).contains("queue 'u': rateLimit.periodMs"), "{answer}");
    let (status, _) = s.post(PROD_KEY, "/api/v1/queues/t/rate-limit/reset", json!({"type": "task", "x": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, answer) = s.post(DEV_KEY, path, json!({"type": "task", "limit": 1, "periodMs": 1_000})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another environment's queue: {answer}");
    let (status, _) = s.post(DEV_KEY, "/api/v1/queues/t/rate-limit/reset", json!({"type": "task"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(task_queue(&s).await, before);
}
