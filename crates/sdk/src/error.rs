//! The SDK's [`Error`]: why a worker could not be configured or could not keep running.

/// Why a worker could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required environment variable is not set.
    #[error("{name} is not set: {hint}")]
    MissingEnv {
        /// The variable.
        name: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// An environment variable has a value the worker cannot use.
    #[error("{name}={value:?} is invalid: {reason}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The worker's configuration cannot work, for example two tasks with one identifier.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A request could not be made as asked: a payload that is not JSON, an option the SDK
    /// cannot send, a trigger from a task of a worker pool.
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached for a call, even after retries.
    #[error("could not reach the server for {call}: {reason}")]
    Unreachable {
        /// The call, such as `trigger`.
        call: &'static str,
        /// Why, as the HTTP client says it.
        reason: String,
    },
    /// The server refused a request in a way retrying cannot fix (a wrong key, an invalid
    /// registration, an unknown run), or kept answering that it cannot serve it now.
    #[error("the server refused {call} with status {status}: {message}")]
    Rejected {
        /// The call, such as `register`.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
}
