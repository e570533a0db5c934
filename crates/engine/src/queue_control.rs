//! The engine's queue controls: what the queues API reads and changes.

use stint_store::{EnvLimits, EnvironmentRow, RateLimit, StoreExt};
use stint_types::EnvId;

use crate::Error;
use crate::shell::Engine;
use crate::systems::limits::{self, EnvUsage};
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

    /// Puts `rate` in force on a queue of `env` instead of its declared rate limit.
    pub async fn override_queue_rate(
        &self,
        env: &EnvironmentRow,
        queue: QueueRef,
        rate: RateLimit,
    ) -> Result<QueueView, Error> {
        let env = env.clone();
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { queues::override_rate(tx, &env, &queue, rate, ctx.now, changes).await })
        })
        .await
    }

    /// Puts the declared rate limit (or none) of a queue of `env` back in force.
    pub async fn reset_queue_rate(&self, env: &EnvironmentRow, queue: QueueRef) -> Result<QueueView, Error> {
        let env = env.clone();
        self.write(move |tx, _, changes| Box::pin(async move { queues::reset_rate(tx, &env, &queue, changes).await }))
            .await
    }

    /// An environment's limits and how many of its runs hold a slot.
    pub async fn environment_limits(&self, env_id: &EnvId) -> Result<EnvUsage, Error> {
        let env_id = env_id.clone();
        self.store.read(move |tx| Box::pin(async move { limits::env_usage(tx, &env_id).await })).await
    }

    /// Sets an environment's concurrency limit, burst factor and pause.
    pub async fn set_environment_limits(&self, env_id: &EnvId, limits: EnvLimits) -> Result<EnvUsage, Error> {
        let env_id = env_id.clone();
        self.write(move |tx, _, changes| {
            Box::pin(async move { limits::set_env_limits(tx, &env_id, limits, changes).await })
        })
        .await
    }
}
