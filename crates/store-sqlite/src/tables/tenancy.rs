use async_trait::async_trait;
use rusqlite::params;
use stint_store::{ApiKeyRow, EnvironmentRow, Error, OrganizationRow, ProjectRow, TenancyTable};
use stint_types::{EnvId, OrgId, ProjectId, Timestamp};

use crate::codec::{map_error, parse};
use crate::tx::SqliteTx;

#[async_trait]
impl TenancyTable for SqliteTx<'_> {
    async fn organization_insert(&mut self, row: &OrganizationRow) -> Result<(), Error> {
        self.connection
            .prepare_cached("INSERT INTO organizations (id, title, slug, created_at) VALUES (?, ?, ?, ?)")
            .and_then(|mut s| s.execute(params![row.id.as_str(), row.title, row.slug, row.created_at.0]))
            .map(drop)
            .map_err(map_error)
    }

    async fn project_insert(&mut self, row: &ProjectRow) -> Result<(), Error> {
        self.connection
            .prepare_cached("INSERT INTO projects (id, org_id, name, ref, created_at) VALUES (?, ?, ?, ?, ?)")
            .and_then(|mut s| {
                s.execute(params![row.id.as_str(), row.org_id.as_str(), row.name, row.reference, row.created_at.0])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn environment_insert(&mut self, row: &EnvironmentRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(
                "INSERT INTO environments (id, project_id, org_id, kind, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.project_id.as_str(),
                    row.org_id.as_str(),
                    row.kind.as_str(),
                    row.created_at.0
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn api_key_insert(&mut self, row: &ApiKeyRow) -> Result<(), Error> {
        self.connection
            .prepare_cached("INSERT INTO api_keys (key_hash, key_prefix, env_id, created_at) VALUES (?, ?, ?, ?)")
            .and_then(|mut s| s.execute(params![row.key_hash, row.key_prefix, row.env_id.as_str(), row.created_at.0]))
            .map(drop)
            .map_err(map_error)
    }

    async fn organization_list(&mut self) -> Result<Vec<OrganizationRow>, Error> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT id, title, slug, created_at FROM organizations ORDER BY id")
            .map_err(map_error)?;
        let rows = statement
            .query_map([], |r| {
                Ok(OrganizationRow {
                    id: OrgId::from_stored(r.get(0)?),
                    title: r.get(1)?,
                    slug: r.get(2)?,
                    created_at: Timestamp(r.get(3)?),
                })
            })
            .map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }

    async fn project_list(&mut self) -> Result<Vec<ProjectRow>, Error> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT id, org_id, name, ref, created_at FROM projects ORDER BY id")
            .map_err(map_error)?;
        let rows = statement
            .query_map([], |r| {
                Ok(ProjectRow {
                    id: ProjectId::from_stored(r.get(0)?),
                    org_id: OrgId::from_stored(r.get(1)?),
                    name: r.get(2)?,
                    reference: r.get(3)?,
                    created_at: Timestamp(r.get(4)?),
                })
            })
            .map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }

    async fn environment_list(&mut self) -> Result<Vec<EnvironmentRow>, Error> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT id, project_id, org_id, kind, created_at FROM environments ORDER BY id")
            .map_err(map_error)?;
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(map_error)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, project_id, org_id, kind, created_at) = row.map_err(map_error)?;
            out.push(EnvironmentRow {
                id: EnvId::from_stored(id),
                project_id: ProjectId::from_stored(project_id),
                org_id: OrgId::from_stored(org_id),
                kind: parse(&kind)?,
                created_at: Timestamp(created_at),
            });
        }
        Ok(out)
    }

    async fn api_key_list(&mut self) -> Result<Vec<ApiKeyRow>, Error> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT key_hash, key_prefix, env_id, created_at FROM api_keys ORDER BY created_at")
            .map_err(map_error)?;
        let rows = statement
            .query_map([], |r| {
                Ok(ApiKeyRow {
                    key_hash: r.get(0)?,
                    key_prefix: r.get(1)?,
                    env_id: EnvId::from_stored(r.get(2)?),
                    created_at: Timestamp(r.get(3)?),
                })
            })
            .map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }
}
