//! The conformance suite against PostgreSQL, each case on a schema of its own.

mod support;

use std::sync::Arc;

use stint_store::Store;
use stint_store_conformance::conformance_tests;

async fn fresh() -> Arc<dyn Store> {
    Arc::new(support::OnOwnSchema::open().await)
}

conformance_tests!(fresh());
