//! Schedules, as Trigger.dev has them: a cron expression in a time zone triggering a task in an
//! environment. Imperative ones are made through the API; declarative ones are declared by tasks
//! and kept in step with the environment's current version.
//!
//! A schedule keeps its chain of nominal fire times (`next_run`, `last_run`). The maintenance
//! holder fires the due ones: one run per schedule and nominal time (`schedule_fires` refuses a
//! second), and after downtime only the latest missed time fires — one catch-up run, never a
//! burst. An inactive schedule moves along its chain and triggers nothing.
//!
//! As Trigger.dev does, a run is made ahead of its time, at a point in the [`SPREAD_MS`] before
//! it fixed by the schedule and the time (`due_at`), and waits in its queue, scored at its time,
//! until then: the runs of thousands of schedules of one minute are made over the half-minute
//! before it rather than all at once on it. A run made ahead is withdrawn (cancelled, its fire
//! forgotten) if its schedule is deactivated, changed or deleted before its time.

use std::collections::HashMap;

use serde_json::{Value, json};
use stint_store::{EnvironmentRow, NewRun, ScheduleFireRow, ScheduleRow, Tx};
use stint_types::cron::Cron;
use stint_types::{EnvId, ExecutionStatus, RunStatus, ScheduleId, Timestamp};

use crate::Error;
use crate::ids::Ids;
use crate::schedules::{ScheduleParams, ScheduleView};
use crate::shell::Ctx;
use crate::state::{Changes, ended};
use crate::systems::attempt::cancelled_error;
use crate::systems::trigger::{self, Lineage, Places, TriggerParams};
use crate::systems::workers::{DeclaredSchedule, TaskSpec};

/// Made through the API.
pub(crate) const IMPERATIVE: &str = "IMPERATIVE";
/// Declared by a task.
pub(crate) const DECLARATIVE: &str = "DECLARATIVE";
/// Upcoming times a fired run's payload lists (Trigger.dev's).
const UPCOMING: usize = 10;
/// How long before its time a schedule's run may be made (Trigger.dev spreads its schedule jobs
/// over the same 30 s); less than the shortest interval of a 5-field expression, a minute.
const SPREAD_MS: u64 = 30_000;
/// How long before its time a schedule's run is made at the latest: due times are looked at
/// [`GRAIN_MS`] at a time, and a run must still be made ahead.
const AHEAD_MS: u64 = 1_000;
/// The grain of the due times the maintenance holder wakes for: schedules due within one grain are
/// fired by one pass, not each by its own.
const GRAIN_MS: i64 = 100;

/// When the run of `next_run` is made: a point from [`SPREAD_MS`] to [`AHEAD_MS`] before it that
/// depends only on the schedule and the time (FNV-1a), so every node and every pass agrees on it.
fn due_at(id: &ScheduleId, next_run: Option<Timestamp>) -> Option<Timestamp> {
    next_run.map(|at| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in id.as_str().bytes().chain(at.millis().to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let ahead = AHEAD_MS + hash % (SPREAD_MS - AHEAD_MS + 1);
        at.plus_millis(-i64::try_from(ahead).unwrap_or(0))
    })
}

/// The time the maintenance holder looks at schedules due at `at`: the end of its
/// [`GRAIN_MS`].
pub(crate) fn wake_for(at: Timestamp) -> Timestamp {
    Timestamp((at.millis() + GRAIN_MS - 1).div_euclid(GRAIN_MS) * GRAIN_MS)
}

/// Sets a schedule's next nominal time and when it comes due: an active one ahead of the time, to
/// make its run; an inactive one at the time itself, only to move along its chain.
fn set_next(row: &mut ScheduleRow, next_run: Option<Timestamp>) {
    row.next_run = next_run;
    row.due_at = if row.active { due_at(&row.id, next_run) } else { next_run };
}

