//! The engine's schedule methods: imperative schedules through the API, a run's schedule, and
//! (in `systems/schedules.rs`) declarative schedules kept in step with worker versions and the
//! firing of due schedules.

use stint_store::{EnvironmentRow, ScheduleRow, StoreExt};
use stint_types::{RunId, ScheduleId, Timestamp};

use crate::Error;
use crate::shell::{Engine, visible_run};
use crate::systems::schedules;

/// A schedule to make or change through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleParams {
    /// The task it triggers; the environment must know it.
    pub task_id: String,
    /// A 5-field cron expression.
    pub cron: String,
    /// An IANA time zone; `UTC` when `None`.
    pub timezone: Option<String>,
    /// The creator's id for it.
    pub external_id: Option<String>,
    /// A create with a key the environment has updates that schedule instead (Trigger.dev's
    /// `deduplicationKey`). Ignored by an update.
    pub dedup_key: Option<String>,
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleView {
    /// The schedule.
    pub schedule: ScheduleRow,
    /// Its expression in words.
    pub description: String,
}

impl Engine {
    /// Makes an imperative schedule in `env`, or updates the one its dedup key names. A bad
    /// expression, time zone or task is [`Error::Invalid`] naming the field.
    pub async fn create_schedule(&self, env: &EnvironmentRow, params: ScheduleParams) -> Result<ScheduleView, Error> {
        let env = env.clone();
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { schedules::create(tx, ctx, &env, params, changes).await })
        })
        .await
    }

    /// Changes an imperative schedule of `env`; a declarative one is changed by its task's code
    /// only ([`Error::Invalid`]).
    pub async fn update_schedule(
        &self,
        env: &EnvironmentRow,
        id: &ScheduleId,
        params: ScheduleParams,
    ) -> Result<ScheduleView, Error> {
        let (env, id) = (env.clone(), id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { schedules::update(tx, ctx, &env, &id, params, changes).await })
        })
        .await
    }

    /// A schedule of `env`; another environment's is not found.
    pub async fn schedule(&self, env: &EnvironmentRow, id: &ScheduleId) -> Result<ScheduleView, Error> {
        let (env, id) = (env.clone(), id.clone());
        self.store
            .read(move |tx| Box::pin(async move { schedules::visible(tx, &env, &id).await.map(schedules::view) }))
            .await
    }

    /// The schedules of `env` (of one task when given), page `page` (from 1) of `per_page`, and
    /// how many there are.
    pub async fn schedules(
        &self,
        env: &EnvironmentRow,
        task_id: Option<String>,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<ScheduleView>, u64), Error> {
        let env = env.clone();
        let offset = u64::from(page.max(1) - 1) * u64::from(per_page);
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    let rows = tx.schedule_list(&env.id, task_id.as_deref(), offset, per_page).await?;
                    let count = tx.schedule_count(&env.id, task_id.as_deref()).await?;
                    Ok::<_, Error>((rows.into_iter().map(schedules::view).collect(), count))
                })
            })
            .await
    }

    /// Deletes an imperative schedule of `env` and returns it; a run it made ahead of its time is
    /// withdrawn.
    pub async fn delete_schedule(&self, env: &EnvironmentRow, id: &ScheduleId) -> Result<ScheduleRow, Error> {
        let (env, id) = (env.clone(), id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { schedules::delete(tx, ctx, &env, &id, changes).await })
        })
        .await
    }

    /// Activates or deactivates a schedule of `env`.
    pub async fn set_schedule_active(
        &self,
        env: &EnvironmentRow,
        id: &ScheduleId,
        active: bool,
    ) -> Result<ScheduleView, Error> {
        let (env, id) = (env.clone(), id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { schedules::set_active(tx, ctx, &env, &id, active, changes).await })
        })
        .await
    }

    /// The schedule that fired a run of `env`, and the nominal time it fired at; `None` for a
    /// run no schedule made, or whose schedule was deleted since.
    pub async fn schedule_of_run(
        &self,
        env: &EnvironmentRow,
        run_id: &RunId,
    ) -> Result<Option<(ScheduleRow, Timestamp)>, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    visible_run(tx, &env, &run_id).await?;
                    let Some(fire) = tx.schedule_fire_of_run(&run_id).await? else { return Ok(None) };
                    Ok::<_, Error>(tx.schedule_get(&fire.schedule_id).await?.map(|row| (row, fire.fire_time)))
                })
            })
            .await
    }
}
