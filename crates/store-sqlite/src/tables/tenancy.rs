use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};
use stint_store::{
    AccessTokenRow, AdminTokenRow, ApiKeyRow, EnvironmentRow, Error, OrganizationRow, ProjectRow, TenancyTable,
};
use stint_types::{EnvId, KeyId, OrgId, ProjectId, Timestamp, TokenId};

use crate::codec::{map_error, parse, ts};
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
            .prepare_cached(&format!("INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"))
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.key_hash,
                    row.key_prefix,
                    row.env_id.as_str(),
                    row.name,
                    row.created_at.0,
                    row.revoked_at.map(|t| t.0)
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn organization_list(&mut self) -> Result<Vec<OrganizationRow>, Error> {
        self.all("SELECT id, title, slug, created_at FROM organizations ORDER BY id", [], organization)
    }

    async fn project_list(&mut self) -> Result<Vec<ProjectRow>, Error> {
        self.all("SELECT id, org_id, name, ref, created_at FROM projects ORDER BY id", [], project)
    }

    async fn environment_list(&mut self) -> Result<Vec<EnvironmentRow>, Error> {
        let sql = "SELECT id, project_id, org_id, kind, created_at FROM environments ORDER BY id";
        self.all(sql, [], environment_columns)?.into_iter().map(environment).collect()
    }

    async fn api_key_list(&mut self) -> Result<Vec<ApiKeyRow>, Error> {
        self.all(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"), [], api_key)
    }

    async fn organization_get(&mut self, id: &OrgId) -> Result<Option<OrganizationRow>, Error> {
        self.one("SELECT id, title, slug, created_at FROM organizations WHERE id = ?", [id.as_str()], organization)
    }

    async fn project_get(&mut self, id: &ProjectId) -> Result<Option<ProjectRow>, Error> {
        self.one("SELECT id, org_id, name, ref, created_at FROM projects WHERE id = ?", [id.as_str()], project)
    }

    async fn organization_by_slug(&mut self, slug: &str) -> Result<Option<OrganizationRow>, Error> {
        self.one("SELECT id, title, slug, created_at FROM organizations WHERE slug = ?", [slug], organization)
    }

    async fn project_by_ref(&mut self, reference: &str) -> Result<Option<ProjectRow>, Error> {
        self.one("SELECT id, org_id, name, ref, created_at FROM projects WHERE ref = ?", [reference], project)
    }

    async fn environment_get(&mut self, id: &EnvId) -> Result<Option<EnvironmentRow>, Error> {
        let sql = "SELECT id, project_id, org_id, kind, created_at FROM environments WHERE id = ?";
        self.one(sql, [id.as_str()], environment_columns)?.map(environment).transpose()
    }

    async fn environment_list_by_project(&mut self, project_id: &ProjectId) -> Result<Vec<EnvironmentRow>, Error> {
        let sql = "SELECT id, project_id, org_id, kind, created_at FROM environments WHERE project_id = ? ORDER BY id";
        self.all(sql, [project_id.as_str()], environment_columns)?.into_iter().map(environment).collect()
    }

    async fn api_key_by_hash(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, Error> {
        self.one(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"), [key_hash], api_key)
    }

    async fn api_key_get(&mut self, id: &KeyId) -> Result<Option<ApiKeyRow>, Error> {
        self.one(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?"), [id.as_str()], api_key)
    }

    async fn api_key_list_by_env(&mut self, env_id: &EnvId, prefix: Option<&str>) -> Result<Vec<ApiKeyRow>, Error> {
        // A prefix compared with `substr` rather than `LIKE`, whose `_` would match any character.
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE env_id = ?1 \
             AND (?2 IS NULL OR substr(key_prefix, 1, length(?2)) = ?2) ORDER BY id"
        );
        self.all(&sql, params![env_id.as_str(), prefix], api_key)
    }

    async fn api_key_revoke(&mut self, id: &KeyId, at: Timestamp) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .and_then(|mut s| s.execute(params![at.0, id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn access_token_insert(&mut self, row: &AccessTokenRow) -> Result<(), Error> {
        self.connection
            .prepare_cached(&format!("INSERT INTO access_tokens ({ACCESS_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"))
            .and_then(|mut s| {
                s.execute(params![
                    row.id.as_str(),
                    row.token_hash,
                    row.token_prefix,
                    row.project_id.as_str(),
                    row.name,
                    row.created_at.0,
                    row.revoked_at.map(|t| t.0)
                ])
            })
            .map(drop)
            .map_err(map_error)
    }

    async fn access_token_by_hash(&mut self, token_hash: &str) -> Result<Option<AccessTokenRow>, Error> {
        let sql = format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM access_tokens WHERE token_hash = ?");
        self.one(&sql, [token_hash], access_token)
    }

    async fn access_token_get(&mut self, id: &TokenId) -> Result<Option<AccessTokenRow>, Error> {
        self.one(&format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM access_tokens WHERE id = ?"), [id.as_str()], access_token)
    }

    async fn access_token_list(&mut self, project_id: &ProjectId) -> Result<Vec<AccessTokenRow>, Error> {
        let sql = format!("SELECT {ACCESS_TOKEN_COLUMNS} FROM access_tokens WHERE project_id = ? ORDER BY id");
        self.all(&sql, [project_id.as_str()], access_token)
    }

    async fn access_token_revoke(&mut self, id: &TokenId, at: Timestamp) -> Result<(), Error> {
        self.connection
            .prepare_cached("UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .and_then(|mut s| s.execute(params![at.0, id.as_str()]))
            .map(drop)
            .map_err(map_error)
    }

    async fn admin_token_insert(&mut self, row: &AdminTokenRow) -> Result<(), Error> {
        self.connection
            .prepare_cached("INSERT INTO admin_tokens (id, token_hash, created_at) VALUES (1, ?, ?)")
            .and_then(|mut s| s.execute(params![row.token_hash, row.created_at.0]))
            .map(drop)
            .map_err(map_error)
    }

    async fn admin_token_get(&mut self) -> Result<Option<AdminTokenRow>, Error> {
        self.one("SELECT token_hash, created_at FROM admin_tokens WHERE id = 1", [], |r| {
            Ok(AdminTokenRow { token_hash: r.get(0)?, created_at: Timestamp(r.get(1)?) })
        })
    }
}

/// Every column of `api_keys`, in the order [`api_key`] reads them.
const API_KEY_COLUMNS: &str = "id, key_hash, key_prefix, env_id, name, created_at, revoked_at";
/// Every column of `access_tokens`, in the order [`access_token`] reads them.
const ACCESS_TOKEN_COLUMNS: &str = "id, token_hash, token_prefix, project_id, name, created_at, revoked_at";

impl SqliteTx<'_> {
    /// The first row of a query, if any.
    fn one<T>(
        &self,
        sql: &str,
        values: impl rusqlite::Params,
        read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, Error> {
        self.connection.prepare_cached(sql).and_then(|mut s| s.query_row(values, read).optional()).map_err(map_error)
    }

    /// Every row of a query.
    fn all<T>(
        &self,
        sql: &str,
        values: impl rusqlite::Params,
        read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, Error> {
        let mut statement = self.connection.prepare_cached(sql).map_err(map_error)?;
        let rows = statement.query_map(values, read).map_err(map_error)?;
        rows.collect::<Result<_, _>>().map_err(map_error)
    }
}

fn organization(r: &Row<'_>) -> rusqlite::Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: OrgId::from_stored(r.get(0)?),
        title: r.get(1)?,
        slug: r.get(2)?,
        created_at: Timestamp(r.get(3)?),
    })
}

fn project(r: &Row<'_>) -> rusqlite::Result<ProjectRow> {
    Ok(ProjectRow {
        id: ProjectId::from_stored(r.get(0)?),
        org_id: OrgId::from_stored(r.get(1)?),
        name: r.get(2)?,
        reference: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
    })
}

/// An environment's columns, before its kind is parsed.
type EnvironmentColumns = (String, String, String, String, i64);

fn environment_columns(r: &Row<'_>) -> rusqlite::Result<EnvironmentColumns> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn environment((id, project_id, org_id, kind, created_at): EnvironmentColumns) -> Result<EnvironmentRow, Error> {
    Ok(EnvironmentRow {
        id: EnvId::from_stored(id),
        project_id: ProjectId::from_stored(project_id),
        org_id: OrgId::from_stored(org_id),
        kind: parse(&kind)?,
        created_at: Timestamp(created_at),
    })
}

fn api_key(r: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: KeyId::from_stored(r.get(0)?),
        key_hash: r.get(1)?,
        key_prefix: r.get(2)?,
        env_id: EnvId::from_stored(r.get(3)?),
        name: r.get(4)?,
        created_at: Timestamp(r.get(5)?),
        revoked_at: ts(r.get(6)?),
    })
}

fn access_token(r: &Row<'_>) -> rusqlite::Result<AccessTokenRow> {
    Ok(AccessTokenRow {
        id: TokenId::from_stored(r.get(0)?),
        token_hash: r.get(1)?,
        token_prefix: r.get(2)?,
        project_id: ProjectId::from_stored(r.get(3)?),
        name: r.get(4)?,
        created_at: Timestamp(r.get(5)?),
        revoked_at: ts(r.get(6)?),
    })
}
