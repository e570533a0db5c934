//! Batches: many runs triggered together, as Trigger.dev's batch trigger.
//!
//! A batch is made with a count of items ([`create`]), then given its items, each with its own
//! index, in one or more requests ([`add_items`]); items are deduplicated by index, so a stream
//! sent again makes no second run, and the batch is sealed once every index has arrived. The
//! legacy single-request form ([`trigger_all`]) makes a sealed batch and all its runs at once.
//!
//! Each item becomes a run exactly as a trigger makes one (`trigger::new_run`), but the items of
//! one request are made together: each task and queue is looked up once per request, the runs go
//! into their queues (never handed to a waiting worker), are written with one
//! `run_insert_many`, and the environment's waiting workers are woken once.

use std::collections::{HashMap, HashSet};

use stint_store::{BatchItemRow, BatchRow, EnvironmentRow, NewRun, Tx};
use stint_types::{BatchId, BatchStatus, RunId, Timestamp};

use crate::Error;
use crate::ids::Ids;
use crate::state::Changes;
use crate::systems::trigger::{self, TriggerParams};

/// Most items a batch may have (Trigger.dev's `STREAMING_BATCH_MAX_ITEMS`).
pub const MAX_BATCH_ITEMS: u32 = 1_000;

/// What a batch is made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchParams {
    /// How many items it will have, 1 to [`MAX_BATCH_ITEMS`].
    pub run_count: u32,
    /// A key the environment's later creates with the same key are answered this batch by.
    pub idempotency_key: Option<String>,
}

/// One item of a batch: its place and the run it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// Its index in the batch, below the batch's run count.
    pub index: u32,
    /// The run, checked as a trigger's.
    pub params: TriggerParams,
}

/// A batch made, or found by its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCreated {
    /// The batch.
    pub batch: BatchRow,
    /// True when the key found an existing batch and nothing was made.
    pub cached: bool,
}

/// What adding items to a batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsAdded {
    /// The batch after the items.
    pub batch: BatchRow,
    /// Items whose index had not arrived before.
    pub accepted: u32,
    /// Items whose index had arrived already (in an earlier request or earlier in this one):
    /// nothing was made for them.
    pub deduplicated: u32,
}

/// The run one item of a batch stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRun {
    /// The item's index.
    pub index: u32,
    /// The run.
    pub run_id: RunId,
    /// The run's task.
    pub task_id: String,
    /// True when the run existed already (the item's idempotency key found it).
    pub cached: bool,
    /// The item's idempotency key.
    pub idempotency_key: Option<String>,
}

/// A batch made in one request with all its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchTriggered {
    /// The batch.
    pub batch: BatchRow,
    /// True when the batch's idempotency key found an existing batch and nothing was made.
    pub cached: bool,
    /// Its runs, in item order.
    pub runs: Vec<BatchRun>,
}

/// A batch as it stands, for the API.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchView {
    /// The batch, with its status worked out: `Completed` once it is sealed and all its runs
    /// have finished, when `updated_at` is the last one's end.
    pub batch: BatchRow,
    /// Its items that have arrived, by index.
    pub items: Vec<BatchItemRow>,
}

/// Makes a batch, or returns the environment's batch holding its idempotency key.
pub(crate) async fn create(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    params: BatchParams,
) -> Result<BatchCreated, Error> {
    check_count(params.run_count)?;
    if let Some(key) = &params.idempotency_key
        && let Some(batch) = tx.batch_by_idempotency_key(&env.id, key).await?
    {
        return Ok(BatchCreated { batch, cached: true });
    }
    let batch = BatchRow {
        id: ids.batch(now),
        env_id: env.id.clone(),
        run_count: params.run_count,
        items_received: 0,
        idempotency_key: params.idempotency_key,
        status: BatchStatus::Pending,
        created_at: now,
        updated_at: now,
        sealed_at: None,
    };
    let (batch, cached) = insert(tx, env, batch).await?;
    Ok(BatchCreated { batch, cached })
}

