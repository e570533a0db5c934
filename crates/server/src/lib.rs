//! Stint server.
