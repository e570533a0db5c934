//! Test helpers for Stint.
//!
//! - [`ManualClock`]: time that moves only when a test says so, for engine tests.
//! - [`process`]: the built `stint` and `hello-worker` binaries as child processes that tests
//!   start, kill (`SIGKILL`), stop (`SIGSTOP`) and restart on the same data directory.
//! - [`Api`]: a client of the public API for assertions.
//! - [`ledger`]: the record the example worker keeps of every execution, outside the system under
//!   test, to check "exactly once" and "at least once" claims.
//! - [`postgres`]: a fresh database for a test, or a PostgreSQL cluster of its own that it can
//!   stop and start.

mod api;
mod clock;
pub mod ledger;
pub mod postgres;
pub mod process;

pub use api::Api;
pub use clock::ManualClock;