/// Adds items to a batch of `env`: each item whose index has not arrived yet becomes a run (or is
/// answered by the run its idempotency key finds), the others change nothing. An index outside
/// the batch refuses the whole request. The batch is sealed when its last index arrives.
pub(crate) async fn add_items(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    batch_id: &BatchId,
    items: Vec<BatchItem>,
    changes: &mut Changes,
) -> Result<ItemsAdded, Error> {
    let mut batch = match tx.batch_lock(batch_id).await? {
        Some(batch) if batch.env_id == env.id => batch,
        _ => return Err(not_found(batch_id)),
    };
    if let Some(item) = items.iter().find(|item| item.index >= batch.run_count) {
        return Err(Error::Invalid(format!(
            "items[{}]: index {} is outside this batch, whose indexes are 0 to {}",
            item.index,
            item.index,
            batch.run_count - 1
        )));
    }
    let mut arrived: HashSet<u32> = if batch.items_received == 0 {
        HashSet::new()
    } else {
        tx.batch_indexes(&batch.id).await?.into_iter().collect()
    };
    let total = items.len() as u32;
    let fresh: Vec<BatchItem> = items.into_iter().filter(|item| arrived.insert(item.index)).collect();
    let accepted = fresh.len() as u32;
    if accepted > 0 {
        make_runs(tx, ids, now, env, &batch.id, fresh, changes).await?;
        batch.items_received += accepted;
        batch.updated_at = now;
        if batch.items_received >= batch.run_count && batch.sealed_at.is_none() {
            batch.status = BatchStatus::Processing;
            batch.sealed_at = Some(now);
        }
        tx.batch_update(&batch).await?;
    }
    Ok(ItemsAdded { batch, accepted, deduplicated: total - accepted })
}

/// Makes a sealed batch with a run for each of `items`, in one go (the legacy batch trigger), or
/// returns the environment's batch holding `idempotency_key` with its runs.
pub(crate) async fn trigger_all(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    items: Vec<TriggerParams>,
    idempotency_key: Option<String>,
    changes: &mut Changes,
) -> Result<BatchTriggered, Error> {
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
    check_count(count)?;
    let existing = match &idempotency_key {
        Some(key) => tx.batch_by_idempotency_key(&env.id, key).await?,
        None => None,
    };
    let (batch, cached) = match existing {
        Some(batch) => (batch, true),
        None => {
            let batch = BatchRow {
                id: ids.batch(now),
                env_id: env.id.clone(),
                run_count: count,
                items_received: count,
                idempotency_key,
                status: BatchStatus::Processing,
                created_at: now,
                updated_at: now,
                sealed_at: Some(now),
            };
            insert(tx, env, batch).await?
        }
    };
    if cached {
        let runs = tx
            .batch_items(&batch.id)
            .await?
            .into_iter()
            .map(|item| BatchRun {
                index: item.index,
                run_id: item.run_id,
                task_id: item.task_id,
                cached: true,
                idempotency_key: None,
            })
            .collect();
        return Ok(BatchTriggered { batch, cached, runs });
    }
    let items = (0..count).zip(items).map(|(index, params)| BatchItem { index, params }).collect();
    let runs = make_runs(tx, ids, now, env, &batch.id, items, changes).await?;
    Ok(BatchTriggered { batch, cached: false, runs })
}

/// A batch of `env` with its items, its status worked out from its runs.
pub(crate) async fn view(tx: &mut dyn Tx, env: &EnvironmentRow, batch_id: &BatchId) -> Result<BatchView, Error> {
    let mut batch = match tx.batch_get(batch_id).await? {
        Some(batch) if batch.env_id == env.id => batch,
        _ => return Err(not_found(batch_id)),
    };
    let items = tx.batch_items(&batch.id).await?;
    if batch.sealed() && items.iter().all(|item| item.status.is_final()) {
        batch.status = BatchStatus::Completed;
        let last_end = items.iter().filter_map(|item| item.finished_at).max();
        batch.updated_at = last_end.map_or(batch.updated_at, |end| end.max(batch.updated_at));
    }
    Ok(BatchView { batch, items })
}

fn check_count(count: u32) -> Result<(), Error> {
    if count == 0 || count > MAX_BATCH_ITEMS {
        return Err(Error::Invalid(format!("A batch has 1 to {MAX_BATCH_ITEMS} items, not {count}")));
    }
    Ok(())
}

fn not_found(batch_id: &BatchId) -> Error {
    Error::NotFound(format!("Batch {batch_id} not found"))
}

