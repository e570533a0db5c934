//! The isolation matrix: every route of the router, called with every credential that does not
//! own the target (keys of other environments and projects, personal access tokens, the admin
//! token, revoked credentials, none), answers 404 or 401 and changes nothing; the same routes
//! with the owner's credential answer 2xx, so the refusals are not wrong paths.
//!
//! The target is project P1: a queued run, its queue, a registered worker and a schedule in P1's
//! `prod` environment, P1's keys and tokens. The routes are a table, checked against `src/app.rs` so a
//! new route cannot be left out.

mod common;

use std::collections::BTreeSet;

use common::{ADMIN_TOKEN, PROD_KEY, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Which credential opens a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Opens {
    /// A secret key: the route acts in the key's environment.
    Environment,
    /// The worker protocol: a secret key, for a worker of its environment, or a personal access
    /// token, for a worker pool of its project's environments.
    Worker,
    /// A personal access token of the project in the path.
    Project,
    /// The instance's admin token.
    Admin,
    /// No credential: the hash in the path is one (a token's callback URL). Any credential with a
    /// wrong hash is a 401.
    Callback,
}

/// What a route reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reach {
    /// A thing of the target named in the path (a run, queue, worker or project): another
    /// environment's or project's credential gets 404.
    Target,
    /// Only the caller's own environment (trigger, listings, registration): another
    /// environment's key is answered there and must see and change nothing of the target.
    Own,
}

struct Route {
    method: &'static str,
    /// The path as `app.rs` writes it.
    path: &'static str,
    opens: Opens,
    reach: Reach,
    /// The body, from the target's ids.
    body: fn(&Target) -> Option<Value>,
}

