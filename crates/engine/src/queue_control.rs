//! The engine's queue controls: what the queues API reads and changes.

use stint_store::{EnvironmentRow, StoreExt};

use crate::Error;
use crate::shell::Engine;
use crate::systems::queues::{self, QueueRef, QueueView};

impl Engine {
    /// A page (from 1) of `env`'s queues by name, and how many it has in all.
    pub async fn queues(&self, env: &EnvironmentRow, page: u32, per_page: u32) -> Result<(Vec<QueueView>, u64), Error> {
        let env = env.clone();
        self.store.read(move |tx| Box::pin(async move { queues::list(tx, &env, page, per_page).await })).await
    }

    /// A queue of `env`.
    pub async fn queue(&self, env: &EnvironmentRow, queue: QueueRef) -> Result<QueueView, Error> {
        let env = env.clone();
        self.store.read(move |tx| Box::pin(async move { queues::get(tx, &env, &queue).await })).await
    }

    /// Pauses a queue of `env` (it starts no run until resumed) or resumes it.
    pub async fn pause_queue(&self, env: &EnvironmentRow, queue: QueueRef, paused: bool) -> Result<QueueView, Error> {
        let env = env.clone();
        self.write(move |tx, _, changes| {
            Box::pin(async move { queues::set_paused(tx, &env, &queue, paused, changes).await })
        })
        .await
    }

    /// Puts `limit` in force on a queue of `env` instead of its declared limit.
    pub async fn override_queue_limit(
        &self,
        env: &EnvironmentRow,
        queue: QueueRef,
        limit: u32,
    ) -> Result<QueueView, Error> {
        let env = env.clone();
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { queues::override_limit(tx, &env, &queue, limit, ctx.now, changes).await })
        })
        .await
    }

    /// Puts the declared limit of a queue of `env` back in force.
    pub async fn reset_queue_limit(&self, env: &EnvironmentRow, queue: QueueRef) -> Result<QueueView, Error> {
        let env = env.clone();
        self.write(move |tx, _, changes| Box::pin(async move { queues::reset_limit(tx, &env, &queue, changes).await }))
            .await
    }
}
