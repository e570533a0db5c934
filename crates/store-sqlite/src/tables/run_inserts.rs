//! Inserting runs and their first snapshots, one at a time or many per statement.
//!
//! A batch adds up to a thousand runs in one transaction; each insert statement has a fixed cost
//! beyond its rows (a program to start, a cursor per index to open and close), so runs go in
//! multi-row statements of [`CHUNKS`] rows. A statement whose rows break a uniqueness rule
//! changes nothing (SQLite rolls the statement back, not the transaction), and its rows are then
//! inserted one by one to find the refused ones.

use std::sync::LazyLock;

use rusqlite::Statement;
use stint_store::{Error, NewRun, RunRow, SnapshotRow};
use stint_types::{BatchId, RunId, WorkerId};

use crate::codec::{map_error, to_json};
use crate::tables::runs::{RUN_COLUMNS, SNAPSHOT_COLUMNS};
use crate::tx::SqliteTx;

/// Rows per statement, largest first; every count of rows is made of these.
const CHUNKS: [usize; 3] = [100, 10, 1];
/// Columns of a run row.
const RUN_VALUES: usize = 46;
/// Columns of a snapshot row.
const SNAPSHOT_VALUES: usize = 8;

/// The insert statements of runs, one per entry of [`CHUNKS`].
static RUN_INSERTS: LazyLock<Vec<String>> =
    LazyLock::new(|| CHUNKS.iter().map(|&rows| insert_sql("runs", RUN_COLUMNS, RUN_VALUES, rows)).collect());
/// The insert statements of snapshots, one per entry of [`CHUNKS`].
static SNAPSHOT_INSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS.iter().map(|&rows| insert_sql("snapshots", SNAPSHOT_COLUMNS, SNAPSHOT_VALUES, rows)).collect()
});

fn insert_sql(table: &str, columns: &str, values: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; values].join(", "));
    format!("INSERT INTO {table} ({columns}) VALUES {}", vec![row; rows].join(", "))
}

/// Binds values to a statement's parameters from `$at` on, advancing `$at`.
macro_rules! bind {
    ($statement:expr, $at:ident; $($value:expr),* $(,)?) => {
        $(
            $statement.raw_bind_parameter($at, $value)?;
            $at += 1;
        )*
    };
}

fn bind_run(statement: &mut Statement<'_>, mut at: usize, run: &RunRow) -> rusqlite::Result<usize> {
    bind!(statement, at;
        run.id.as_str(),
        run.env_id.as_str(),
        &run.task_id,
        run.queue_id.as_str(),
        &run.queue_name,
        run.status.as_str(),
        run.snapshot_id.as_str(),
        run.execution_status.as_str(),
        run.attempt_number,
        run.max_attempts,
        run.retry.as_ref().map(to_json),
        run.max_duration,
        &run.payload,
        &run.payload_type,
        &run.output,
        &run.output_type,
        run.error.as_ref().map(to_json),
        tags_json(&run.tags),
        &run.metadata,
        &run.concurrency_key,
        run.priority_ms,
        run.is_test,
        &run.machine,
        run.worker_id.as_ref().map(WorkerId::as_str),
        &run.version,
        run.heartbeat_deadline.map(|t| t.0),
        run.attempt_started_at.map(|t| t.0),
        run.duration_ms,
        run.replayed_from.as_ref().map(RunId::as_str),
        run.created_at.0,
        run.updated_at.0,
        run.started_at.map(|t| t.0),
        run.finished_at.map(|t| t.0),
        run.queue_score,
        &run.idempotency_key,
        run.idempotency_key_expires_at.map(|t| t.0),
        run.delay_until.map(|t| t.0),
        run.ttl_secs,
        run.ttl_expires_at.map(|t| t.0),
        &run.debounce_key,
        run.parent_run_id.as_ref().map(RunId::as_str),
        run.root_run_id.as_ref().map(RunId::as_str),
        run.depth,
        run.batch_id.as_ref().map(BatchId::as_str),
        run.batch_index,
        run.resuming,
    );
    Ok(at)
}

