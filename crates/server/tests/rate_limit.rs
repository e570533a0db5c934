//! API request rate limits per environment: 429 with Trigger.dev's headers once an
//! environment's bucket is empty, other environments and the worker protocol untouched.

mod common;

use std::num::NonZeroU32;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{DEV_KEY, PROD_KEY, TestServer, error_of};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;
use stint_server::ApiRateLimit;

fn header(headers: &HeaderMap, name: &str) -> u128 {
    headers.get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap().parse().unwrap()
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

#[tokio::test]
async fn an_environment_over_its_limit_gets_429_with_the_rate_limit_headers() {
    let s = TestServer::start_with(|config| {
        let limit = ApiRateLimit { burst: NonZeroU32::new(3).unwrap(), per_second: NonZeroU32::new(1).unwrap() };
        config.api_rate_limit = Some(limit);
    })
    .await;
    let get = |key: &'static str| s.http.get(format!("{}/api/v1/runs", s.base)).bearer_auth(key).send();
    for remaining in [2, 1, 0] {
        let response = get(PROD_KEY).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(response.headers(), "x-ratelimit-limit"), 3);
        assert_eq!(header(response.headers(), "x-ratelimit-remaining"), remaining);
    }
    let response = get(PROD_KEY).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    assert_eq!(header(&headers, "x-ratelimit-remaining"), 0);
    let reset = header(&headers, "x-ratelimit-reset");
    assert!(reset > now_ms() && reset <= now_ms() + 1_100, "reset {reset} is when the next request is allowed");
    assert_eq!(header(&headers, "retry-after"), 1);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(error_of(&body).starts_with("Rate limit exceeded"), "{body}");

    let (status, _) = s.post(PROD_KEY, "/api/v1/tasks/t/trigger", json!({"payload": 1})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a refused trigger");
    assert_eq!(s.run_count(DEV_KEY).await, 0, "another environment has a bucket of its own");

    // Workers are not limited: they register and poll as often as they need.
    for _ in 0..5 {
        let (status, answer) =
            s.post(PROD_KEY, "/api/v1/workers/register", json!({"version": "1", "tasks": [{"id": "t"}]})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // A request without a known key is refused by authentication, not counted.
    let (status, _) = s.get("tr_prod_wrongwrongwrongwrong", "/api/v1/runs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let response = get(PROD_KEY).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the bucket refills");
    assert_eq!(s.run_count(PROD_KEY).await, 0, "the refused trigger made no run");
}
