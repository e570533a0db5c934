//! Errors as HTTP responses: a status and `{"error": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stint_protocol::ErrorBody;

/// An error answer. Every failure a client can cause is a 4xx with a message saying what is
/// wrong; a database that cannot serve is a 503 with `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, body: ErrorBody { error: message.into(), code: None } }
    }

    /// 400: the request cannot be read.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: the credential is missing or wrong.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "Invalid or Missing API key")
    }

    /// 404: nothing with this id in the caller's environment.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 422: the request is readable but not acceptable.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 413: the body, or a part of it, is over its limit.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// The same error with its message put after `prefix`, naming where it was found (the item of
    /// a batch, for example).
    pub fn prefixed(mut self, prefix: &str) -> ApiError {
        self.body.error = format!("{prefix}: {}", self.body.error);
        self
    }

    /// Adds a stable code to the body.
    pub fn with_code(mut self, code: &str) -> ApiError {
        self.body.code = Some(code.to_string());
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<stint_engine::Error> for ApiError {
    fn from(error: stint_engine::Error) -> ApiError {
        use stint_engine::Error as E;
        use stint_store::Error as S;
        match error {
            E::NotFound(message) => ApiError::not_found(message),
            E::Invalid(message) => ApiError::invalid(message),
            stale @ E::Stale { .. } => {
                ApiError::new(StatusCode::CONFLICT, stale.to_string()).with_code("STALE_SNAPSHOT")
            }
            E::Store(S::Unavailable(message)) => {
                tracing::warn!(%message, "database unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The database is unavailable; retry shortly")
            }
            // Two requests made the same thing at once and this one lost; sent again, it finds the
            // other's.
            E::Store(S::Duplicate(message)) => {
                tracing::info!(%message, "a concurrent request made the same thing first");
                ApiError::new(StatusCode::CONFLICT, "A concurrent request made the same thing first; retry")
                    .with_code("CONFLICT")
            }
            E::Store(S::Closed) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The server is shutting down"),
            E::Store(other) => {
                tracing::error!(error = %other, "store error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if retry {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