fn bind_snapshot(statement: &mut Statement<'_>, mut at: usize, snapshot: &SnapshotRow) -> rusqlite::Result<usize> {
    bind!(statement, at;
        snapshot.id.as_str(),
        snapshot.run_id.as_str(),
        snapshot.status.as_str(),
        snapshot.run_status.as_str(),
        snapshot.attempt_number,
        &snapshot.description,
        snapshot.worker_id.as_ref().map(WorkerId::as_str),
        snapshot.created_at.0,
    );
    Ok(at)
}

/// The tags column: JSON text, without serializing the common empty list.
fn tags_json(tags: &[String]) -> std::borrow::Cow<'static, str> {
    if tags.is_empty() { "[]".into() } else { to_json(&tags).into() }
}

/// Runs `rows` through the statement for their count, binding each with `bind`.
fn insert_rows<T>(
    tx: &mut SqliteTx<'_>,
    sql: &str,
    rows: &[&T],
    bind: fn(&mut Statement<'_>, usize, &T) -> rusqlite::Result<usize>,
) -> Result<(), Error> {
    let mut statement = tx.connection.prepare_cached(sql).map_err(map_error)?;
    let mut at = 1;
    for row in rows {
        at = bind(&mut statement, at, row).map_err(map_error)?;
    }
    statement.raw_execute().map(drop).map_err(map_error)
}

/// Each of `rows` in statements of [`CHUNKS`] rows.
fn in_chunks<T>(rows: &[&T]) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let left = rows.len() - at;
        let (chunk, size) = CHUNKS.iter().enumerate().find(|(_, size)| **size <= left).map(|(i, s)| (i, *s))?;
        at += size;
        Some((chunk, at - size..at))
    })
}

impl SqliteTx<'_> {
    /// Inserts a run and its tags, without its snapshot.
    pub(crate) fn insert_run(&mut self, run: &RunRow) -> Result<(), Error> {
        insert_rows(self, &RUN_INSERTS[CHUNKS.len() - 1], &[run], bind_run)?;
        self.insert_tags(run)
    }

    /// Inserts a snapshot.
    pub(crate) fn insert_snapshot(&mut self, snapshot: &SnapshotRow) -> Result<(), Error> {
        insert_rows(self, &SNAPSHOT_INSERTS[CHUNKS.len() - 1], &[snapshot], bind_snapshot)
    }

    fn insert_tags(&mut self, run: &RunRow) -> Result<(), Error> {
        for tag in &run.tags {
            self.connection
                .prepare_cached("INSERT OR IGNORE INTO run_tags (tag, run_id) VALUES (?, ?)")
                .and_then(|mut s| s.execute(rusqlite::params![tag, run.id.as_str()]))
                .map_err(map_error)?;
        }
        Ok(())
    }

    /// Inserts runs with their snapshots and tags, many per statement; answers for each whether
    /// it was added (`false`: a uniqueness rule refused it, and nothing of it was written).
    pub(crate) fn insert_runs(&mut self, new: &[NewRun]) -> Result<Vec<bool>, Error> {
        let runs: Vec<&RunRow> = new.iter().map(|n| &n.run).collect();
        let mut added = vec![true; runs.len()];
        for (chunk, range) in in_chunks(&runs) {
            match insert_rows(self, &RUN_INSERTS[chunk], &runs[range.clone()], bind_run) {
                Ok(()) => {}
                Err(Error::Duplicate(_)) => {
                    // The statement changed nothing: find the refused rows one by one.
                    for at in range {
                        match insert_rows(self, &RUN_INSERTS[CHUNKS.len() - 1], &[runs[at]], bind_run) {
                            Ok(()) => {}
                            Err(Error::Duplicate(_)) => added[at] = false,
                            Err(error) => return Err(error),
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
        let snapshots: Vec<&SnapshotRow> =
            new.iter().zip(&added).filter(|(_, added)| **added).map(|(n, _)| &n.snapshot).collect();
        for (chunk, range) in in_chunks(&snapshots) {
            insert_rows(self, &SNAPSHOT_INSERTS[chunk], &snapshots[range], bind_snapshot)?;
        }
        for (run, _) in runs.iter().zip(&added).filter(|(run, added)| **added && !run.tags.is_empty()) {
            self.insert_tags(run)?;
        }
        Ok(added)
    }
}
