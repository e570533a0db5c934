use async_trait::async_trait;
use sqlx::postgres::PgRow;
use stint_store::{
    AccessTokenRow, AdminTokenRow, ApiKeyRow, EnvironmentRow, Error, OrganizationRow, ProjectRow, TenancyTable,
};
use stint_types::{EnvId, KeyId, OrgId, ProjectId, Timestamp, TokenId};

use crate::codec::{get, inserted, map_error, parsed, ts, ts_opt};
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

/// Every column of `api_keys`, in the order [`api_key`] reads them.
macro_rules! api_key_columns {
    () => {
        "id, key_hash, key_prefix, env_id, name, created_at, revoked_at"
    };
}

/// Every column of `access_tokens`, in the order [`access_token`] reads them.
macro_rules! access_token_columns {
    () => {
        "id, token_hash, token_prefix, project_id, name, created_at, revoked_at"
    };
}

fn api_key(r: &PgRow) -> Result<ApiKeyRow, Error> {
    Ok(ApiKeyRow {
        id: KeyId::from_stored(get(r, 0)?),
        key_hash: get(r, 1)?,
        key_prefix: get(r, 2)?,
        env_id: EnvId::from_stored(get(r, 3)?),
        name: get(r, 4)?,
        created_at: ts(r, 5)?,
        revoked_at: ts_opt(r, 6)?,
    })
}

fn access_token(r: &PgRow) -> Result<AccessTokenRow, Error> {
    Ok(AccessTokenRow {
        id: TokenId::from_stored(get(r, 0)?),
        token_hash: get(r, 1)?,
        token_prefix: get(r, 2)?,
        project_id: ProjectId::from_stored(get(r, 3)?),
        name: get(r, 4)?,
        created_at: ts(r, 5)?,
        revoked_at: ts_opt(r, 6)?,
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
        let result = sqlx::query(concat!(
            "INSERT INTO api_keys (",
            api_key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
        ))
        .bind(row.id.as_str())
        .bind(&row.key_hash)
        .bind(&row.key_prefix)
        .bind(row.env_id.as_str())
        .bind(&row.name)
        .bind(row.created_at.0)
        .bind(row.revoked_at.map(|t| t.0))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("key {} or a key with prefix {} exists already", row.id, row.key_prefix))
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
        let rows = sqlx::query(concat!("SELECT ", api_key_columns!(), " FROM api_keys ORDER BY created_at, id"))
            .fetch_all(&mut *self.connection)
            .await
            .map_err(map_error)?;
        rows.iter().map(api_key).collect()
    }

    async fn organization_get(&mut self, id: &OrgId) -> Result<Option<OrganizationRow>, Error> {
        let row = sqlx::query("SELECT id, title, slug, created_at FROM organizations WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(organization).transpose()
    }

    async fn project_get(&mut self, id: &ProjectId) -> Result<Option<ProjectRow>, Error> {
        let row = sqlx::query("SELECT id, org_id, name, ref, created_at FROM projects WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(project).transpose()
    }

    async fn organization_by_slug(&mut self, slug: &str) -> Result<Option<OrganizationRow>, Error> {
        let row = sqlx::query("SELECT id, title, slug, created_at FROM organizations WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(organization).transpose()
    }

    async fn project_by_ref(&mut self, reference: &str) -> Result<Option<ProjectRow>, Error> {
        let row = sqlx::query("SELECT id, org_id, name, ref, created_at FROM projects WHERE ref = $1")
            .bind(reference)
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(project).transpose()
    }

    async fn environment_get(&mut self, id: &EnvId) -> Result<Option<EnvironmentRow>, Error> {
        let row = sqlx::query("SELECT id, project_id, org_id, kind, created_at FROM environments WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(environment).transpose()
    }

    async fn environment_list_by_project(&mut self, project_id: &ProjectId) -> Result<Vec<EnvironmentRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, project_id, org_id, kind, created_at FROM environments WHERE project_id = $1 ORDER BY id",
        )
        .bind(project_id.as_str())
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(environment).collect()
    }

    async fn api_key_by_hash(&mut self, key_hash: &str) -> Result<Option<ApiKeyRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(api_key).transpose()
    }

    async fn api_key_get(&mut self, id: &KeyId) -> Result<Option<ApiKeyRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", api_key_columns!(), " FROM api_keys WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(api_key).transpose()
    }

    async fn api_key_list_by_env(&mut self, env_id: &EnvId, prefix: Option<&str>) -> Result<Vec<ApiKeyRow>, Error> {
        // `starts_with` rather than `LIKE`, whose `_` would match any character.
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE env_id = $1 AND ($2::text IS NULL OR starts_with(key_prefix, $2)) ORDER BY id"
        ))
        .bind(env_id.as_str())
        .bind(prefix)
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(api_key).collect()
    }

    async fn api_key_revoke(&mut self, id: &KeyId, at: Timestamp) -> Result<(), Error> {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at.0)
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn access_token_insert(&mut self, row: &AccessTokenRow) -> Result<(), Error> {
        let result = sqlx::query(concat!(
            "INSERT INTO access_tokens (",
            access_token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
        ))
        .bind(row.id.as_str())
        .bind(&row.token_hash)
        .bind(&row.token_prefix)
        .bind(row.project_id.as_str())
        .bind(&row.name)
        .bind(row.created_at.0)
        .bind(row.revoked_at.map(|t| t.0))
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || format!("token {} or a token with prefix {} exists already", row.id, row.token_prefix))
    }

    async fn access_token_by_hash(&mut self, token_hash: &str) -> Result<Option<AccessTokenRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", access_token_columns!(), " FROM access_tokens WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(access_token).transpose()
    }

    async fn access_token_get(&mut self, id: &TokenId) -> Result<Option<AccessTokenRow>, Error> {
        let row = sqlx::query(concat!("SELECT ", access_token_columns!(), " FROM access_tokens WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(access_token).transpose()
    }

    async fn access_token_list(&mut self, project_id: &ProjectId) -> Result<Vec<AccessTokenRow>, Error> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            access_token_columns!(),
            " FROM access_tokens WHERE project_id = $1 ORDER BY id"
        ))
        .bind(project_id.as_str())
        .fetch_all(&mut *self.connection)
        .await
        .map_err(map_error)?;
        rows.iter().map(access_token).collect()
    }

    async fn access_token_revoke(&mut self, id: &TokenId, at: Timestamp) -> Result<(), Error> {
        sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at.0)
            .bind(id.as_str())
            .execute(&mut *self.connection)
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn admin_token_insert(&mut self, row: &AdminTokenRow) -> Result<(), Error> {
        let result = sqlx::query(
            "INSERT INTO admin_tokens (id, token_hash, created_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&row.token_hash)
        .bind(row.created_at.0)
        .execute(&mut *self.connection)
        .await
        .map_err(map_error)?;
        inserted(result, || "the instance has an admin token already".to_string())
    }

    async fn admin_token_get(&mut self) -> Result<Option<AdminTokenRow>, Error> {
        let row = sqlx::query("SELECT token_hash, created_at FROM admin_tokens WHERE id = 1")
            .fetch_optional(&mut *self.connection)
            .await
            .map_err(map_error)?;
        row.as_ref().map(|r| Ok(AdminTokenRow { token_hash: get(r, 0)?, created_at: ts(r, 1)? })).transpose()
    }
}
