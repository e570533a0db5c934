use async_trait::async_trait;
use rusqlite::{Row, params, params_from_iter};
use stint_store::{Error, QueueHead, QueueRow, QueueTable, RunRow};
use stint_types::{EnvId, QueueId, Timestamp};

use crate::codec::{count, map_error};
use crate::tables::runs::{RUN_COLUMNS, run_from_row};
use crate::tx::{SqliteTx, placeholders};

const QUEUE_COLUMNS: &str = "id, env_id, name, concurrency_limit, running, created_at";

fn queue_from_row(r: &Row<'_>) -> rusqlite::Result<(QueueRow, i64, Option<i64>)> {
    Ok((
        QueueRow {
            id: QueueId::from_stored(r.get(0)?),
            env_id: EnvId::from_stored(r.get(1)?),
            name: r.get(2)?,
            concurrency_limit: None,
            running: 0,
            created_at: Timestamp(r.get(5)?),
        },
        r.get(4)?,
        r.get(3)?,
    ))
}

fn finish_queue((mut queue, running, limit): (QueueRow, i64, Option<i64>)) -> Result<QueueRow, Error> {
    queue.running = count(running)?;
    queue.concurrency_limit = limit.map(count).transpose()?;
    Ok(queue)
}

#[async_trait]
impl QueueTable for SqliteTx<'_> {
    async fn queue_by_name(&mut self, env_id: &EnvId, name: &str) -> Result<Option<QueueRow>, Error> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE env_id = ? AND name = ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query(params![env_id.as_str(), name]).map_err(map_error)?;
        match rows.next().map_err(map_error)? {
            Some(row) => Ok(Some(finish_queue(queue_from_row(row).map_err(map_error)?)?)),
            None => Ok(None),
        }
    }

    async fn queue_lock(&mut self, id: &QueueId) -> Result<Option<QueueRow>, Error> {
        // The single writer already serialises write transactions: reading is locking.
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE id = ?");
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut rows = statement.query([id.as_str()]).map_err(map_error)?;
        match rows.next().map_err(map_error)? {
            Some(row) => Ok(Some(finish_queue(queue_from_row(row).map_err(map_error)?)?)),
            None => Ok(None),
        }
    }

    async fn queue_insert(&mut self, row: &QueueRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO queues (id, env_id, name, concurrency_limit, running, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.env_id.as_str(),
                    row.name,
                    row.concurrency_limit,
                    row.running,
                    row.created_at.0
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_set_limit(&mut self, id: &QueueId, limit: Option<u32>) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE queues SET concurrency_limit = ? WHERE id = ?")
            .and_then(|mut s| s.execute(params![limit, id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_add_running(&mut self, id: &QueueId, delta: i64) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE queues SET running = max(0, running + ?) WHERE id = ?")
            .and_then(|mut s| s.execute(params![delta, id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn queue_heads(&mut self, env_id: &EnvId, task_ids: &[String]) -> Result<Vec<QueueHead>, Error> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        // The head is found by walking the queue in score order and stopping at the first run of
        // an asked task, which is the first row in the common case of one task per queue.
        let sql = format!(
            "SELECT {QUEUE_COLUMNS}, head FROM ( \
               SELECT q.*, (SELECT r.queue_score FROM runs r INDEXED BY runs_in_queue \
                            WHERE r.queue_id = q.id AND r.queue_score IS NOT NULL AND r.task_id IN ({}) \
                            ORDER BY r.queue_score LIMIT 1) AS head \
               FROM queues q WHERE q.env_id = ?) \
             WHERE head IS NOT NULL",
            placeholders(task_ids.len())
        );
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let params = task_ids.iter().map(String::as_str).chain([env_id.as_str()]);
        let rows = statement
            .query_map(params_from_iter(params), |r| Ok((queue_from_row(r)?, r.get::<_, i64>(6)?)))
            .map_err(map_error)?;
        let mut heads = Vec::new();
        for row in rows {
            let (queue, head_score) = row.map_err(map_error)?;
            heads.push(QueueHead { queue: finish_queue(queue)?, head_score });
        }
        Ok(heads)
    }

    async fn queue_ready(&mut self, queue_id: &QueueId, max_score: i64) -> Result<bool, Error> {
        self.connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM runs INDEXED BY runs_in_queue \
                 WHERE queue_id = ? AND queue_score IS NOT NULL AND queue_score <= ?)",
            )
            .and_then(|mut s| s.query_row(params![queue_id.as_str(), max_score], |r| r.get(0)))
            .map_err(map_error)
    }

    async fn queue_take(
        &mut self,
        queue_id: &QueueId,
        task_ids: &[String],
        max_score: i64,
        limit: u32,
    ) -> Result<Vec<RunRow>, Error> {
        if task_ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs INDEXED BY runs_in_queue \
             WHERE queue_id = ? AND queue_score IS NOT NULL AND queue_score <= ? AND task_id IN ({}) \
             ORDER BY queue_score, id LIMIT ?",
            placeholders(task_ids.len())
        );
        let mut statement = self.connection.prepare_cached(&sql).map_err(map_error)?;
        let mut params: Vec<rusqlite::types::Value> = vec![queue_id.as_str().to_string().into(), max_score.into()];
        params.extend(task_ids.iter().map(|t| t.clone().into()));
        params.push(i64::from(limit).into());
        let rows = statement.query_map(params_from_iter(params), run_from_row).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }
}
