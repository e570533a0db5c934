//! [`TaskError`]: what a task returns when an attempt fails.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt;

use stint_protocol::types::TaskRunError;

/// The error of a failed attempt: a name, a message and a stack trace, reported to the server as
/// Trigger.dev's `BUILT_IN_ERROR`.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it, so `?` works in tasks the way
/// it does with `anyhow`. For that blanket conversion to exist, `TaskError` itself does not
/// implement `std::error::Error`.
///
/// A failed attempt is retried according to the task's [`Retry`](crate::Retry) settings, unless
/// the error says not to ([`TaskError::fatal`], [`TaskError::do_not_retry`]).
pub struct TaskError {
    name: String,
    message: String,
    stack_trace: String,
    skip_retrying: bool,
}

impl TaskError {
    /// An error named `Error` with this message; it is retried.
    pub fn new(message: impl Into<String>) -> TaskError {
        TaskError { name: "Error".into(), message: message.into(), stack_trace: String::new(), skip_retrying: false }
    }

    /// An error with this message that ends the run without further attempts.
    pub fn fatal(message: impl Into<String>) -> TaskError {
        TaskError::new(message).do_not_retry()
    }

    /// An error describing `error` and its chain of sources, for errors held as trait objects
    /// (`Box<dyn Error>`, or `&*e` for an `anyhow::Error`). The name is `Error` because the
    /// concrete type is not known.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> TaskError {
        TaskError::new(chain_message(error))
    }

    /// The same error with another name, usually the kind of failure (`"ValidationError"`).
    pub fn with_name(mut self, name: impl Into<String>) -> TaskError {
        self.name = name.into();
        self
    }

    /// The same error with a stack trace or other location text.
    pub fn with_stack_trace(mut self, stack_trace: impl Into<String>) -> TaskError {
        self.stack_trace = stack_trace.into();
        self
    }

    /// The same error, marked so the run ends without further attempts whatever its retry
    /// settings say.
    pub fn do_not_retry(mut self) -> TaskError {
        self.skip_retrying = true;
        self
    }

    /// The error's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The stack trace, empty when none was captured.
    pub fn stack_trace(&self) -> &str {
        &self.stack_trace
    }

    /// Whether the run ends without further attempts.
    pub fn is_fatal(&self) -> bool {
        self.skip_retrying
    }

    /// The error in the wire shape, and whether to skip retrying.
    pub(crate) fn into_wire(self) -> (TaskRunError, bool) {
        let error =
            TaskRunError::BuiltInError { name: self.name, message: self.message, stack_trace: self.stack_trace };
        (error, self.skip_retrying)
    }
}

impl<E> From<E> for TaskError
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> TaskError {
        // Capturing is cheap unless RUST_BACKTRACE or RUST_LIB_BACKTRACE asks for backtraces.
        let backtrace = Backtrace::capture();
        let stack_trace =
            if backtrace.status() == BacktraceStatus::Captured { backtrace.to_string() } else { String::new() };
        TaskError {
            name: short_type_name(std::any::type_name::<E>()),
            message: chain_message(&error),
            stack_trace,
            skip_retrying: false,
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("name", &self.name)
            .field("message", &self.message)
            .field("skip_retrying", &self.skip_retrying)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

/// The error's message followed by those of its sources, joined by `": "`.
fn chain_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The last path segment of a type name without generic arguments: `std::io::error::Error` gives
/// `Error`, `my::Wrapper<other::Thing>` gives `Wrapper`. Anything unusable gives `Error`.
fn short_type_name(full: &str) -> String {
    let without_generics = full.split('<').next().unwrap_or(full);
    let last = without_generics.rsplit("::").next().unwrap_or(without_generics).trim();
    if last.is_empty() || !last.chars().all(|c| c.is_alphanumeric() || c == '_') { "Error".into() } else { last.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("could not load config")]
    struct ConfigError {
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapper<T: std::fmt::Debug + 'static>(T);

    fn fails() -> Result<(), TaskError> {
        Err(ConfigError { source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file") })?;
        Ok(())
    }

    #[test]
    fn question_mark_converts_with_type_name_and_source_chain() {
        let error = fails().unwrap_err();
        assert_eq!(error.name(), "ConfigError");
        assert_eq!(error.message(), "could not load config: no such file");
        assert!(!error.is_fatal());
        let (wire, skip) = error.into_wire();
        assert!(!skip);
        assert!(matches!(wire, TaskRunError::BuiltInError { ref name, .. } if name == "ConfigError"));
    }

    #[test]
    fn generic_types_are_named_without_their_arguments() {
        assert_eq!(TaskError::from(Wrapper(1u8)).name(), "Wrapper");
        assert_eq!(short_type_name("std::io::error::Error"), "Error");
        assert_eq!(short_type_name("Plain"), "Plain");
        assert_eq!(short_type_name("&dyn core::error::Error"), "Error");
        assert_eq!(short_type_name(""), "Error");
    }

    #[test]
    fn constructors_set_name_and_retry_flag() {
        let error = TaskError::new("boom").with_name("Boom").with_stack_trace("at f");
        assert_eq!((error.name(), error.message(), error.stack_trace()), ("Boom", "boom", "at f"));
        assert!(!error.is_fatal());
        assert!(TaskError::fatal("stop").is_fatal());
        assert_eq!(TaskError::fatal("stop").to_string(), "Error: stop");
    }

    #[test]
    fn trait_objects_keep_their_chain() {
        let boxed: Box<dyn std::error::Error + Send + Sync> =
            Box::new(ConfigError { source: std::io::Error::other("denied") });
        let error = TaskError::from_error(&*boxed);
        assert_eq!(error.name(), "Error");
        assert_eq!(error.message(), "could not load config: denied");
    }
}