/// Every route of the router but `/healthz`.
const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/api/v1/tasks/{task_id}/trigger",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"payload": {}, "options": {"idempotencyKey": "iso-key", "queue": {"name": "iso-q"}}})),
    },
    Route {
        method: "GET",
        path: "/api/v3/runs/{run_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    // Before the cancel below: the owner blocks the executing target run while it still can.
    Route {
        method: "POST",
        path: "/engine/v1/runs/{run_id}/wait/duration",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"date": "2100-01-01T00:00:00Z"})),
    },
    Route {
        method: "POST",
        path: "/engine/v1/runs/{run_id}/waitpoints/tokens/{waitpoint_id}/wait",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route { method: "GET", path: "/api/v1/runs", opens: Opens::Environment, reach: Reach::Own, body: |_| None },
    Route {
        method: "POST",
        path: "/api/v2/runs/{run_id}/cancel",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({})),
    },
    Route {
        method: "POST",
        path: "/api/v1/runs/{run_id}/replay",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({})),
    },
    Route {
        method: "POST",
        path: "/api/v1/runs/{run_id}/reschedule",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"delay": "1m"})),
    },
    // The trigger route above made each caller's own run with the target's key: a reset finds
    // that one, and the target run keeps its key (checked with the rest of the state).
    Route {
        method: "POST",
        path: "/api/v1/idempotencyKeys/{key}/reset",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"taskIdentifier": "iso-task"})),
    },
    Route {
        method: "POST",
        path: "/api/v1/runs/{run_id}/tags",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"tags": "iso-tag"})),
    },
    Route {
        method: "GET",
        path: "/api/v1/runs/{run_id}/metadata",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v3/batches",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"runCount": 1, "idempotencyKey": "iso-batch"})),
    },
    Route {
        method: "POST",
        path: "/api/v3/batches/{batch_id}/items",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"index": 0, "task": "iso-task", "payload": {}})),
    },
    Route {
        method: "GET",
        path: "/api/v1/batches/{batch_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "PUT",
        path: "/api/v1/runs/{run_id}/metadata",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"operations": [{"type": "set", "key": "iso", "value": 1}]})),
    },
    Route {
        method: "GET",
        path: "/api/v2/batches/{batch_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/tasks/batch",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"items": [{"task": "iso-task", "options": {"idempotencyKey": "iso-key"}}]})),
    },
    Route {
        method: "POST",
        path: "/api/v2/tasks/batch",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"items": [{"task": "iso-task", "options": {"idempotencyKey": "iso-key"}}]})),
    },
    Route {
        method: "POST",
        path: "/api/v1/tasks/{task_id}/batch",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"items": [{"payload": {}, "options": {"idempotencyKey": "iso-key"}}]})),
    },
    Route { method: "GET", path: "/api/v1/queues", opens: Opens::Environment, reach: Reach::Own, body: |_| None },
    Route {
        method: "GET",
        path: "/api/v1/queues/{queue}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/queues/{queue}/pause",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"action": "pause"})),
    },
    Route {
        method: "POST",
        path: "/api/v1/queues/{queue}/concurrency/override",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"concurrencyLimit": 1})),
    },
    Route {
        method: "POST",
        path: "/api/v1/queues/{queue}/concurrency/reset",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({})),
    },
    Route {
        method: "POST",
        path: "/api/v1/queues/{queue}/rate-limit/override",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"limit": 1, "periodMs": 1000})),
    },
    Route {
        method: "POST",
        path: "/api/v1/queues/{queue}/rate-limit/reset",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/register",
        opens: Opens::Worker,
        reach: Reach::Own,
        body: |_| Some(json!({"version": "1", "tasks": [{"id": "iso-task", "queue": {"name": "iso-q"}}]})),
    },
    // After the registration above: every caller's environment knows `iso-task`, so a schedule
    // of it can be made there. The delete comes last, so the owner reaches the others first.
    Route {
        method: "POST",
        path: "/api/v1/schedules",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"task": "iso-task", "cron": "0 3 * * *", "deduplicationKey": "iso-schedule"})),
    },
    Route { method: "GET", path: "/api/v1/schedules", opens: Opens::Environment, reach: Reach::Own, body: |_| None },
    Route {
        method: "GET",
        path: "/api/v1/schedules/{schedule_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "PUT",
        path: "/api/v1/schedules/{schedule_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"task": "iso-task", "cron": "0 4 * * *", "timezone": "Europe/London"})),
    },
    Route {
        method: "POST",
        path: "/api/v1/schedules/{schedule_id}/deactivate",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/schedules/{schedule_id}/activate",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/schedules/{schedule_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route { method: "GET", path: "/api/v1/timezones", opens: Opens::Environment, reach: Reach::Own, body: |_| None },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/dequeue",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |_| Some(json!({"maxRuns": 1, "waitMs": 0})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/heartbeat",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |t| Some(json!({"runs": [{"runId": t.run, "snapshotId": t.snapshot}]})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/complete",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |t| Some(json!({"completions": [{"runId": t.run, "snapshotId": t.snapshot, "ok": true, "output": 1}]})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/metadata",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |t| {
            Some(
                json!({"runs": [{"runId": t.run, "snapshotId": t.snapshot, "operations": [{"type": "set", "key": "w", "value": 1}]}]}),
            )
        },
    },
    // The target snapshot is not the run's: the owner's calls are answered STALE or STOP.
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/runs/{run_id}/steps",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |t| Some(json!({"snapshotId": t.snapshot, "seq": 0, "name": "iso-step", "output": 1})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/runs/{run_id}/waits",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |t| Some(json!({"snapshotId": t.snapshot, "seq": 1, "wait": {"type": "token", "id": t.waitpoint}})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/runs/{run_id}/continue",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |t| Some(json!({"snapshotId": t.snapshot, "seq": 1, "waitMs": 0})),
    },
    Route {
        method: "POST",
        path: "/api/v1/workers/{worker_id}/disconnect",
        opens: Opens::Worker,
        reach: Reach::Target,
        body: |_| Some(json!({})),
    },
    Route {
        method: "POST",
        path: "/api/v1/waitpoints/tokens",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| Some(json!({"idempotencyKey": "iso-token", "tags": ["iso"]})),
    },
    Route {
        method: "GET",
        path: "/api/v1/waitpoints/tokens",
        opens: Opens::Environment,
        reach: Reach::Own,
        body: |_| None,
    },
    Route {
        method: "GET",
        path: "/api/v1/waitpoints/tokens/{waitpoint_id}",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/waitpoints/tokens/{waitpoint_id}/complete",
        opens: Opens::Environment,
        reach: Reach::Target,
        body: |_| Some(json!({"data": {"by": "the caller"}})),
    },
    Route {
        method: "POST",
        path: "/api/v1/waitpoints/tokens/{waitpoint_id}/callback/{hash}",
        opens: Opens::Callback,
        reach: Reach::Target,
        body: |_| Some(json!({"by": "the callback"})),
    },
    Route {
        method: "GET",
        path: "/api/v1/projects/{project_ref}",
        opens: Opens::Project,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "GET",
        path: "/api/v1/projects/{project_ref}/runs",
        opens: Opens::Project,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/admin/projects",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| Some(json!({"name": "Intruder"})),
    },
    Route { method: "GET", path: "/api/v1/admin/projects", opens: Opens::Admin, reach: Reach::Target, body: |_| None },
    Route {
        method: "GET",
        path: "/api/v1/admin/projects/{project_ref}",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/admin/projects/{project_ref}/keys",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| Some(json!({"environment": "prod"})),
    },
    Route {
        method: "GET",
        path: "/api/v1/admin/projects/{project_ref}/keys",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/admin/projects/{project_ref}/keys/{key_id}",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "POST",
        path: "/api/v1/admin/projects/{project_ref}/tokens",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| Some(json!({})),
    },
    Route {
        method: "GET",
        path: "/api/v1/admin/projects/{project_ref}/tokens",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/admin/projects/{project_ref}/tokens/{token_id}",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "GET",
        path: "/api/v1/admin/projects/{project_ref}/environments/{env}",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| None,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/admin/projects/{project_ref}/environments/{env}",
        opens: Opens::Admin,
        reach: Reach::Target,
        body: |_| Some(json!({"paused": true})),
    },
];

