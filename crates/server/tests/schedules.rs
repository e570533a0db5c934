//! The schedules API over HTTP: Trigger.dev's shapes, the deduplication key's upsert, activate and
//! deactivate, bad input answered with a 4xx naming the field and storing nothing, no reach into
//! another environment, declared schedules, and the time zones list.

mod common;

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server whose production environment knows the tasks `report` and `cleanup`.
async fn with_tasks() -> TestServer {
    let s = TestServer::start().await;
    register(&s, PROD_KEY, json!([{"id": "report"}, {"id": "cleanup"}])).await;
    s
}

async fn register(s: &TestServer, key: &str, tasks: Value) -> (StatusCode, Value) {
    let (status, body) = s.post(key, "/api/v1/workers/register", json!({"version": "1", "tasks": tasks})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (status, body)
}

async fn create(s: &TestServer, body: Value) -> Value {
    let (status, schedule) = s.post(PROD_KEY, "/api/v1/schedules", body).await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    schedule
}

async fn put(s: &TestServer, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    s.send(s.http.put(format!("{}{path}", s.base)).bearer_auth(key).json(&body)).await
}

async fn count(s: &TestServer, key: &str) -> u64 {
    let (status, page) = s.get(key, "/api/v1/schedules").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["pagination"]["count"].as_u64().unwrap()
}

#[tokio::test]
async fn a_schedule_is_made_read_listed_changed_and_deleted_in_trigger_devs_shapes() {
    let s = with_tasks().await;
    let schedule = create(
        &s,
        json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "nightly", "externalId": "user-1",
               "timezone": "Europe/London"}),
    )
    .await;
    let id = schedule["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sched_"), "{schedule}");
    let next_run = schedule["nextRun"].as_str().unwrap().to_string();
    let env_id = schedule["environments"][0]["id"].as_str().unwrap().to_string();
    assert!(env_id.starts_with("env_"), "{schedule}");
    let description = schedule["generator"]["description"].as_str().unwrap().to_string();
    assert!(!description.is_empty() && description != "0 3 * * *", "described in words: {description}");
    assert_eq!(
        schedule,
        json!({
            "id": id, "type": "IMPERATIVE", "task": "report", "active": true,
            "deduplicationKey": "nightly", "externalId": "user-1",
            "generator": {"type": "CRON", "expression": "0 3 * * *", "description": description},
            "timezone": "Europe/London", "nextRun": next_run,
            "environments": [{"id": env_id, "type": "PRODUCTION"}],
        })
    );
    // 03:00 in London is 03:00 or 02:00 UTC, whatever the season.
    assert!(next_run.ends_with("T03:00:00.000Z") || next_run.ends_with("T02:00:00.000Z"), "{next_run}");

    let path = format!("/api/v1/schedules/{id}");
    let (status, read) = s.get(PROD_KEY, &path).await;
    assert_eq!((status, &read), (StatusCode::OK, &schedule));

    create(&s, json!({"task": "cleanup", "cron": "*/15 * * * *", "deduplicationKey": "cleanup"})).await;
    let (status, page) = s.get(PROD_KEY, "/api/v1/schedules").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pagination"], json!({"currentPage": 1, "totalPages": 1, "count": 2}));
    let (_, second) = s.get(PROD_KEY, "/api/v1/schedules?page=2&perPage=1").await;
    assert_eq!(second["pagination"], json!({"currentPage": 2, "totalPages": 2, "count": 2}));
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    let (_, reports) = s.get(PROD_KEY, "/api/v1/schedules?task=report").await;
    assert_eq!(reports["pagination"]["count"], 1, "{reports}");
    assert_eq!(reports["data"][0], schedule);
    let (_, cleanup) = s.get(PROD_KEY, "/api/v1/schedules?task=cleanup").await;
    assert_eq!(cleanup["data"][0]["timezone"], "UTC", "UTC without a time zone: {cleanup}");

    let (status, changed) =
        put(&s, PROD_KEY, &path, json!({"task": "cleanup", "cron": "30 6 * * 1", "timezone": "UTC"})).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["id"], id.as_str());
    assert_eq!((changed["task"].as_str(), changed["timezone"].as_str()), (Some("cleanup"), Some("UTC")));
    assert_eq!(changed["generator"]["expression"], "30 6 * * 1");
    assert_eq!(changed["deduplicationKey"], "nightly", "an update keeps the key: {changed}");
    assert_eq!(changed.get("externalId"), None, "an update replaces the external id: {changed}");
    assert!(changed["nextRun"].as_str().unwrap().ends_with("T06:30:00.000Z"), "{changed}");

    let (status, off) = s.post(PROD_KEY, &format!("{path}/deactivate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["active"], false);
    assert_eq!(s.get(PROD_KEY, &path).await.1["active"], false);
    let (status, on) = s.post(PROD_KEY, &format!("{path}/activate"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{on}");
    assert_eq!(on["active"], true);

    let (status, deleted) = s.delete(PROD_KEY, &path).await;
    assert_eq!((status, deleted), (StatusCode::OK, json!({"id": id})));
    let (status, gone) = s.get(PROD_KEY, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(count(&s, PROD_KEY).await, 1);
    let (status, again) = s.delete(PROD_KEY, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
}

#[tokio::test]
async fn the_same_deduplication_key_updates_the_same_schedule() {
    let s = with_tasks().await;
    let first = create(&s, json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k"})).await;
    let second = create(
        &s,
        json!({"task": "report", "cron": "0 5 * * *", "deduplicationKey": "k", "timezone": "Asia/Tokyo",
               "externalId": "x"}),
    )
    .await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["generator"]["expression"], "0 5 * * *");
    assert_eq!((second["timezone"].as_str(), second["externalId"].as_str()), (Some("Asia/Tokyo"), Some("x")));
    assert_eq!(count(&s, PROD_KEY).await, 1);
    let other = create(&s, json!({"task": "report", "cron": "0 5 * * *", "deduplicationKey": "other"})).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(count(&s, PROD_KEY).await, 2);
}

#[tokio::test]
async fn bad_schedules_get_a_4xx_naming_the_field_and_store_nothing() {
    let s = with_tasks().await;
    let cases: [(Value, StatusCode, &str); 8] = [
        (
            json!({"task": "report", "cron": "0 3 * * *"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `deduplicationKey`",
        ),
        (
            json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "deduplicationKey",
        ),
        (
            json!({"task": "report", "cron": "61 * * * *", "deduplicationKey": "k"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cron: ",
        ),
        (
            json!({"task": "report", "cron": "0 3 * *", "deduplicationKey": "k"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cron: ",
        ),
        (
            json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k", "timezone": "Mars/Olympus"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timezone: ",
        ),
        (
            json!({"task": "nothing", "cron": "0 3 * * *", "deduplicationKey": "k"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "task: ",
        ),
        (
            json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k", "window": "30m"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "window: ",
        ),
        (
            json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k", "timeZone": "UTC"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `timeZone`",
        ),
    ];
    for (body, expected, message) in cases {
        let (status, answer) = s.post(PROD_KEY, "/api/v1/schedules", body.clone()).await;
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(error_of(&answer).contains(message), "{body}: {answer}");
    }
    assert_eq!(count(&s, PROD_KEY).await, 0);

    // An update is checked the same way and changes nothing.
    let schedule = create(&s, json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k"})).await;
    let path = format!("/api/v1/schedules/{}", schedule["id"].as_str().unwrap());
    for (body, message) in [
        (json!({"task": "report", "cron": "every day"}), "cron: "),
        (json!({"task": "report", "cron": "0 3 * * *", "timezone": "Nowhere"}), "timezone: "),
        (json!({"task": "nothing", "cron": "0 3 * * *"}), "task: "),
        (json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k"}), "unknown field `deduplicationKey`"),
    ] {
        let (status, answer) = put(&s, PROD_KEY, &path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(error_of(&answer).contains(message), "{body}: {answer}");
    }
    assert_eq!(s.get(PROD_KEY, &path).await.1, schedule);

    for query in ["page=0", "perPage=x", "filter[task]=report"] {
        let (status, answer) = s.get(PROD_KEY, &format!("/api/v1/schedules?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
    }
    let (status, missing) = s.get(PROD_KEY, "/api/v1/schedules/not-a-schedule").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test]
async fn another_environments_schedule_is_not_found() {
    let s = with_tasks().await;
    let schedule = create(&s, json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k"})).await;
    let path = format!("/api/v1/schedules/{}", schedule["id"].as_str().unwrap());
    register(&s, DEV_KEY, json!([{"id": "report"}])).await;

    let (status, body) = s.get(DEV_KEY, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = put(&s, DEV_KEY, &path, json!({"task": "report", "cron": "0 4 * * *"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for action in ["activate", "deactivate"] {
        let (status, body) = s.post(DEV_KEY, &format!("{path}/{action}"), json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {body}");
    }
    let (status, body) = s.delete(DEV_KEY, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(count(&s, DEV_KEY).await, 0);

    // The same key in another environment is another schedule.
    let (status, own) = s
        .post(DEV_KEY, "/api/v1/schedules", json!({"task": "report", "cron": "0 3 * * *", "deduplicationKey": "k"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_ne!(own["id"], schedule["id"]);
    assert_eq!(own["environments"][0]["type"], "DEVELOPMENT");
    assert_eq!(s.get(PROD_KEY, &path).await.1, schedule, "untouched");
}

#[tokio::test]
async fn a_declared_schedule_follows_the_code_and_is_not_changed_through_the_api() {
    let s = TestServer::start().await;
    let declared = json!([{"id": "nightly", "schedule": {"cron": "0 3 * * *", "timezone": "Europe/London"}},
                          {"id": "staging-only", "schedule": {"cron": "0 4 * * *", "environments": ["staging"]}}]);
    register(&s, PROD_KEY, declared).await;
    let (_, page) = s.get(PROD_KEY, "/api/v1/schedules").await;
    assert_eq!(page["pagination"]["count"], 1, "only the one declared for every environment: {page}");
    let schedule = &page["data"][0];
    assert_eq!((schedule["type"].as_str(), schedule["task"].as_str()), (Some("DECLARATIVE"), Some("nightly")));
    assert_eq!(schedule["timezone"], "Europe/London");
    assert_eq!(schedule.get("deduplicationKey"), None, "{schedule}");
    let path = format!("/api/v1/schedules/{}", schedule["id"].as_str().unwrap());
    let (status, refused) = put(&s, PROD_KEY, &path, json!({"task": "nightly", "cron": "0 4 * * *"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, refused) = s.delete(PROD_KEY, &path).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(count(&s, PROD_KEY).await, 1);

    // A bad declaration fails the registration, naming the task and the field.
    for (schedule, message) in [
        (json!({"cron": "0 25 * * *"}), "cron: "),
        (json!({"cron": "0 3 * * *", "timezone": "Europe/Atlantis"}), "timezone: "),
        (json!({"cron": "0 3 * * *", "environments": ["qa"]}), "schedule.environments: "),
    ] {
        let body = json!({"version": "2", "tasks": [{"id": "bad", "schedule": schedule}]});
        let (status, answer) = s.post(PROD_KEY, "/api/v1/workers/register", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{schedule}: {answer}");
        let error = error_of(&answer);
        assert!(error.contains("bad") && error.contains(message), "{schedule}: {answer}");
    }
}

#[tokio::test]
async fn a_run_no_schedule_fired_shows_none() {
    let s = TestServer::start().await;
    let run = s.trigger(PROD_KEY, "report", json!({"payload": 1})).await;
    let (status, body) = s.get(PROD_KEY, &format!("/api/v3/runs/{run}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.get("schedule"), None, "{body}");
}

#[tokio::test]
async fn the_time_zones_are_listed_utc_first() {
    let s = TestServer::start().await;
    let (status, body) = s.get(PROD_KEY, "/api/v1/timezones").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let zones: Vec<&str> = body["timezones"].as_array().unwrap().iter().map(|z| z.as_str().unwrap()).collect();
    assert_eq!(zones[0], "UTC");
    assert!(zones.contains(&"Europe/London") && zones.contains(&"America/New_York"), "{zones:?}");
    assert!(zones[1..].windows(2).all(|pair| pair[0] < pair[1]), "by name, once each");
    let (status, without) = s.get(PROD_KEY, "/api/v1/timezones?excludeUtc=true").await;
    assert_eq!(status, StatusCode::OK, "{without}");
    assert_eq!(without["timezones"].as_array().unwrap().len(), zones.len() - 1);
    assert!(!without["timezones"].as_array().unwrap().contains(&json!("UTC")));
    let (status, bad) = s.get(PROD_KEY, "/api/v1/timezones?excludeUtc=yes").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, _) = s.get("tr_prod_notakeynotakeynotakey12", "/api/v1/timezones").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
