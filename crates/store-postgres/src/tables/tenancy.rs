use async_trait::async_trait;
use sqlx::postgres::PgRow;
use stint_store::{ApiKeyRow, EnvironmentRow, Error, OrganizationRow, ProjectRow, TenancyTable};
use stint_types::{EnvId, OrgId, ProjectId};

use crate::codec::{get, inserted, map_error, parsed, ts};
use crate::tx::PgTx;

fn organization(r: &PgRow) -> Result<OrganizationRow, Error> {
    Ok(OrganizationRow {
        id: OrgId::from_stored(get(r, 0)?),
        title: get(r, 1)?,
        slug: get(r, 2)?,
        created_at: ts(r, 3)?,
    })
}

fn project(r: &PgRow) -> Result<ProjectRow, Error> {
    Ok(ProjectRow {
        id: ProjectId::from_stored(get(r, 0)?),
        org_id: OrgId::from_stored(get(r, 1)?),
        name: get(r, 2)?,
        reference: get(r, 3)?,
        created_at: ts(r, 4)?,
    })
}

fn environment(r: &PgRow) -> Result<EnvironmentRow, Error> {
    Ok(EnvironmentRow {
        id: EnvId::from_stored(get(r, 0)?),
        project_id: ProjectId::from_stored(get(r, 1)?),
        org_id: OrgId::from_stored(get(r, 2)?),
        kind: parsed(r, 3)?,
        created_at: ts(r, 4)?,
    })
}

fn api_key(r: &PgRow) -> Result<ApiKeyRow, Error> {
    Ok(ApiKeyRow {
        key_hash: get(r, 0)?,
        key_prefix: get(r, 1)?,
        env_id: EnvId::from_stored(get(r, 2)?),
        created_at: ts(r, 3)?,
    })
}

#[async_trait]
impl TenancyTable for PgTx<'_> {
    async fn organization_insert(&mut self, row: &OrganizationRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO organizations (id, title, slug, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(row.id.as_str())
        .bind(&row.title)
        .bind(&row.slug)
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("organization {} or slug '{}' exists already", row.id, row.slug))
    }

    async fn project_insert(&mut self, row: &ProjectRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO projects (id, org_id, name, ref, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(row.id.as_str())
        .bind(row.org_id.as_str())
        .bind(&row.name)
        .bind(&row.reference)
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("project {} or ref '{}' exists already", row.id, row.reference))
    }

    async fn environment_insert(&mut self, row: &EnvironmentRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO environments (id, project_id, org_id, kind, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(row.id.as_str())
        .bind(row.project_id.as_str())
        .bind(row.org_id.as_str())
        .bind(row.kind.as_str())
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || {
            format!(
                "environment {} or a {} environment of project {} exists already",
                row.id,
                row.kind.as_str(),
                row.project_id
            )
        })
    }

    async fn api_key_insert(&mut self, row: &ApiKeyRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO api_keys (key_hash, key_prefix, env_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&row.key_hash)
        .bind(&row.key_prefix)
        .bind(row.env_id.as_str())
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("a key with prefix {} exists already", row.key_prefix))
    }

    async fn organization_list(&mut self) -> Result<Vec<OrganizationRow>, Error> {
        let rows = sqlx::query("SELECT id, title, slug, created_at FROM organizations ORDER BY id")
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        rows.iter().map(organization).collect()
    }

    async fn project_list(&mut self) -> Result<Vec<ProjectRow>, Error> {
        let rows = sqlx::query("SELECT id, org_id, name, ref, created_at FROM projects ORDER BY id")
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        rows.iter().map(project).collect()
    }

    async fn environment_list(&mut self) -> Result<Vec<EnvironmentRow>, Error> {
        let rows = sqlx::query("SELECT id, project_id, org_id, kind, created_at FROM environments ORDER BY id")
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        rows.iter().map(environment).collect()
    }

    async fn api_key_list(&mut self) -> Result<Vec<ApiKeyRow>, Error> {
        // Keys created in the same millisecond come in hash order; SQLite's come in insertion
        // order, which PostgreSQL does not keep.
        let rows =
            sqlx::query("SELECT key_hash, key_prefix, env_id, created_at FROM api_keys ORDER BY created_at, key_hash")
                .fetch_all(&mut *self.connection)
                .await
                .map_err(map_error)?;
        rows.iter().map(api_key).collect()
    }
}