/// Withdraws the run a schedule made ahead of its time, if that time has not come: after a
/// deactivation, a new expression or a deletion it must not start. The run is cancelled while
/// still queued, and its fire forgotten so the time can fire again. Returns the time withdrawn.
async fn withdraw(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    row: &ScheduleRow,
    changes: &mut Changes,
) -> Result<Option<Timestamp>, Error> {
    let Some(at) = row.last_run.filter(|at| *at > now) else { return Ok(None) };
    let Some(fire) = tx.schedule_fire_at(&row.id, at).await? else { return Ok(None) };
    if let Some(run) = tx.run_get(&fire.run_id).await?
        && run.execution_status == ExecutionStatus::Queued
    {
        let mut next = ended(&run, ids, now, RunStatus::Canceled);
        next.error = Some(cancelled_error());
        changes.apply(tx, &run, &next, "Run was withdrawn: its schedule changed before its time").await?;
    }
    tx.schedule_fire_delete(&row.id, at).await?;
    Ok(Some(at))
}

/// The expression read in its time zone; a bad one is [`Error::Invalid`] naming the field.
pub(crate) fn cron_of(expression: &str, timezone: Option<&str>) -> Result<Cron, Error> {
    Cron::parse(expression, timezone).map_err(|e| Error::Invalid(e.to_string()))
}

/// A schedule with its description.
pub(crate) fn view(row: ScheduleRow) -> ScheduleView {
    let description = Cron::parse(&row.cron, Some(&row.timezone)).map_or_else(|_| row.cron.clone(), |c| c.describe());
    ScheduleView { schedule: row, description }
}

/// A schedule of `env`; another environment's is not found.
pub(crate) async fn visible(tx: &mut dyn Tx, env: &EnvironmentRow, id: &ScheduleId) -> Result<ScheduleRow, Error> {
    match tx.schedule_get(id).await? {
        Some(row) if row.env_id == env.id => Ok(row),
        _ => Err(Error::NotFound(format!("Schedule {id} not found"))),
    }
}

