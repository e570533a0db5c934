//! What a run carries besides its state, as `Engine` methods: tags, metadata, and the runs
//! related to it through the runs that triggered them.

use serde_json::{Map, Value};
use stint_store::{EnvironmentRow, RunRow, StoreExt, WorkerRow};
use stint_types::metadata::Operation;
use stint_types::{RunId, SnapshotId};

use crate::Error;
use crate::shell::{Engine, in_run_order, visible_run};
use crate::systems::metadata::{self, HeldUpdate, MetadataChange};
use crate::systems::tags;

/// Most children a run's view lists.
const MAX_CHILDREN: u32 = 100;

/// A run with the runs related to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    /// The run.
    pub run: RunRow,
    /// The run that triggered it.
    pub parent: Option<RunRow>,
    /// The first run of its chain of parents.
    pub root: Option<RunRow>,
    /// The runs it triggered, oldest first, at most 100.
    pub children: Vec<RunRow>,
}

impl Engine {
    /// A run of `env` with its parent, root and children.
    pub async fn related(&self, env: &EnvironmentRow, run_id: &RunId) -> Result<Related, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.store
            .read(move |tx| {
                Box::pin(async move {
                    let run = visible_run(tx, &env, &run_id).await?;
                    let parent = match &run.parent_run_id {
                        Some(id) => tx.run_get(id).await?,
                        None => None,
                    };
                    let root = match &run.root_run_id {
                        Some(id) if Some(id) == run.parent_run_id.as_ref() => parent.clone(),
                        Some(id) => tx.run_get(id).await?,
                        None => None,
                    };
                    let children = tx.run_children(&run.id, MAX_CHILDREN).await?;
                    Ok(Related { run, parent, root, children })
                })
            })
            .await
    }

    /// Adds tags to a run of `env`; returns how many were new.
    pub async fn add_tags(&self, env: &EnvironmentRow, run_id: &RunId, tags: Vec<String>) -> Result<usize, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.write(move |tx, ctx, _| Box::pin(async move { tags::add(tx, ctx.now, &env, &run_id, tags).await })).await
    }

    /// The metadata of a run of `env`; an empty object when it has none.
    pub async fn metadata(&self, env: &EnvironmentRow, run_id: &RunId) -> Result<Map<String, Value>, Error> {
        let run = self.run(env, run_id).await?;
        Ok(metadata::parse(&run))
    }

    /// Changes the metadata of a run of `env` (and of its parent and root); returns the run's new
    /// metadata.
    pub async fn update_metadata(
        &self,
        env: &EnvironmentRow,
        run_id: &RunId,
        change: MetadataChange,
    ) -> Result<Map<String, Value>, Error> {
        let (env, run_id) = (env.clone(), run_id.clone());
        self.write(move |tx, ctx, _| {
            Box::pin(async move { metadata::update(tx, ctx.now, &env, &run_id, change).await })
        })
        .await
    }

    /// Applies metadata operations `worker` sent for the runs it holds, each fenced on the
    /// snapshot it holds and judged on its own, in one transaction.
    pub async fn update_held_metadata(
        &self,
        worker: &WorkerRow,
        updates: Vec<(RunId, SnapshotId, Vec<Operation>)>,
    ) -> Result<Vec<HeldUpdate>, Error> {
        let worker = worker.clone();
        self.write(move |tx, ctx, _| {
            Box::pin(async move {
                let mut answers = vec![None; updates.len()];
                for at in in_run_order(&updates, |(run_id, ..)| run_id) {
                    let (run_id, snapshot_id, operations) = &updates[at];
                    // The order is stable: entries for one run apply in the order sent.
                    answers[at] =
                        Some(metadata::update_held(tx, ctx.now, &worker, run_id, snapshot_id, operations).await?);
                }
                Ok(answers.into_iter().flatten().collect())
            })
        })
        .await
    }
}