/// What a credential is, for the expected answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A working secret key of an environment other than the target's.
    OtherEnvironmentKey,
    /// A working personal access token of the target's project.
    TargetProjectToken,
    /// A working personal access token of another project.
    OtherProjectToken,
    /// The admin token.
    Admin,
    /// A revoked key or token, or none at all, or text that is no credential.
    Nothing,
}

/// The things of project P1 the routes aim at.
struct Target {
    project_ref: String,
    run: String,
    snapshot: String,
    batch: String,
    queue: String,
    worker: String,
    key_id: String,
    token_id: String,
    prod_key: String,
    token: String,
    waitpoint: String,
    /// The hash of the waitpoint's callback URL.
    hash: String,
    schedule: String,
}

impl Target {
    fn path(&self, template: &str) -> String {
        template
            .replace("{task_id}", "iso-task")
            .replace("{run_id}", &self.run)
            .replace("{batch_id}", &self.batch)
            .replace("{queue}", &self.queue)
            .replace("{worker_id}", &self.worker)
            .replace("{project_ref}", &self.project_ref)
            .replace("{key_id}", &self.key_id)
            .replace("{token_id}", &self.token_id)
            .replace("{env}", "prod")
            .replace("{key}", "iso-key")
            .replace("{waitpoint_id}", &self.waitpoint)
            .replace("{hash}", &self.hash)
            .replace("{schedule_id}", &self.schedule)
    }

    /// The path of a route as a caller without its credential sends it: a callback URL with
    /// another hash.
    fn guessed_path(&self, route: &Route) -> String {
        match route.opens {
            Opens::Callback => {
                // Hex still, of the same length: only the HMAC is wrong.
                let (body, last) = self.hash.split_at(self.hash.len() - 1);
                let hash = format!("{body}{}", if last == "0" { "1" } else { "0" });
                route.path.replace("{hash}", &hash).replace("{waitpoint_id}", &self.waitpoint)
            }
            _ => self.path(route.path),
        }
    }

    /// The credential that owns a route's target; a callback URL needs none.
    fn owner(&self, opens: Opens) -> Option<&str> {
        match opens {
            Opens::Environment | Opens::Worker => Some(&self.prod_key),
            Opens::Project => Some(&self.token),
            Opens::Admin => Some(ADMIN_TOKEN),
            Opens::Callback => None,
        }
    }
}

/// The answer a credential of `kind` must get on `route`, or `None` when it owns the route
/// (`Own` routes answered in the caller's own environment are `Some(OK)`).
fn expected(route: &Route, kind: Kind) -> Option<StatusCode> {
    match (route.opens, kind) {
        // With a wrong hash, whatever the credential.
        (Opens::Callback, _) => Some(StatusCode::UNAUTHORIZED),
        (Opens::Environment | Opens::Worker, Kind::OtherEnvironmentKey) => Some(match route.reach {
            Reach::Target => StatusCode::NOT_FOUND,
            Reach::Own => success(route),
        }),
        // A worker pool of the target's project reaches the workers of its environments.
        (Opens::Project | Opens::Worker, Kind::TargetProjectToken) | (Opens::Admin, Kind::Admin) => None,
        (Opens::Worker, Kind::OtherProjectToken) => Some(match route.reach {
            Reach::Target => StatusCode::NOT_FOUND,
            // A pool names the environments it serves; the body names none, so nothing is made.
            Reach::Own => StatusCode::UNPROCESSABLE_ENTITY,
        }),
        (Opens::Project, Kind::OtherProjectToken) => Some(StatusCode::NOT_FOUND),
        _ => Some(StatusCode::UNAUTHORIZED),
    }
}