/// Inserts a new batch; when another transaction gave its idempotency key to a batch at the same
/// moment, that batch is the answer (`true`: found, not made).
async fn insert(tx: &mut dyn Tx, env: &EnvironmentRow, batch: BatchRow) -> Result<(BatchRow, bool), Error> {
    match tx.batch_insert(&batch).await {
        Ok(()) => Ok((batch, false)),
        Err(stint_store::Error::Duplicate(conflict)) => {
            let key = batch.idempotency_key.as_deref().unwrap_or_default();
            match tx.batch_by_idempotency_key(&env.id, key).await? {
                Some(existing) if batch.idempotency_key.is_some() => Ok((existing, true)),
                _ => Err(stint_store::Error::Duplicate(conflict).into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// Tasks and queues looked up once per request, and the idempotency keys its items claimed.
#[derive(Default)]
struct Lookups {
    places: trigger::Places,
    claimed: HashMap<(String, String), RunId>,
    /// The debounce keys its items' new runs hold, by task.
    debounced: HashMap<(String, String), RunId>,
}

/// Makes the runs of a batch's new items, all queued, in one `run_insert_many`; an item whose
/// idempotency key finds a live run is answered by that run and recorded as such. Returns each
/// item's run, in the order of `items`.
async fn make_runs(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    env: &EnvironmentRow,
    batch_id: &BatchId,
    items: Vec<BatchItem>,
    changes: &mut Changes,
) -> Result<Vec<BatchRun>, Error> {
    let mut lookups = Lookups::default();
    let mut runs = Vec::with_capacity(items.len());
    let mut new = Vec::with_capacity(items.len());
    for BatchItem { index, params } in items {
        let lineage = trigger::lineage_of(tx, env, &params).await?;
        let idempotency_key = params.idempotency.as_ref().map(|i| i.key.clone());
        if let Some(key) = &idempotency_key {
            let claim = (params.task_id.clone(), key.clone());
            let found = match lookups.claimed.get(&claim) {
                Some(run_id) => Some(run_id.clone()),
                None => trigger::reusable(tx, env, &params.task_id, key, now).await?.map(|run| run.id),
            };
            if let Some(run_id) = found {
                runs.push(BatchRun { index, run_id, task_id: params.task_id, cached: true, idempotency_key });
                continue;
            }
        }
        // A debounced item pushes back the delayed run holding its key, as a trigger does; two
        // items of one request with one key are one run.
        if let Some(debounce) = &params.debounce {
            let claim = (params.task_id.clone(), debounce.key.clone());
            let found = match lookups.debounced.get(&claim) {
                Some(run_id) => Some(run_id.clone()),
                None => {
                    let input = trigger::Input::of_params(&params);
                    trigger::debounced(tx, ids, now, env, debounce, input, changes).await?.map(|run| run.id)
                }
            };
            if let Some(run_id) = found {
                runs.push(BatchRun { index, run_id, task_id: params.task_id, cached: true, idempotency_key });
                continue;
            }
        }
        let debounce_claim = params.debounce.as_ref().map(|d| (params.task_id.clone(), d.key.clone()));
        let (task, queue) = lookups.places.queue(tx, ids, now, env, &params).await?;
        let mut made = trigger::new_run(ids, now, env, params, task, queue, lineage, true);
        if let Some(claim) = debounce_claim {
            lookups.debounced.insert(claim, made.run.id.clone());
        }
        made.run.batch_id = Some(batch_id.clone());
        made.run.batch_index = Some(index);
        if let Some(key) = &idempotency_key {
            lookups.claimed.insert((made.run.task_id.clone(), key.clone()), made.run.id.clone());
        }
        runs.push(BatchRun {
            index,
            run_id: made.run.id.clone(),
            task_id: made.run.task_id.clone(),
            cached: false,
            idempotency_key,
        });
        new.push(made);
    }
    let added = tx.run_insert_many(&new).await?;
    // A run refused because another transaction gave its idempotency key to a run at the same
    // moment: that run answers the item, as a single trigger's would.
    let mut replaced: HashMap<RunId, RunId> = HashMap::new();
    for (NewRun { run, .. }, added) in new.iter().zip(&added) {
        if *added {
            continue;
        }
        let key = run.idempotency_key.as_deref();
        match key {
            Some(key) => match tx.run_by_idempotency_key(&env.id, &run.task_id, key).await? {
                Some(existing) => {
                    replaced.insert(run.id.clone(), existing.id);
                }
                None => return Err(stint_store::Error::Duplicate(format!("run {} refused", run.id)).into()),
            },
            None => return Err(stint_store::Error::Duplicate(format!("run {} refused", run.id)).into()),
        }
    }
    for run in &mut runs {
        if let Some(existing) = replaced.get(&run.run_id) {
            run.run_id = existing.clone();
            run.cached = true;
        }
        if run.cached {
            tx.batch_item_insert(batch_id, run.index, &run.run_id).await?;
        }
    }
    if added.iter().any(|added| *added) {
        changes.wake.insert(env.id.clone());
    }
    Ok(runs)
}
