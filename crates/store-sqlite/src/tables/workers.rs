use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use stint_store::{Error, TaskRow, WorkerRow, WorkerTable, WorkerVersionRow};
use stint_types::{EnvId, Timestamp, WorkerId};

use crate::codec::{from_json, map_error, to_json};
use crate::tx::SqliteTx;

#[async_trait]
impl WorkerTable for SqliteTx<'_> {
    async fn task_upsert(&mut self, row: &TaskRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO tasks (env_id, task_id, queue_name, retry, max_duration, ttl_secs, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (env_id, task_id) DO UPDATE SET queue_name = excluded.queue_name, \
                 retry = excluded.retry, max_duration = excluded.max_duration, ttl_secs = excluded.ttl_secs, \
                 updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.env_id.as_str(),
                    row.task_id,
                    row.queue_name,
                    to_json(&row.retry),
                    row.max_duration,
                    row.ttl_secs,
                    row.updated_at.0
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn task_get(&mut self, env_id: &EnvId, task_id: &str) -> Result<Option<TaskRow>, Error> {
        let row = self
            .connection
            .prepare_cached(
                "SELECT queue_name, retry, max_duration, updated_at, ttl_secs FROM tasks \
                 WHERE env_id = ? AND task_id = ?",
            )
            .and_then(|mut s| {
                s.query_row(params![env_id.as_str(), task_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<u32>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<u32>>(4)?,
                    ))
                })
                .optional()
            })
            .map_err(map_error)?;
        row.map(|(queue_name, retry, max_duration, updated_at, ttl_secs)| {
            Ok(TaskRow {
                env_id: env_id.clone(),
                task_id: task_id.to_string(),
                queue_name,
                retry: from_json(&retry)?,
                max_duration,
                ttl_secs,
                updated_at: Timestamp(updated_at),
            })
        })
        .transpose()
    }

    async fn worker_insert(&mut self, row: &WorkerRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO workers (id, env_id, version, task_ids, created_at, env_ids, versions) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.env_id.as_str(),
                    row.version,
                    to_json(&row.task_ids),
                    row.created_at.0,
                    row.pool().map(|pool| to_json(&pool)),
                    (!row.versions.is_empty()).then(|| to_json(&row.versions))
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn worker_get(&mut self, id: &WorkerId) -> Result<Option<WorkerRow>, Error> {
        let row = self
            .connection
            .prepare_cached("SELECT env_id, version, task_ids, created_at, env_ids, versions FROM workers WHERE id = ?")
            .and_then(|mut s| {
                s.query_row([id.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                    ))
                })
                .optional()
            })
            .map_err(map_error)?;
        row.map(|(env_id, version, task_ids, created_at, env_ids, versions)| {
            let env_id = EnvId::from_stored(env_id);
            Ok(WorkerRow {
                id: id.clone(),
                env_ids: WorkerRow::env_ids_of(&env_id, env_ids.as_deref().map(from_json).transpose()?),
                env_id,
                version,
                versions: versions.as_deref().map(from_json).transpose()?.unwrap_or_default(),
                task_ids: from_json(&task_ids)?,
                created_at: Timestamp(created_at),
            })
        })
        .transpose()
    }

    async fn worker_version_insert(&mut self, row: &WorkerVersionRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO worker_versions (env_id, version, fingerprint, seq, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![row.env_id.as_str(), row.version, row.fingerprint, row.seq, row.created_at.0])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn worker_version_get(&mut self, env_id: &EnvId, version: &str) -> Result<Option<WorkerVersionRow>, Error> {
        self.version_where("version = ?", env_id, version)
    }

    async fn worker_version_by_fingerprint(
        &mut self,
        env_id: &EnvId,
        fingerprint: &str,
    ) -> Result<Option<WorkerVersionRow>, Error> {
        self.version_where("fingerprint = ?", env_id, fingerprint)
    }

    async fn worker_version_current(&mut self, env_id: &EnvId) -> Result<Option<WorkerVersionRow>, Error> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM worker_versions WHERE env_id = ? ORDER BY seq DESC LIMIT 1");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([env_id.as_str()], version_from_row).optional())
            .map_err(map_error)
    }
}

/// Every column of `worker_versions`, in the order [`version_from_row`] reads them.
const VERSION_COLUMNS: &str = "env_id, version, fingerprint, seq, created_at";

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkerVersionRow> {
    Ok(WorkerVersionRow {
        env_id: EnvId::from_stored(r.get(0)?),
        version: r.get(1)?,
        fingerprint: r.get(2)?,
        seq: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
    })
}

impl SqliteTx<'_> {
    /// The environment's version whose `condition` (one placeholder) holds for `value`.
    fn version_where(
        &mut self,
        condition: &str,
        env_id: &EnvId,
        value: &str,
    ) -> Result<Option<WorkerVersionRow>, Error> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM worker_versions WHERE env_id = ? AND {condition}");
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(params![env_id.as_str(), value], version_from_row).optional())
            .map_err(map_error)
    }
}
