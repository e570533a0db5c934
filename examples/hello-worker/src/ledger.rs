//! An outside record of executions: with `STINT_LEDGER=<path>` set, every task appends a `start`
//! line when it begins and an `end` line when it returns (a task replayed after a suspension
//! starts again; an attempt that suspends does not end), and the `steps` task a `step:<name>`
//! line each time a step body runs, as JSON, to that file. Tests read it to
//! check which attempts ran, how often and in which process.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::json;
use stint_sdk::{TaskContext, TaskError};

/// The ledger file, or nothing when `STINT_LEDGER` is not set.
#[derive(Clone, Default)]
pub struct Ledger {
    file: Option<Arc<File>>,
}

/// A boxed task future, as `Ledger::around` returns.
pub type TaskFuture<O> = Pin<Box<dyn Future<Output = Result<O, TaskError>> + Send>>;

impl Ledger {
    /// Opens the file named by `STINT_LEDGER` for appending, creating it if needed.
    pub fn from_env() -> anyhow::Result<Ledger> {
        let Some(path) = std::env::var_os("STINT_LEDGER") else { return Ok(Ledger::default()) };
        // O_APPEND makes each write land at the end even with several workers appending.
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Ledger { file: Some(Arc::new(file)) })
    }

    /// Wraps a task function so each attempt records `start` and, if it returns, `end`.
    pub fn around<P, O, Fut>(
        &self,
        run: impl Fn(TaskContext, P) -> Fut + Send + Sync + 'static,
    ) -> impl Fn(TaskContext, P) -> TaskFuture<O> + Send + Sync + 'static
    where
        P: Send + 'static,
        O: 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        let ledger = self.clone();
        move |ctx: TaskContext, payload: P| {
            let ledger = ledger.clone();
            let running = run(ctx.clone(), payload);
            Box::pin(async move {
                ledger.record(&ctx, "start");
                let result = running.await;
                ledger.record(&ctx, "end");
                result
            })
        }
    }

    /// Appends one event line with a single write, so lines of concurrent attempts never mix.
    pub fn record(&self, ctx: &TaskContext, event: &str) {
        let Some(file) = &self.file else { return };
        let line = json!({
            "run_id": ctx.run_id(),
            "attempt": ctx.attempt(),
            "task": ctx.task_id(),
            "pid": std::process::id(),
            "event": event,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        if let Err(error) = (&**file).write_all(&bytes) {
            tracing::error!(%error, "could not write to the ledger");
        }
    }
}
