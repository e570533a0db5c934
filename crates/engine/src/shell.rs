//! The engine's async shell: runs each system in a store transaction, then performs its effects
//! (waking waiting workers) once the transaction has committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use stint_store::{
    ApiKeyRow, BoxFuture, EnvironmentRow, RunListParams, RunRow, Signal, SnapshotRow, Store, StoreExt, Tx, WorkerRow,
};
use stint_types::{Clock, RunId, SnapshotId, Timestamp, WorkerId};

use crate::Error;
use crate::config::Config;
use crate::ids::Ids;
use crate::local::Local;
use crate::state::Changes;
use crate::systems::attempt::{self, Completed, Completion, HeartbeatVerdict, Outcome};
use crate::systems::cancel::{self, Cancelled};
use crate::systems::dequeue::{self, Dequeued};
use crate::systems::lanes::Rotation;
use crate::systems::pool::{self, EnvRotation, PoolDequeued};
use crate::systems::schedules;
use crate::systems::stall;
use crate::systems::tenancy::{self, NewKey};
use crate::systems::timing::{self, Due};
use crate::systems::trigger::{self, Delay, Idle, TriggerParams, Triggered};
use crate::systems::versions;
use crate::systems::waitpoints;
use crate::systems::workers::{self, TaskSpec};

/// Runs handled per stall sweep transaction.
const SWEEP_BATCH: u32 = 200;
/// How often expired request keys are looked for.
const FORGET_EVERY: Duration = Duration::from_secs(60);
/// The lease of the node doing maintenance.
const MAINTENANCE_LEASE: &str = "maintenance";
/// Longest a waiting dequeue goes without looking at the queues again.
const RECHECK: Duration = Duration::from_secs(2);
/// Longest a dequeue taken by a trigger waits for the trigger to deliver its run.
const HANDOFF_GRACE: Duration = Duration::from_secs(5);

/// What a system's job is handed besides the transaction.
pub(crate) struct Ctx {
    pub(crate) ids: Arc<Ids>,
    pub(crate) now: Timestamp,
    pub(crate) config: Config,
}

/// The run engine.
pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ids: Arc<Ids>,
    config: Config,
    workers: Mutex<HashMap<WorkerId, WorkerRow>>,
    pub(crate) local: Arc<Local>,
    rotation: Arc<Rotation>,
    env_rotation: EnvRotation,
    stopping: AtomicBool,
    /// When expired request keys are next looked for.
    forget_after: Mutex<Option<Timestamp>>,
}

/// What a maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Stalled runs handled.
    pub stalled: usize,
    /// Delayed runs queued and runs expired.
    pub due: Due,
}

impl Engine {
    /// An engine over `store`, reading time from `clock` and making ids with `ids`. When the
    /// store carries signals between nodes, the engine listens to them (on the current tokio
    /// runtime) for as long as it lives.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ids: Ids, config: Config) -> Engine {
        let local = Arc::new(Local::default());
        if let (Some(mut signals), Ok(runtime)) = (store.subscribe(), tokio::runtime::Handle::try_current()) {
            let listening = Arc::downgrade(&local);
            runtime.spawn(async move {
                while let Some(signal) = signals.next().await {
                    let Some(local) = listening.upgrade() else { return };
                    local.apply(&signal);
                }
            });
        }
        Engine {
            store,
            clock,
            ids: Arc::new(ids),
            config,
            workers: Mutex::default(),
            local,
            rotation: Arc::default(),
            env_rotation: EnvRotation::default(),
            stopping: AtomicBool::new(false),
            forget_after: Mutex::new(None),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Ends every dequeue that is waiting for work, now and from now on, so a server can shut
    /// down without waiting out long polls. Work in progress is unaffected.
    pub fn stop_waiting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.local.notifier.wake_all();
    }

