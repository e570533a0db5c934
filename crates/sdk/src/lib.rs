//! Write Stint tasks in Rust and run them in a worker process.