/// Makes an imperative schedule, or updates the one its dedup key names.
pub(crate) async fn create(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    env: &EnvironmentRow,
    params: ScheduleParams,
    changes: &mut Changes,
) -> Result<ScheduleView, Error> {
    let cron = cron_of(&params.cron, params.timezone.as_deref())?;
    check_task(tx, env, &params.task_id).await?;
    if let Some(key) = &params.dedup_key
        && let Some(existing) = tx.schedule_by_dedup_key(&env.id, key).await?
    {
        return change(tx, &ctx.ids, ctx.now, existing, params, &cron, changes).await;
    }
    let mut row = ScheduleRow {
        id: ctx.ids.schedule(ctx.now),
        env_id: env.id.clone(),
        kind: IMPERATIVE.into(),
        task_id: params.task_id,
        cron: params.cron,
        timezone: cron.timezone().to_string(),
        external_id: params.external_id,
        dedup_key: params.dedup_key,
        active: true,
        next_run: None,
        due_at: None,
        last_run: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    set_next(&mut row, cron.next_after(ctx.now));
    tx.schedule_insert(&row).await?;
    Ok(view(row))
}

/// Changes an imperative schedule.
pub(crate) async fn update(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    env: &EnvironmentRow,
    id: &ScheduleId,
    params: ScheduleParams,
    changes: &mut Changes,
) -> Result<ScheduleView, Error> {
    let existing = imperative(tx, env, id).await?;
    let cron = cron_of(&params.cron, params.timezone.as_deref())?;
    check_task(tx, env, &params.task_id).await?;
    let params = ScheduleParams { dedup_key: existing.dedup_key.clone(), ..params };
    change(tx, &ctx.ids, ctx.now, existing, params, &cron, changes).await
}

/// Writes new settings over a schedule; a new expression or time zone restarts its chain from
/// now. A run made ahead for a time still to come is withdrawn when the expression, zone or task
/// changes; with only the task changed, that time is made again for the new task.
async fn change(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    mut row: ScheduleRow,
    params: ScheduleParams,
    cron: &Cron,
    changes: &mut Changes,
) -> Result<ScheduleView, Error> {
    let retimed = row.cron != params.cron || row.timezone != cron.timezone();
    let withdrawn =
        if retimed || row.task_id != params.task_id { withdraw(tx, ids, now, &row, changes).await? } else { None };
    row.task_id = params.task_id;
    row.cron = params.cron;
    row.timezone = cron.timezone().to_string();
    row.external_id = params.external_id;
    if retimed {
        set_next(&mut row, cron.next_after(now));
    } else if withdrawn.is_some() {
        set_next(&mut row, withdrawn);
    }
    row.updated_at = now;
    tx.schedule_update(&row).await?;
    Ok(view(row))
}

/// A schedule of `env` the API may change: declarative ones are changed by their task's code.
pub(crate) async fn imperative(tx: &mut dyn Tx, env: &EnvironmentRow, id: &ScheduleId) -> Result<ScheduleRow, Error> {
    let row = visible(tx, env, id).await?;
    if row.kind == DECLARATIVE {
        return Err(Error::Invalid(format!(
            "Schedule {id} is declared by the code of task \"{}\": change or remove it there",
            row.task_id
        )));
    }
    Ok(row)
}

/// Activates or deactivates a schedule; its chain goes on either way.
pub(crate) async fn set_active(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    env: &EnvironmentRow,
    id: &ScheduleId,
    active: bool,
    changes: &mut Changes,
) -> Result<ScheduleView, Error> {
    let mut row = visible(tx, env, id).await?;
    if row.active != active {
        // A run made ahead is withdrawn, and its time is next again: inactive, it passes without
        // a run; activated again in time, it fires after all.
        let withdrawn = if active { None } else { withdraw(tx, &ctx.ids, ctx.now, &row, changes).await? };
        row.active = active;
        let next = withdrawn.or(row.next_run);
        set_next(&mut row, next);
        row.updated_at = ctx.now;
        tx.schedule_update(&row).await?;
    }
    Ok(view(row))
}

async fn check_task(tx: &mut dyn Tx, env: &EnvironmentRow, task_id: &str) -> Result<(), Error> {
    if tx.task_get(&env.id, task_id).await?.is_none() {
        return Err(Error::Invalid(format!(
            "task: no task \"{task_id}\" in this environment; a worker must register it first"
        )));
    }
    Ok(())
}

/// Checks a task's declared schedule when its worker registers.
pub(crate) fn check_declared(task: &TaskSpec) -> Result<(), Error> {
    if let Some(schedule) = &task.schedule {
        cron_of(&schedule.cron, schedule.timezone.as_deref())
            .map_err(|e| Error::Invalid(format!("task '{}': schedule {e}", task.id)))?;
    }
    Ok(())
}

/// Makes the environment's declarative schedules those `tasks` declare for it: new ones made,
/// changed ones changed (a new expression or zone restarts the chain), and those of tasks that
/// no longer declare one removed. Called when the environment's current version registers.
pub(crate) async fn sync_declared(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    tasks: &[TaskSpec],
    changes: &mut Changes,
) -> Result<(), Error> {
    let wanted: HashMap<&str, &DeclaredSchedule> = tasks
        .iter()
        .filter_map(|task| task.schedule.as_ref().map(|s| (task.id.as_str(), s)))
        .filter(|(_, s)| s.environments.is_empty() || s.environments.iter().any(|e| e == env.kind.slug()))
        .collect();
    let mut existing: HashMap<String, ScheduleRow> =
        tx.schedule_declarative(&env.id).await?.into_iter().map(|row| (row.task_id.clone(), row)).collect();
    for (task_id, declared) in &wanted {
        let cron = cron_of(&declared.cron, declared.timezone.as_deref())?;
        let params = ScheduleParams {
            task_id: (*task_id).to_string(),
            cron: declared.cron.clone(),
            timezone: declared.timezone.clone(),
            external_id: None,
            dedup_key: None,
        };
        match existing.remove(*task_id) {
            Some(row) if row.cron == declared.cron && row.timezone == cron.timezone() => {}
            Some(row) => {
                change(tx, ids, now, row, params, &cron, changes).await?;
            }
            None => {
                let mut row = ScheduleRow {
                    id: ids.schedule(now),
                    env_id: env.id.clone(),
                    kind: DECLARATIVE.into(),
                    task_id: params.task_id,
                    cron: params.cron,
                    timezone: cron.timezone().to_string(),
                    external_id: None,
                    dedup_key: None,
                    active: true,
                    next_run: None,
                    due_at: None,
                    last_run: None,
                    created_at: now,
                    updated_at: now,
                };
                set_next(&mut row, cron.next_after(now));
                tx.schedule_insert(&row).await?;
            }
        }
    }
    for gone in existing.into_values() {
        remove(tx, ids, now, &gone, changes).await?;
    }
    Ok(())
}

/// Deletes an imperative schedule of `env`, withdrawing a run it made ahead; returns it.
pub(crate) async fn delete(
    tx: &mut dyn Tx,
    ctx: &Ctx,
    env: &EnvironmentRow,
    id: &ScheduleId,
    changes: &mut Changes,
) -> Result<ScheduleRow, Error> {
    let row = imperative(tx, env, id).await?;
    remove(tx, &ctx.ids, ctx.now, &row, changes).await?;
    Ok(row)
}

async fn remove(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    row: &ScheduleRow,
    changes: &mut Changes,
) -> Result<(), Error> {
    withdraw(tx, ids, now, row, changes).await?;
    tx.schedule_delete(&row.id).await?;
    Ok(())
}

/// Fires up to `limit` due schedules: each at the latest of its nominal times that has come (one
/// catch-up run after downtime), or at its next one when that is still to come (a run made
/// ahead), an active one triggering its task, and moves each to its next time after that. A
/// schedule another writer moved on first is left to it, and a time that fired already (its chain
/// set back by a stale write) moves on without a run. The runs are made together, as a batch's
/// are. Returns how many schedules were handled.
pub(crate) async fn fire_due(tx: &mut dyn Tx, ctx: &Ctx, limit: u32, changes: &mut Changes) -> Result<usize, Error> {
    let due = tx.schedule_due(ctx.now, limit).await?;
    // Many schedules share an expression, a zone and a due time: each is worked out once.
    let mut crons: HashMap<(String, String), Option<Cron>> = HashMap::new();
    let mut times: HashMap<(String, String, Timestamp), (Timestamp, Option<Timestamp>)> = HashMap::new();
    let mut firing = Firing::default();
    for row in &due {
        let Some(nominal) = row.next_run else { continue };
        let cron = crons
            .entry((row.cron.clone(), row.timezone.clone()))
            .or_insert_with(|| Cron::parse(&row.cron, Some(&row.timezone)).ok());
        let mut moved = ScheduleRow { updated_at: ctx.now, ..row.clone() };
        let Some(cron) = cron else {
            tracing::warn!(schedule = %row.id, cron = %row.cron, "a stored schedule no longer parses; stopped");
            set_next(&mut moved, None);
            tx.schedule_advance(nominal, &moved).await?;
            continue;
        };
        let (fire, next) = *times.entry((row.cron.clone(), row.timezone.clone(), nominal)).or_insert_with(|| {
            let fire = cron.latest_at_or_before(nominal, ctx.now).unwrap_or(nominal);
            (fire, cron.next_after(fire.max(ctx.now)))
        });
        set_next(&mut moved, next);
        if row.active {
            moved.last_run = Some(fire);
        }
        if !tx.schedule_advance(nominal, &moved).await? {
            continue;
        }
        if row.active && tx.schedule_fire_at(&row.id, fire).await?.is_none() {
            firing.add(tx, ctx, row, cron, fire).await?;
        }
    }
    firing.commit(tx, changes).await?;
    Ok(due.len())
}

/// The runs one pass fires, made together at its end.
#[derive(Default)]
struct Firing {
    /// The environments fired in, with their tasks and queues; `None` for one that is gone.
    envs: HashMap<EnvId, Option<(EnvironmentRow, Places)>>,
    /// The upcoming times of an expression in a zone after a fire time.
    upcoming: HashMap<(String, String, Timestamp), Vec<String>>,
    runs: Vec<NewRun>,
    fires: Vec<ScheduleFireRow>,
}

impl Firing {
    /// Makes the run of a schedule's fire time, to be inserted by [`Firing::commit`].
    async fn add(
        &mut self,
        tx: &mut dyn Tx,
        ctx: &Ctx,
        row: &ScheduleRow,
        cron: &Cron,
        fire: Timestamp,
    ) -> Result<(), Error> {
        if !self.envs.contains_key(&row.env_id) {
            let env = tx.environment_get(&row.env_id).await?;
            self.envs.insert(row.env_id.clone(), env.map(|env| (env, Places::default())));
        }
        let Some(Some((env, places))) = self.envs.get_mut(&row.env_id) else { return Ok(()) };
        if places.task(tx, env, &row.task_id).await?.is_none() {
            tracing::warn!(schedule = %row.id, task = %row.task_id, "the scheduled task is not registered; skipped");
            return Ok(());
        }
        let upcoming = self
            .upcoming
            .entry((row.cron.clone(), row.timezone.clone(), fire))
            .or_insert_with(|| cron.upcoming(fire, UPCOMING).into_iter().map(|t| t.to_rfc3339()).collect());
        let params = TriggerParams::new(&row.task_id, payload(row, upcoming, fire).to_string());
        let (task, queue) = places.queue(tx, &ctx.ids, ctx.now, env, &params).await?;
        // Made as of its time, so it waits in its queue until then.
        let at = fire.max(ctx.now);
        let made = trigger::new_run(&ctx.ids, at, env, params, task, queue, Lineage::default(), true);
        self.fires.push(ScheduleFireRow { schedule_id: row.id.clone(), fire_time: fire, run_id: made.run.id.clone() });
        self.runs.push(made);
        Ok(())
    }

    /// Inserts the runs and records each fire; a fire recorded meanwhile fails the pass, leaving
    /// no run of it.
    async fn commit(self, tx: &mut dyn Tx, changes: &mut Changes) -> Result<(), Error> {
        if self.runs.is_empty() {
            return Ok(());
        }
        let added = tx.run_insert_many(&self.runs).await?;
        if let Some((made, _)) = self.runs.iter().zip(&added).find(|(_, added)| !**added) {
            return Err(stint_store::Error::Duplicate(format!("scheduled run {} refused", made.run.id)).into());
        }
        for fire in &self.fires {
            tx.schedule_fire_insert(fire).await?;
        }
        changes.wake.extend(self.runs.iter().map(|made| made.run.env_id.clone()));
        Ok(())
    }
}

/// The payload of a scheduled run, in Trigger.dev's shape.
fn payload(row: &ScheduleRow, upcoming: &[String], fire: Timestamp) -> Value {
    let mut payload = json!({
        "scheduleId": row.id.to_string(),
        "type": row.kind,
        "timestamp": fire.to_rfc3339(),
        "timezone": row.timezone,
        "upcoming": upcoming,
    });
    if let Some(last) = row.last_run {
        payload["lastTimestamp"] = json!(last.to_rfc3339());
    }
    if let Some(external) = &row.external_id {
        payload["externalId"] = json!(external);
    }
    payload
}
