use async_trait::async_trait;
use stint_store::{Error, TaskRow, WorkerRow, WorkerTable, WorkerVersionRow};
use stint_types::{EnvId, WorkerId};

use crate::codec::{big_opt, count_opt, from_json, get, inserted, map_error, to_json, ts};
use crate::tx::PgTx;

#[async_trait]
impl WorkerTable for PgTx<'_> {
    async fn task_upsert(&mut self, row: &TaskRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO tasks (env_id, task_id, queue_name, retry, max_duration, ttl_secs, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (env_id, task_id) DO UPDATE SET queue_name = excluded.queue_name, \
             retry = excluded.retry, max_duration = excluded.max_duration, ttl_secs = excluded.ttl_secs, \
             updated_at = excluded.updated_at",
        )
        .bind(row.env_id.as_str())
        .bind(&row.task_id)
        .bind(&row.queue_name)
        .bind(to_json(&row.retry))
        .bind(big_opt(row.max_duration))
        .bind(big_opt(row.ttl_secs))
        .bind(row.updated_at.0)
        .execute(&mut *self.connection)
        .await
        .map(drop)
        .map_err(map_error)
    }

    async fn task_get(&mut self, env_id: &EnvId, task_id: &str) -> Result<Option<TaskRow>, Error> {
        let row = sqlx::query(
            "SELECT queue_name, retry, max_duration, updated_at, ttl_secs FROM tasks WHERE env_id = $1 AND task_id = $2",
        )
        .bind(env_id.as_str())
        .bind(task_id)
        .fetch_optional(&mut *self.connection)
        .await
        .map_err(map_error)?;
        row.map(|r| {
            Ok(TaskRow {
                env_id: env_id.clone(),
                task_id: task_id.to_string(),
                queue_name: get(&r, 0)?,
                retry: from_json(&get::<String>(&r, 1)?)?,
                max_duration: count_opt(&r, 2)?,
                ttl_secs: count_opt(&r, 4)?,
                updated_at: ts(&r, 3)?,
            })
        })
        .transpose()
    }

    async fn worker_insert(&mut self, row: &WorkerRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO workers (id, env_id, version, task_ids, created_at, env_ids, versions) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(row.id.as_str())
        .bind(row.env_id.as_str())
        .bind(&row.version)
        .bind(to_json(&row.task_ids))
        .bind(row.created_at.0)
        .bind(row.pool().map(|pool| to_json(&pool)))
        .bind((!row.versions.is_empty()).then(|| to_json(&row.versions)))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("worker {} exists already", row.id))
    }

    async fn worker_get(&mut self, id: &WorkerId) -> Result<Option<WorkerRow>, Error> {
        let row =
            sqlx::query("SELECT env_id, version, task_ids, created_at, env_ids, versions FROM workers WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *self.connection)
                .await
                .map_err(map_error)?;
        row.map(|r| {
            let env_id = EnvId::from_stored(get(&r, 0)?);
            Ok(WorkerRow {
                id: id.clone(),
                env_ids: WorkerRow::env_ids_of(
                    &env_id,
                    get::<Option<String>>(&r, 4)?.as_deref().map(from_json).transpose()?,
                ),
                env_id,
                version: get(&r, 1)?,
                versions: get::<Option<String>>(&r, 5)?.as_deref().map(from_json).transpose()?.unwrap_or_default(),
                task_ids: from_json(&get::<String>(&r, 2)?)?,
                created_at: ts(&r, 3)?,
            })
        })
        .transpose()
    }

    async fn worker_version_insert(&mut self, row: &WorkerVersionRow) -> Result<(), Error> {
        // A conflict adds nothing and leaves the transaction usable: the caller reads the row
        // that won (a concurrent insert is waited for, then seen by the next statement).
        let result = sqlx::query(
            "INSERT INTO worker_versions (env_id, version, fingerprint, seq, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(row.env_id.as_str())
        .bind(&row.version)
        .bind(&row.fingerprint)
        .bind(row.seq)
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || {
            format!("version {} or its fingerprint exists already in environment {}", row.version, row.env_id)
        })
    }

    async fn worker_version_get(&mut self, env_id: &EnvId, version: &str) -> Result<Option<WorkerVersionRow>, Error> {
        self.version_where("version = $2", env_id, Some(version)).await
    }

    async fn worker_version_by_fingerprint(
        &mut self,
        env_id: &EnvId,
        fingerprint: &str,
    ) -> Result<Option<WorkerVersionRow>, Error> {
        self.version_where("fingerprint = $2", env_id, Some(fingerprint)).await
    }

    async fn worker_version_current(&mut self, env_id: &EnvId) -> Result<Option<WorkerVersionRow>, Error> {
        self.version_where("true ORDER BY seq DESC LIMIT 1", env_id, None).await
    }
}

impl PgTx<'_> {
    /// The environment's first version, in `condition`'s order, for which `condition` holds
    /// (`$2` being `value`, when given).
    async fn version_where(
        &mut self,
        condition: &str,
        env_id: &EnvId,
        value: Option<&str>,
    ) -> Result<Option<WorkerVersionRow>, Error> {
        let sql = format!(
            "SELECT env_id, version, fingerprint, seq, created_at FROM worker_versions WHERE env_id = $1 AND {condition}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(env_id.as_str());
        if let Some(value) = value {
            query = query.bind(value);
        }
        let row = query.fetch_optional(&mut *self.connection).await.map_err(map_error)?;
        row.map(|r| {
            Ok(WorkerVersionRow {
                env_id: EnvId::from_stored(get(&r, 0)?),
                version: get(&r, 1)?,
                fingerprint: get(&r, 2)?,
                seq: get(&r, 3)?,
                created_at: ts(&r, 4)?,
            })
        })
        .transpose()
    }
}
