//! API request rate limits per environment, as Trigger.dev's: a token bucket per environment, and
//! a 429 with `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (unix ms) when
//! it is empty. The worker protocol is not limited.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use stint_types::EnvId;

use crate::AppState;
use crate::auth::bearer;
use crate::error::ApiError;

/// How many API requests an environment may make: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRateLimit {
    /// Requests allowed at once, when the bucket is full.
    pub burst: NonZeroU32,
    /// Requests added back each second.
    pub per_second: NonZeroU32,
}

impl ApiRateLimit {
    /// Bursts of 2,000 requests, refilled at 1,000 a second. Trigger.dev's cloud allows 1,500 a
    /// minute; a self-hosted server belongs to its users, so the default only stops a runaway
    /// client from starving the other environments.
    pub const DEFAULT: ApiRateLimit =
        ApiRateLimit { burst: NonZeroU32::new(2_000).unwrap(), per_second: NonZeroU32::new(1_000).unwrap() };
}

type Buckets = RateLimiter<EnvId, DefaultKeyedStateStore<EnvId>, DefaultClock, StateInformationMiddleware>;

/// The buckets of every environment.
pub struct Limiter {
    limit: ApiRateLimit,
    buckets: Buckets,
    clock: DefaultClock,
}

impl Limiter {
    /// Full buckets for `limit`.
    pub fn new(limit: ApiRateLimit) -> Limiter {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Limiter { limit, buckets: RateLimiter::keyed(quota).with_middleware(), clock: DefaultClock::default() }
    }
}

/// Takes a token from the bucket of the request's environment; an empty bucket answers 429.
/// Requests without a known key pass, to be refused by authentication (as do requests whose key
/// cannot be looked up now: authentication reports why).
/// The environment found is handed on to the handler's [`crate::auth::Env`].
pub async fn limit(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let Some(limiter) = &state.limiter else { return next.run(request).await };
    let env = match bearer(request.headers()) {
        Some(key) => state.keys.environment(&state.engine, key).await.ok().flatten(),
        None => None,
    };
    let Some(env) = env else { return next.run(request).await };
    let total = limiter.limit.burst.get();
    match limiter.buckets.check_key(&env.id) {
        Ok(snapshot) => {
            request.extensions_mut().insert(env);
            let remaining = snapshot.remaining_burst_capacity();
            let refill =
                Duration::from_secs_f64(f64::from(total - remaining) / f64::from(limiter.limit.per_second.get()));
            let mut response = next.run(request).await;
            headers(response.headers_mut(), total, remaining, refill);
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(limiter.clock.now());
            let message = format!(
                "Rate limit exceeded: {total} requests at once, {} more each second, per environment; retry in {} ms",
                limiter.limit.per_second,
                wait.as_millis().max(1)
            );
            let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
            headers(response.headers_mut(), total, 0, wait);
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

/// The rate limit headers: the bucket's size, the tokens left, and when it is full again or the
/// next request is allowed (unix ms).
fn headers(headers: &mut HeaderMap, total: u32, remaining: u32, until: Duration) {
    let reset = (SystemTime::now() + until).duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    headers.insert("x-ratelimit-limit", HeaderValue::from(total));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    if let Ok(value) = HeaderValue::from_str(&reset.to_string()) {
        headers.insert("x-ratelimit-reset", value);
    }
}