/// The status a route answers its owner with: 202 for the batch routes that Trigger.dev answers
/// so, 200 for the others.
fn success(route: &Route) -> StatusCode {
    match route.path {
        "/api/v3/batches" | "/api/v1/tasks/batch" | "/api/v2/tasks/batch" => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    }
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    credential: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", server.base);
    let mut request = match method {
        "GET" => server.http.get(url),
        "POST" => server.http.post(url),
        "PUT" => server.http.put(url),
        "DELETE" => server.http.delete(url),
        "PATCH" => server.http.patch(url),
        other => panic!("no method {other} in the matrix"),
    };
    if let Some(credential) = credential {
        request = request.bearer_auth(credential);
    }
    match body {
        // A batch's items are NDJSON: one item per line.
        Some(body) if path.ends_with("/items") => {
            request = request.header("content-type", "application/x-ndjson").body(body.to_string());
        }
        Some(body) => request = request.json(&body),
        None => {}
    }
    server.send(request).await
}

/// What the matrix must leave as it found: the target run, its queue, the runs of P1's prod
/// environment, its waitpoint token and tokens, its schedule and schedules, the projects, P1's keys and tokens, the prod
/// environment's limits.
async fn state(server: &TestServer, target: &Target) -> Vec<Value> {
    let reads = [
        (target.prod_key.as_str(), format!("/api/v3/runs/{}", target.run)),
        (target.prod_key.as_str(), format!("/api/v1/queues/{}", target.queue)),
        (target.prod_key.as_str(), "/api/v1/runs?page[size]=100".to_string()),
        (target.prod_key.as_str(), format!("/api/v2/batches/{}", target.batch)),
        (target.prod_key.as_str(), format!("/api/v1/waitpoints/tokens/{}", target.waitpoint)),
        (target.prod_key.as_str(), "/api/v1/waitpoints/tokens?page[size]=100".to_string()),
        (target.prod_key.as_str(), format!("/api/v1/schedules/{}", target.schedule)),
        (target.prod_key.as_str(), "/api/v1/schedules?perPage=100".to_string()),
        (ADMIN_TOKEN, "/api/v1/admin/projects".to_string()),
        (ADMIN_TOKEN, format!("/api/v1/admin/projects/{}/keys", target.project_ref)),
        (ADMIN_TOKEN, format!("/api/v1/admin/projects/{}/tokens", target.project_ref)),
        (ADMIN_TOKEN, format!("/api/v1/admin/projects/{}/environments/prod", target.project_ref)),
    ];
    let mut state = Vec::new();
    for (credential, path) in reads {
        let (status, body) = server.get(credential, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        state.push(body);
    }
    state
}

async fn admin_post(server: &TestServer, path: &str, body: Value) -> Value {
    let (status, answer) = server.post(ADMIN_TOKEN, path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
    answer
}

fn key_of(project: &Value, slug: &str) -> String {
    let env = project["environments"].as_array().unwrap().iter().find(|e| e["slug"] == slug).unwrap();
    env["apiKey"].as_str().unwrap().to_string()
}

/// `(method, path)` of every route `src/app.rs` declares, but `/healthz`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/app.rs")).unwrap();
    let mut routes = BTreeSet::new();
    for declaration in source.split(".route(").skip(1) {
        let path = declaration.split('"').nth(1).unwrap().to_string();
        let handlers = declaration.split([';']).next().unwrap().split(".layer(").next().unwrap();
        let handlers = handlers.split(".route(").next().unwrap().split(".merge(").next().unwrap();
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = handlers.match_indices(&format!("{method}(")).any(|(at, _)| {
                // `get(` inside `.get(` or ` get(`, not inside another word.
                at == 0 || !handlers.as_bytes()[at - 1].is_ascii_alphanumeric() && handlers.as_bytes()[at - 1] != b'_'
            });
            if called {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes.remove(&("GET".to_string(), "/healthz".to_string()));
    routes
}

#[test]
fn the_matrix_covers_every_route_of_the_router() {
    let declared = declared_routes();
    assert!(declared.len() >= 20, "reading app.rs found only {declared:?}");
    let tabled: BTreeSet<(String, String)> =
        ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(tabled.len(), ROUTES.len(), "a route is in the table twice");
    let missing: Vec<_> = declared.difference(&tabled).collect();
    let extra: Vec<_> = tabled.difference(&declared).collect();
    assert!(missing.is_empty(), "routes missing from the isolation matrix: {missing:?}");
    assert!(extra.is_empty(), "routes in the matrix the router does not have: {extra:?}");
}

#[tokio::test]
async fn no_credential_reaches_what_it_does_not_own() {
    let server = TestServer::start().await;
    let p1 = admin_post(&server, "/api/v1/admin/projects", json!({"name": "P1"})).await;
    let p2 = admin_post(&server, "/api/v1/admin/projects", json!({"name": "P2", "organization": "other"})).await;
    let p1_ref = p1["ref"].as_str().unwrap().to_string();
    let p2_ref = p2["ref"].as_str().unwrap().to_string();
    let prod_key = key_of(&p1, "prod");

    // The target: a queued run in a custom queue, a worker for its task, keys and tokens.
    let trigger = json!({"payload": {"n": 1}, "options": {"idempotencyKey": "iso-key", "queue": {"name": "iso-q"}}});
    let run = server.trigger(&prod_key, "iso-task", trigger).await;
    let (status, queue) = server.get(&prod_key, "/api/v1/queues/iso-q?type=custom").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let queue = queue["id"].as_str().unwrap().to_string();
    let (status, registered) = server
        .post(
            &prod_key,
            "/api/v1/workers/register",
            json!({"version": "1", "tasks": [{"id": "iso-task", "queue": {"name": "iso-q"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let worker = registered["workerId"].as_str().unwrap().to_string();
    let (status, batch) = server.post(&prod_key, "/api/v3/batches", json!({"runCount": 2})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let batch = batch["id"].as_str().unwrap().to_string();
    let (status, waitpoint) = server.post(&prod_key, "/api/v1/waitpoints/tokens", json!({"tags": "iso"})).await;
    assert_eq!(status, StatusCode::OK, "{waitpoint}");
    let hash = waitpoint["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let schedule = json!({"task": "iso-task", "cron": "0 3 * * *", "deduplicationKey": "iso-schedule"});
    let (status, schedule) = server.post(&prod_key, "/api/v1/schedules", schedule).await;
    assert_eq!(status, StatusCode::OK, "{schedule}");
    let schedule = schedule["id"].as_str().unwrap().to_string();
    let waitpoint = waitpoint["id"].as_str().unwrap().to_string();
    let keys = format!("/api/v1/admin/projects/{p1_ref}/keys");
    let tokens = format!("/api/v1/admin/projects/{p1_ref}/tokens");
    let kept_key = admin_post(&server, &keys, json!({"environment": "prod", "name": "kept"})).await;
    let revoked_key = admin_post(&server, &keys, json!({"environment": "prod", "name": "revoked"})).await;
    let token = admin_post(&server, &tokens, json!({"name": "kept"})).await;
    let revoked_token = admin_post(&server, &tokens, json!({"name": "revoked"})).await;
    let p2_token = admin_post(&server, &format!("/api/v1/admin/projects/{p2_ref}/tokens"), json!({})).await;
    for (path, id) in [(&keys, &revoked_key["id"]), (&tokens, &revoked_token["id"])] {
        let (status, _) = server.delete(ADMIN_TOKEN, &format!("{path}/{}", id.as_str().unwrap())).await;
        assert_eq!(status, StatusCode::OK);
    }
    let target = Target {
        project_ref: p1_ref.clone(),
        run: run.clone(),
        snapshot: "snapshot_01arz3ndektsv4rrffq69g5fav".into(),
        batch: batch.clone(),
        queue: queue.clone(),
        worker,
        key_id: kept_key["id"].as_str().unwrap().to_string(),
        token_id: token["id"].as_str().unwrap().to_string(),
        prod_key: prod_key.clone(),
        token: token["token"].as_str().unwrap().to_string(),
        waitpoint: waitpoint.clone(),
        hash,
        schedule,
    };

    let before = state(&server, &target).await;
    assert_eq!(before[0]["status"], "QUEUED", "{}", before[0]);
    assert_eq!(before[4]["status"], "WAITING", "{}", before[4]);

    let credentials: Vec<(String, Option<String>, Kind)> = vec![
        ("P1 dev key".into(), Some(key_of(&p1, "dev")), Kind::OtherEnvironmentKey),
        ("P1 staging key".into(), Some(key_of(&p1, "staging")), Kind::OtherEnvironmentKey),
        ("P1 preview key".into(), Some(key_of(&p1, "preview")), Kind::OtherEnvironmentKey),
        ("P2 prod key".into(), Some(key_of(&p2, "prod")), Kind::OtherEnvironmentKey),
        ("P2 dev key".into(), Some(key_of(&p2, "dev")), Kind::OtherEnvironmentKey),
        ("default project prod key".into(), Some(PROD_KEY.into()), Kind::OtherEnvironmentKey),
        ("P1 token".into(), Some(target.token.clone()), Kind::TargetProjectToken),
        ("P2 token".into(), p2_token["token"].as_str().map(String::from), Kind::OtherProjectToken),
        ("admin token".into(), Some(ADMIN_TOKEN.into()), Kind::Admin),
        ("revoked P1 prod key".into(), revoked_key["key"].as_str().map(String::from), Kind::Nothing),
        ("revoked P1 token".into(), revoked_token["token"].as_str().map(String::from), Kind::Nothing),
        ("no credential".into(), None, Kind::Nothing),
        ("a key-shaped guess".into(), Some(guess(&prod_key)), Kind::Nothing),
    ];

    let mut checked = 0;
    for route in ROUTES {
        let path = target.guessed_path(route);
        for (label, credential, kind) in &credentials {
            let Some(status) = expected(route, *kind) else { continue };
            let (got, body) = call(&server, route.method, &path, credential.as_deref(), (route.body)(&target)).await;
            assert_eq!(got, status, "{label} on {} {path}: {body}", route.method);
            if got == StatusCode::NOT_FOUND {
                let error = body["error"].as_str().unwrap_or_default();
                assert!(!error.starts_with("No route"), "{label} on {} {path} found no route: {body}", route.method);
            }
            if route.reach == Reach::Own && got.is_success() {
                let text = body.to_string();
                assert!(
                    !text.contains(&target.run)
                        && !text.contains(&target.queue)
                        && !text.contains(&target.batch)
                        && !text.contains(&target.waitpoint)
                        && !text.contains(&target.schedule),
                    "{label} on {} {path} sees the target: {body}",
                    route.method
                );
            }
            checked += 1;
        }
    }
    assert!(checked > ROUTES.len() * 8, "only {checked} cases ran");

    // Nothing changed: the run, its queue, P1's prod runs, the projects, P1's keys and tokens are
    // exactly as they were.
    let after = state(&server, &target).await;
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(before, after);
    }

    // The worker was not disconnected by anyone else: its dequeue takes the run. Then the owners
    // reach every route: the refusals above were not wrong paths.
    let dequeue = format!("/api/v1/workers/{}/dequeue", target.worker);
    let (status, taken) = server.post(&prod_key, &dequeue, json!({"maxRuns": 1, "waitMs": 0})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["runs"][0]["runId"], run.as_str(), "{taken}");
    for route in ROUTES {
        let path = target.path(route.path);
        let (status, body) = call(&server, route.method, &path, target.owner(route.opens), (route.body)(&target)).await;
        // The target run is executing by now: a reschedule reaches it and says it is not delayed.
        let reached = status.is_success()
            || route.path.ends_with("/reschedule") && body["error"].as_str().is_some_and(|e| e.contains("not delayed"));
        assert!(reached, "the owner on {} {path}: {status} {body}", route.method);
        if route.path == "/api/v1/tasks/{task_id}/trigger" {
            assert_eq!(body["id"], run.as_str(), "the owner's idempotency key finds the target run: {body}");
        }
    }
    let (_, token) = server.get(&prod_key, &format!("/api/v1/waitpoints/tokens/{waitpoint}")).await;
    assert_eq!(token["status"], "COMPLETED", "{token}");
    assert_eq!(token["output"], json!({"by": "the caller"}).to_string(), "the owner's complete came first: {token}");
}

/// `key` with its last character changed: the same shape, never the same key.
fn guess(key: &str) -> String {
    let (body, last) = key.split_at(key.len() - 1);
    format!("{body}{}", if last == "x" { "y" } else { "x" })
}
