//! The engine's batch methods: making batches, adding their items, the legacy one-request batch
//! trigger, and reading a batch.

use stint_store::{EnvironmentRow, StoreExt};
use stint_types::BatchId;

use crate::Error;
use crate::shell::Engine;
use crate::systems::batch::{self, BatchCreated, BatchItem, BatchParams, BatchTriggered, BatchView, ItemsAdded};
use crate::systems::trigger::TriggerParams;

impl Engine {
    /// Makes a batch in `env`, or returns the batch its idempotency key names.
    pub async fn create_batch(&self, env: &EnvironmentRow, params: BatchParams) -> Result<BatchCreated, Error> {
        let env = env.clone();
        self.write(move |tx, ctx, _| Box::pin(async move { batch::create(tx, &ctx.ids, ctx.now, &env, params).await }))
            .await
    }

    /// Adds items to a batch of `env`, all in one transaction: the runs of new items are committed
    /// when this returns; items whose index arrived before change nothing.
    pub async fn add_batch_items(
        &self,
        env: &EnvironmentRow,
        batch_id: &BatchId,
        items: Vec<BatchItem>,
    ) -> Result<ItemsAdded, Error> {
        let (env, batch_id) = (env.clone(), batch_id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { batch::add_items(tx, &ctx.ids, ctx.now, &env, &batch_id, items, changes).await })
        })
        .await
    }

    /// Makes a sealed batch with a run for each of `items`, all in one transaction, or returns
    /// the batch `idempotency_key` names.
    pub async fn trigger_batch(
        &self,
        env: &EnvironmentRow,
        items: Vec<TriggerParams>,
        idempotency_key: Option<String>,
    ) -> Result<BatchTriggered, Error> {
        let env = env.clone();
        self.write(move |tx, ctx, changes| {
            Box::pin(
                async move { batch::trigger_all(tx, &ctx.ids, ctx.now, &env, items, idempotency_key, changes).await },
            )
        })
        .await
    }

    /// A batch of `env` with its items; another environment's batch is not found, as a missing
    /// one.
    pub async fn batch(&self, env: &EnvironmentRow, batch_id: &BatchId) -> Result<BatchView, Error> {
        let (env, batch_id) = (env.clone(), batch_id.clone());
        self.store.read(move |tx| Box::pin(async move { batch::view(tx, &env, &batch_id).await })).await
    }
}