    /// The engine's current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn ctx(&self) -> Ctx {
        Ctx { ids: self.ids.clone(), now: self.clock.now(), config: self.config }
    }

    /// Runs a system in a write transaction, then wakes the environments it made work for.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, Error>
    where
        F: for<'t> FnOnce(&'t mut dyn Tx, &'t Ctx, &'t mut Changes) -> BoxFuture<'t, Result<R, Error>> + Send + 'static,
        R: Send + 'static,
    {
        let ctx = self.ctx();
        let (result, changes) = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let mut changes = Changes::default();
                    let result = f(tx, &ctx, &mut changes).await?;
                    waitpoints::settle(tx, &ctx, &mut changes).await?;
                    changes.flush(tx).await?;
                    for env in &changes.wake {
                        tx.signal(&Signal::Work(env.clone())).await?;
                    }
                    for run in &changes.continued {
                        tx.signal(&Signal::Continued(run.clone())).await?;
                    }
                    Ok::<_, Error>((result, changes))
                })
            })
            .await?;
        for env in &changes.wake {
            self.local.notifier.wake(env);
        }
        for (ticket, run) in changes.handoffs {
            self.local.handoffs.deliver(ticket, run);
        }
        for run in &changes.continued {
            self.local.runs.wake(run);
        }
        Ok(result)
    }

    /// Runs a system that may hand a new run to a waiting worker: tickets it takes are delivered
    /// after the commit, or closed when the transaction fails, so their dequeues look again.
    async fn write_with_idle<R, F>(&self, env: &EnvironmentRow, f: F) -> Result<R, Error>
    where
        F: for<'t> FnOnce(&'t mut dyn Tx, &'t Ctx, &'t mut Changes, Idle<'t>) -> BoxFuture<'t, Result<R, Error>>
            + Send
            + 'static,
        R: Send + 'static,
    {
        let taken: Arc<Mutex<Vec<u64>>> = Arc::default();
        let (local, env_id, recorded) = (self.local.clone(), env.id.clone(), taken.clone());
        let result = self
            .write(move |tx, ctx, changes| {
                Box::pin(async move {
                    let mut idle = move |task: &str| {
                        let found = local.handoffs.take(&env_id, task);
                        if let Some((ticket, _)) = &found {
                            recorded.lock().push(*ticket);
                        }
                        found
                    };
                    f(tx, ctx, changes, &mut idle).await
                })
            })
            .await;
        for ticket in taken.lock().drain(..) {
            self.local.handoffs.release(ticket);
        }
        result
    }

    /// Creates the default organization, project and environments with `keys`, unless an
    /// organization exists. Returns whether it created them.
    pub async fn bootstrap(&self, keys: Vec<NewKey>) -> Result<bool, Error> {
        self.write(move |tx, ctx, _| Box::pin(async move { tenancy::bootstrap(tx, &ctx.ids, ctx.now, &keys).await }))
            .await
    }

    /// Every environment.
    pub async fn environments(&self) -> Result<Vec<EnvironmentRow>, Error> {
        self.store.read(|tx| Box::pin(async move { Ok::<_, Error>(tx.environment_list().await?) })).await
    }

    /// Every secret key.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, Error> {
        self.store.read(|tx| Box::pin(async move { Ok::<_, Error>(tx.api_key_list().await?) })).await
    }

    /// Creates a run and queues it, or returns the run its idempotency key names. The run is
    /// committed when this returns.
    pub async fn trigger(&self, env: &EnvironmentRow, params: TriggerParams) -> Result<Triggered, Error> {
        let env_row = env.clone();
        self.write_with_idle(env, move |tx, ctx, changes, idle| {
            Box::pin(async move {
                trigger::trigger(tx, &ctx.ids, ctx.now, &ctx.config, &env_row, params, idle, changes).await
            })
        })
        .await
    }

    /// Creates a new run with the task and payload of `run_id`, locked to the environment's current
    /// version.
    pub async fn replay(&self, env: &EnvironmentRow, run_id: &RunId) -> Result<RunRow, Error> {
        let (env_row, run_id) = (env.clone(), run_id.clone());
        self.write_with_idle(env, move |tx, ctx, changes, idle| {
            Box::pin(async move {
                let original = visible_run(tx, &env_row, &run_id).await?;
                let current = versions::current(tx, &env_row.id).await?;
                let params = trigger::replay_params(&original, current);
                let triggered = trigger::trigger(tx, &ctx.ids, ctx.now, &ctx.config, &env_row, params, idle, changes);
                Ok(triggered.await?.run)
            })
        })
        .await
    }

    /// Moves the due time of a delayed run of `env`.
    pub async fn reschedule(&self, env: &EnvironmentRow, run_id: &RunId, delay: Delay) -> Result<RunRow, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                let run = visible_run(tx, &env, &run_id).await?;
                timing::reschedule(tx, &ctx.ids, ctx.now, run, delay, changes).await
            })
        })
        .await
    }

    /// Takes an idempotency key of a task in `env` off the run holding it, so the next trigger
    /// with the key makes a new run; returns that run's id.
    pub async fn reset_idempotency_key(&self, env: &EnvironmentRow, task_id: &str, key: &str) -> Result<RunId, Error> {
        let (env, task_id, key) = (env.clone(), task_id.to_string(), key.to_string());
        self.write(move |tx, _, _| {
            Box::pin(async move {
                let Some(run) = tx.run_by_idempotency_key(&env.id, &task_id, &key).await? else {
                    return Err(Error::NotFound(format!("No run of task {task_id} holds idempotency key {key}")));
                };
                tx.run_forget_idempotency_key(&run.id).await?;
                Ok(run.id)
            })
        })
        .await
    }

    /// A run of `env`.
    pub async fn run(&self, env: &EnvironmentRow, run_id: &RunId) -> Result<RunRow, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.store.read(move |tx| Box::pin(async move { visible_run(tx, &env, &run_id).await })).await
    }

    /// A run's history, oldest first.
    pub async fn snapshots(&self, env: &EnvironmentRow, run_id: &RunId) -> Result<Vec<SnapshotRow>, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    visible_run(tx, &env, &run_id).await?;
                    Ok(tx.snapshot_list(&run_id).await?)
                })
            })
            .await
    }

    /// Runs of `env` matching `params`, newest first.
    pub async fn runs(&self, env: &EnvironmentRow, mut params: RunListParams) -> Result<Vec<RunRow>, Error> {
        params.env_id = Some(env.id.clone());
        self.store.read(move |tx| Box::pin(async move { Ok::<_, Error>(tx.run_list(&params).await?) })).await
    }

    /// Cancels a run of `env`.
    pub async fn cancel(&self, env: &EnvironmentRow, run_id: &RunId) -> Result<Cancelled, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.write(move |tx, ctx, changes| {
            Box::pin(async move { cancel::cancel(tx, &ctx.ids, ctx.now, &ctx.config, &env, &run_id, changes).await })
        })
        .await
    }

    /// Registers a worker process and the tasks and queues it declares.
    pub async fn register_worker(
        &self,
        env: &EnvironmentRow,
        version: String,
        tasks: Vec<TaskSpec>,
    ) -> Result<WorkerRow, Error> {
        self.register_pool(vec![env.clone()], version, tasks).await
    }

    /// Registers a worker process serving several environments (a worker pool), declaring its
    /// tasks and queues in each; its dequeues take the environments' runs in turn.
    pub async fn register_pool(
        &self,
        envs: Vec<EnvironmentRow>,
        version: String,
        tasks: Vec<TaskSpec>,
    ) -> Result<WorkerRow, Error> {
        let worker = self
            .write(move |tx, ctx, changes| {
                Box::pin(
                    async move { workers::register(tx, &ctx.ids, ctx.now, &envs, &version, &tasks, changes).await },
                )
            })
            .await?;
        let mut cache = self.workers.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(worker.id.clone(), worker.clone());
        Ok(worker)
    }

    /// A worker of `env` alone (not a pool that serves it among others).
    pub async fn worker(&self, env: &EnvironmentRow, id: &WorkerId) -> Result<WorkerRow, Error> {
        self.worker_where(id, |worker| worker.pool().is_none() && worker.env_id == env.id).await
    }

    /// A worker whose environments are all among `envs`: a pool worker of a project's
    /// environments, asked for with the project's credential.
    pub async fn pool_worker(&self, envs: &[EnvironmentRow], id: &WorkerId) -> Result<WorkerRow, Error> {
        self.worker_where(id, |worker| worker.env_ids.iter().all(|e| envs.iter().any(|env| &env.id == e))).await
    }

    /// The worker with this id, if `allowed`; not found otherwise, as a missing one.
    async fn worker_where(&self, id: &WorkerId, allowed: impl Fn(&WorkerRow) -> bool) -> Result<WorkerRow, Error> {
        let cached = self.workers.lock().get(id).cloned();
        let worker = match cached {
            Some(worker) => worker,
            None => {
                let key = id.clone();
                let found = self
                    .store
                    .read(move |tx| Box::pin(async move { Ok::<_, Error>(tx.worker_get(&key).await?) }))
                    .await?;
                let worker = found.ok_or_else(|| Error::NotFound(format!("Worker {id} not found")))?;
                self.workers.lock().insert(id.clone(), worker.clone());
                worker
            }
        };
        if !allowed(&worker) {
            return Err(Error::NotFound(format!("Worker {id} not found")));
        }
        Ok(worker)
    }

    /// Ends `worker`'s waiting dequeues now, on every node, and makes its later ones return at
    /// once without taking runs, so a worker that is shutting down gets its long poll answered
    /// instead of abandoning it (an abandoned answer could carry runs it would never hear of).
    pub async fn disconnect(&self, worker: &WorkerRow) -> Result<(), Error> {
        self.local.disconnect(&worker.id, Some(&worker.env_ids));
        let signal = Signal::Disconnect(worker.id.clone());
        self.store.write(move |tx| Box::pin(async move { Ok::<_, Error>(tx.signal(&signal).await?) })).await
    }

    /// How many dequeues of `env` are waiting for a run now.
    pub fn waiting_dequeues(&self, env: &EnvironmentRow) -> usize {
        self.local.handoffs.waiting(&env.id)
    }

    /// Takes up to `max_runs` runs for `worker` and starts their attempts, waiting up to `wait`
    /// for one to become ready when none is. Returns nothing once the worker has disconnected.
    pub async fn dequeue(&self, worker: &WorkerRow, max_runs: u32, wait: Duration) -> Result<Vec<RunRow>, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        let notifies: Vec<_> = worker.env_ids.iter().map(|env| self.local.notifier.get(env)).collect();
        loop {
            // Any of the worker's environments may wake it; each wake-up is enabled before the
            // queues are read, so none that comes during the read is missed.
            let mut notified: Vec<_> = notifies.iter().map(|notify| Box::pin(notify.notified())).collect();
            for one in &mut notified {
                one.as_mut().enable();
            }
            if self.local.is_disconnected(&worker.id) {
                return Ok(Vec::new());
            }
            let Dequeued { runs, next_ready_at, turns } = self.dequeue_once(worker, max_runs).await?;
            for (queue, lane) in turns {
                self.rotation.set_last(&queue, lane);
            }
            let now = tokio::time::Instant::now();
            if !runs.is_empty() || now >= deadline || self.stopping.load(Ordering::SeqCst) {
                return Ok(runs);
            }
            // Look again now and then even without a wake-up: signals from other nodes can be lost.
            let mut until = deadline.min(now + RECHECK);
            if let Some(ready) = next_ready_at {
                let in_ms = u64::try_from(ready.millis() - self.clock.now().millis()).unwrap_or(0);
                until = until.min(now + Duration::from_millis(in_ms));
            }
            let mut ticket = self.local.handoffs.wait(worker);
            tokio::select! {
                handed = &mut ticket.run => {
                    if let Ok(run) = handed {
                        return Ok(vec![run]);
                    }
                    continue;
                }
                _ = futures::future::select_all(notified) => {}
                () = tokio::time::sleep_until(until) => {}
            }
            if !self.local.handoffs.leave(worker, ticket.id) {
                // A trigger took this dequeue and delivers its run after its commit. Should that
                // trigger's caller go away before delivering, give up rather than wait forever:
                // the run then waits out its heartbeat timeout and is retried.
                match tokio::time::timeout(HANDOFF_GRACE, ticket.run).await {
                    Ok(Ok(run)) => return Ok(vec![run]),
                    Ok(Err(_)) => {}
                    Err(_) => {
                        self.local.handoffs.release(ticket.id);
                        tracing::warn!(worker = %worker.id, "a run handed to this worker was never delivered");
                    }
                }
            }
        }
    }

    /// One look at the queues for `worker`: its environment's, or its pool's in turn.
    async fn dequeue_once(&self, worker: &WorkerRow, max_runs: u32) -> Result<Dequeued, Error> {
        let (taken, rotation) = (worker.clone(), self.rotation.clone());
        if worker.env_ids.len() < 2 {
            return self
                .write(move |tx, ctx, changes| {
                    Box::pin(async move { dequeue::dequeue(tx, ctx, &rotation, &taken, max_runs, changes).await })
                })
                .await;
        }
        let previous = self.env_rotation.first(&worker.id);
        let PoolDequeued { taken, first } = self
            .write(move |tx, ctx, changes| {
                Box::pin(async move {
                    pool::dequeue(tx, ctx, &rotation, previous.as_ref(), &taken, max_runs, changes).await
                })
            })
            .await?;
        if let Some(first) = first {
            self.env_rotation.set_first(&worker.id, first);
        }
        Ok(taken)
    }

    /// Records heartbeats of `worker`'s attempts and says what to do with each.
    pub async fn heartbeat(
        &self,
        worker: &WorkerRow,
        runs: Vec<(RunId, SnapshotId)>,
    ) -> Result<Vec<HeartbeatVerdict>, Error> {
        let worker = worker.clone();
        self.write(move |tx, ctx, _| {
            Box::pin(async move {
                let mut verdicts = vec![None; runs.len()];
                for at in in_run_order(&runs, |(run_id, _)| run_id) {
                    let (run_id, snapshot_id) = &runs[at];
                    verdicts[at] =
                        Some(attempt::heartbeat(tx, ctx.now, &ctx.config, &worker, run_id, snapshot_id).await?);
                }
                Ok(verdicts.into_iter().flatten().collect())
            })
        })
        .await
    }

    /// Applies the results of attempts, each judged on its own, in one transaction.
    pub async fn complete(
        &self,
        env: &EnvironmentRow,
        completions: Vec<(RunId, SnapshotId, Outcome)>,
    ) -> Result<Vec<Completed>, Error> {
        self.complete_in(vec![env.clone()], completions).await
    }

    /// Applies the results of attempts of runs in any of `envs` (a pool worker's), each judged
    /// on its own, in one transaction; a run of another environment is not found.
    pub async fn complete_in(
        &self,
        envs: Vec<EnvironmentRow>,
        completions: Vec<(RunId, SnapshotId, Outcome)>,
    ) -> Result<Vec<Completed>, Error> {
        let completions = completions
            .into_iter()
            .map(|(run_id, snapshot_id, outcome)| Completion { run_id, snapshot_id, outcome, metadata: Vec::new() })
            .collect();
        self.complete_with_metadata(envs, completions).await
    }

    /// [`Engine::complete_in`] with the metadata changes each attempt had not sent yet, applied
    /// to the runs whose completion is not stale.
    pub async fn complete_with_metadata(
        &self,
        envs: Vec<EnvironmentRow>,
        completions: Vec<Completion>,
    ) -> Result<Vec<Completed>, Error> {
        self.write(move |tx, ctx, changes| {
            Box::pin(async move {
                let reports = completions.into_iter().map(|completion| (completion, ctx.ids.unit())).collect();
                attempt::complete(tx, &ctx.ids, ctx.now, &envs, reports, changes).await
            })
        })
        .await
    }

    /// Does the maintenance work, the stall sweep and the work that is due (see
    /// [`Engine::run_due`]), if `node` holds the maintenance lease or can take it (it is free or
    /// expired); holding it, `node` extends it by `lease`. Among nodes sharing a database one
    /// does maintenance at a time, and another takes over within `lease` of the last one
    /// stopping. Returns what was done, or `None` when another node holds the lease.
    pub async fn maintain(&self, node: &str, lease: Duration) -> Result<Option<Maintained>, Error> {
        let (node, now) = (node.to_string(), self.clock.now());
        let until = now.plus(lease);
        let held = self
            .store
            .write(move |tx| {
                Box::pin(async move { Ok::<_, Error>(tx.lease_acquire(MAINTENANCE_LEASE, &node, now, until).await?) })
            })
            .await?;
        match held {
            Some(_) => Ok(Some(Maintained { stalled: self.sweep_stalled().await?, due: self.run_due().await? })),
            None => Ok(None),
        }
    }

    /// Queues the delayed runs that are due and expires the runs whose TTL passed, in batches
    /// until none is left; forgets expired request keys. Looks first, in a read, whether
    /// anything is due, so calling it often costs no write. The node holding the maintenance
    /// lease calls it between sweeps; every move is fenced, so two nodes calling it at once
    /// (one that lost the lease without knowing yet) do nothing twice.
    pub async fn run_due(&self) -> Result<Due, Error> {
        let now = self.clock.now();
        let next = self.next_due().await?;
        let mut done = Due { next, ..Due::default() };
        if next.is_some_and(|at| at <= now) {
            loop {
                let pass = self
                    .write(move |tx, ctx, changes| {
                        Box::pin(async move {
                            let queued = timing::queue_delayed(tx, &ctx.ids, ctx.now, SWEEP_BATCH, changes).await?;
                            let expired = timing::expire(tx, &ctx.ids, ctx.now, SWEEP_BATCH, changes).await?;
                            let waitpoints = waitpoints::complete_due(tx, ctx, SWEEP_BATCH, changes).await?;
                            let fired = schedules::fire_due(tx, ctx, SWEEP_BATCH, changes).await?;
                            Ok(Due { queued, expired, waitpoints, fired, next: None })
                        })
                    })
                    .await?;
                done.queued += pass.queued;
                done.expired += pass.expired;
                done.waitpoints += pass.waitpoints;
                done.fired += pass.fired;
                if [pass.queued, pass.expired, pass.waitpoints, pass.fired].iter().all(|n| *n < SWEEP_BATCH as usize) {
                    break;
                }
            }
            done.next = self.next_due().await?;
        }
        if self.forget_after.lock().is_none_or(|at| at <= now) {
            self.write(move |tx, ctx, _| Box::pin(timing::forget_requests(tx, ctx.now, SWEEP_BATCH))).await?;
            *self.forget_after.lock() = Some(now.plus(FORGET_EVERY));
        }
        Ok(done)
    }

    /// The earliest time a delayed run comes due, a TTL passes, a waitpoint completes by time or
    /// (to the grain of `schedules::wake_for`) a schedule comes due.
    async fn next_due(&self) -> Result<Option<Timestamp>, Error> {
        self.store
            .read(|tx| {
                Box::pin(async move {
                    let runs = tx.run_next_due().await?;
                    let waits = tx.waitpoint_next_due().await?;
                    let schedules = tx.schedule_next_due().await?.map(schedules::wake_for);
                    Ok::<_, Error>(runs.into_iter().chain(waits).chain(schedules).min())
                })
            })
            .await
    }

    /// Gives the maintenance lease up, if `node` holds it, so another node takes over at once.
    pub async fn resign(&self, node: &str) -> Result<(), Error> {
        let node = node.to_string();
        self.store
            .write(move |tx| Box::pin(async move { Ok::<_, Error>(tx.lease_release(MAINTENANCE_LEASE, &node).await?) }))
            .await
    }

    /// Handles every run whose heartbeat deadline has passed. Returns how many were handled.
    pub async fn sweep_stalled(&self) -> Result<usize, Error> {
        let mut total = 0;
        loop {
            let handled =
                self.write(move |tx, ctx, changes| Box::pin(stall::sweep(tx, ctx, SWEEP_BATCH, changes))).await?;
            total += handled;
            if handled < SWEEP_BATCH as usize {
                return Ok(total);
            }
        }
    }
}

/// The positions of `items` in the order of their run ids. Transactions that change several runs
/// change them in this order, so two of them on different nodes never wait on each other's row
/// locks in a cycle.
pub(crate) fn in_run_order<T>(items: &[T], run_id: impl Fn(&T) -> &RunId) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|a, b| run_id(&items[*a]).cmp(run_id(&items[*b])));
    order
}

/// The run, if it belongs to `env`. Runs of other environments are reported missing, exactly as
/// runs that do not exist.
pub(crate) async fn visible_run(tx: &mut dyn Tx, env: &EnvironmentRow, run_id: &RunId) -> Result<RunRow, Error> {
    match tx.run_get(run_id).await? {
        Some(run) if run.env_id == env.id => Ok(run),
        _ => Err(Error::NotFound(format!("Run {run_id} not found"))),
    }
}
