//! The tenancy tree: organizations, projects and environments, the default ones made on first
//! start and the others through the admin API, and the credentials that open them: secret keys
//! (one environment each), personal access tokens (a project's project-level endpoints) and the
//! instance's admin token. Credentials are handed in hashed; their text never reaches the store.

use std::collections::HashMap;

use stint_store::{
    AccessTokenRow, AdminTokenRow, ApiKeyRow, EnvironmentRow, OrganizationRow, ProjectRow, RunListParams, RunRow, Tx,
};
use stint_types::{EnvironmentType, KeyId, Timestamp, TokenId};

use crate::Error;
use crate::ids::Ids;

/// A secret key to create, already hashed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKey {
    /// The environment kind it opens.
    pub kind: EnvironmentType,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// The key's first characters, for display.
    pub prefix: String,
}

/// Creates the default organization and project with a `dev`, `staging` and `prod` environment
/// and the given keys, unless an organization exists already. Returns whether it created them.
pub(crate) async fn bootstrap(tx: &mut dyn Tx, ids: &Ids, now: Timestamp, keys: &[NewKey]) -> Result<bool, Error> {
    if !tx.organization_list().await?.is_empty() {
        return Ok(false);
    }
    let org = OrganizationRow { id: ids.org(now), title: "Default".into(), slug: "default".into(), created_at: now };
    let project_id = ids.project(now);
    let project = ProjectRow {
        reference: project_id.as_str().to_string(),
        id: project_id,
        org_id: org.id.clone(),
        name: "Default".into(),
        created_at: now,
    };
    tx.organization_insert(&org).await?;
    tx.project_insert(&project).await?;
    for kind in EnvironmentType::DEFAULTS {
        let env = EnvironmentRow {
            id: ids.env(now),
            project_id: project.id.clone(),
            org_id: org.id.clone(),
            kind,
            created_at: now,
        };
        tx.environment_insert(&env).await?;
        for key in keys.iter().filter(|k| k.kind == kind) {
            tx.api_key_insert(&key_row(ids, now, key, &env, None)).await?;
        }
    }
    Ok(true)
}

/// The environments every project made through the admin API gets, each with a secret key.
pub const PROJECT_ENVIRONMENTS: [EnvironmentType; 4] =
    [EnvironmentType::Development, EnvironmentType::Staging, EnvironmentType::Production, EnvironmentType::Preview];
/// Longest project, key or token name.
pub const MAX_NAME: usize = 100;
/// Longest organization slug.
pub const MAX_SLUG: usize = 64;

/// A project with its organization and environments.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectView {
    /// The project.
    pub project: ProjectRow,
    /// Its organization.
    pub organization: OrganizationRow,
    /// Its environments, by id.
    pub environments: Vec<EnvironmentRow>,
}

/// A secret key and the kind of the environment it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyView {
    /// The key.
    pub key: ApiKeyRow,
    /// Its environment's kind.
    pub kind: EnvironmentType,
}

/// A personal access token to create, already hashed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToken {
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// The token's first characters, for display.
    pub prefix: String,
}

/// What a start found missing and created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootstrapped {
    /// The default organization, project and environments, with the keys handed in.
    pub tenancy: bool,
    /// The instance's admin token.
    pub admin_token: bool,
}

fn key_row(ids: &Ids, now: Timestamp, key: &NewKey, env: &EnvironmentRow, name: Option<String>) -> ApiKeyRow {
    ApiKeyRow {
        id: ids.key(now),
        key_hash: key.hash.clone(),
        key_prefix: key.prefix.clone(),
        env_id: env.id.clone(),
        name,
        created_at: now,
        revoked_at: None,
    }
}

/// Creates the default tenancy tree with `keys` unless an organization exists, and stores the
/// admin token hashed as `admin_hash` unless the instance has one, together.
pub(crate) async fn bootstrap_instance(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    keys: &[NewKey],
    admin_hash: &str,
) -> Result<Bootstrapped, Error> {
    let tenancy = bootstrap(tx, ids, now, keys).await?;
    let admin_token = match tx.admin_token_get().await? {
        Some(_) => false,
        None => {
            tx.admin_token_insert(&AdminTokenRow { token_hash: admin_hash.to_string(), created_at: now }).await?;
            true
        }
    };
    Ok(Bootstrapped { tenancy, admin_token })
}

/// Checks a project, key or token name: 1 to [`MAX_NAME`] characters, not only spaces.
pub fn check_name(field: &str, name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Error::Invalid(format!("{field} must be 1 to {MAX_NAME} characters")));
    }
    Ok(name.to_string())
}

/// Checks an organization slug: 1 to [`MAX_SLUG`] lower-case letters, digits and `-`.
pub fn check_slug(field: &str, slug: &str) -> Result<(), Error> {
    let fits = (1..=MAX_SLUG).contains(&slug.len())
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !fits {
        return Err(Error::Invalid(format!(
            "{field} must be a slug of 1 to {MAX_SLUG} lower-case letters, digits or '-', got '{slug}'"
        )));
    }
    Ok(())
}

/// Creates a project named `name` in the organization `org_slug` (created when missing), with
/// an environment of each of [`PROJECT_ENVIRONMENTS`] and one of `keys` for each. Returns the
/// project and the keys' rows.
pub(crate) async fn create_project(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    name: &str,
    org_slug: &str,
    keys: &[NewKey],
) -> Result<(ProjectView, Vec<ApiKeyRow>), Error> {
    let name = check_name("name", name)?;
    check_slug("organization", org_slug)?;
    for kind in PROJECT_ENVIRONMENTS {
        if !keys.iter().any(|k| k.kind == kind) {
            return Err(Error::Invalid(format!("no key given for the {} environment", kind.slug())));
        }
    }
    let organization = match tx.organization_by_slug(org_slug).await? {
        Some(org) => org,
        None => {
            let org =
                OrganizationRow { id: ids.org(now), title: org_slug.into(), slug: org_slug.into(), created_at: now };
            tx.organization_insert(&org).await?;
            org
        }
    };
    let project_id = ids.project(now);
    let project = ProjectRow {
        reference: project_id.as_str().to_string(),
        id: project_id,
        org_id: organization.id.clone(),
        name,
        created_at: now,
    };
    tx.project_insert(&project).await?;
    let mut environments = Vec::new();
    let mut rows = Vec::new();
    for kind in PROJECT_ENVIRONMENTS {
        let env = EnvironmentRow {
            id: ids.env(now),
            project_id: project.id.clone(),
            org_id: organization.id.clone(),
            kind,
            created_at: now,
        };
        tx.environment_insert(&env).await?;
        for key in keys.iter().filter(|k| k.kind == kind) {
            let row = key_row(ids, now, key, &env, None);
            tx.api_key_insert(&row).await?;
            rows.push(row);
        }
        environments.push(env);
    }
    Ok((ProjectView { project, organization, environments }, rows))
}

/// The project whose public reference is `reference`.
pub(crate) async fn project(tx: &mut dyn Tx, reference: &str) -> Result<ProjectView, Error> {
    let project =
        tx.project_by_ref(reference).await?.ok_or_else(|| Error::NotFound(format!("Project {reference} not found")))?;
    view(tx, project).await
}

async fn view(tx: &mut dyn Tx, project: ProjectRow) -> Result<ProjectView, Error> {
    let organization = tx.organization_get(&project.org_id).await?.ok_or_else(|| {
        Error::Store(stint_store::Error::Corrupt(format!("project {} has no organization", project.id)))
    })?;
    let environments = tx.environment_list_by_project(&project.id).await?;
    Ok(ProjectView { project, organization, environments })
}

/// Every project, by id.
pub(crate) async fn projects(tx: &mut dyn Tx) -> Result<Vec<ProjectView>, Error> {
    let organizations: HashMap<_, _> = tx.organization_list().await?.into_iter().map(|o| (o.id.clone(), o)).collect();
    let mut environments: HashMap<_, Vec<EnvironmentRow>> = HashMap::new();
    for env in tx.environment_list().await? {
        environments.entry(env.project_id.clone()).or_default().push(env);
    }
    let mut views = Vec::new();
    for project in tx.project_list().await? {
        let organization = organizations.get(&project.org_id).cloned().ok_or_else(|| {
            Error::Store(stint_store::Error::Corrupt(format!("project {} has no organization", project.id)))
        })?;
        let environments = environments.remove(&project.id).unwrap_or_default();
        views.push(ProjectView { project, organization, environments });
    }
    Ok(views)
}

fn environment_of(view: &ProjectView, kind: EnvironmentType) -> Result<&EnvironmentRow, Error> {
    view.environments.iter().find(|e| e.kind == kind).ok_or_else(|| {
        Error::Invalid(format!("environment: project {} has no {} environment", view.project.reference, kind.slug()))
    })
}

/// Adds a secret key to the `key.kind` environment of the project `reference`.
pub(crate) async fn create_key(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    reference: &str,
    name: Option<&str>,
    key: &NewKey,
) -> Result<KeyView, Error> {
    let name = name.map(|n| check_name("name", n)).transpose()?;
    let view = project(tx, reference).await?;
    let env = environment_of(&view, key.kind)?;
    let row = key_row(ids, now, key, env, name);
    tx.api_key_insert(&row).await?;
    Ok(KeyView { key: row, kind: key.kind })
}

/// The secret keys of the project `reference`, revoked ones included, of one environment kind
/// when `kind` is given and whose prefix starts with `prefix` when it is given; by environment,
/// then by id.
pub(crate) async fn keys(
    tx: &mut dyn Tx,
    reference: &str,
    kind: Option<EnvironmentType>,
    prefix: Option<&str>,
) -> Result<Vec<KeyView>, Error> {
    let view = project(tx, reference).await?;
    let mut keys = Vec::new();
    for env in view.environments.iter().filter(|e| kind.is_none_or(|k| e.kind == k)) {
        for key in tx.api_key_list_by_env(&env.id, prefix).await? {
            keys.push(KeyView { key, kind: env.kind });
        }
    }
    Ok(keys)
}

/// Revokes a secret key of the project `reference`: from now on it opens nothing. Revoking it
/// again changes nothing. A key of another project is reported missing.
pub(crate) async fn revoke_key(tx: &mut dyn Tx, now: Timestamp, reference: &str, id: &KeyId) -> Result<KeyView, Error> {
    let view = project(tx, reference).await?;
    let missing = || Error::NotFound(format!("Key {id} not found"));
    let key = tx.api_key_get(id).await?.ok_or_else(missing)?;
    let env = view.environments.iter().find(|e| e.id == key.env_id).ok_or_else(missing)?;
    if key.revoked_at.is_some() {
        return Ok(KeyView { key, kind: env.kind });
    }
    tx.api_key_revoke(id, now).await?;
    Ok(KeyView { key: ApiKeyRow { revoked_at: Some(now), ..key }, kind: env.kind })
}

/// Adds a personal access token to the project `reference`.
pub(crate) async fn create_token(
    tx: &mut dyn Tx,
    ids: &Ids,
    now: Timestamp,
    reference: &str,
    name: Option<&str>,
    token: &NewToken,
) -> Result<AccessTokenRow, Error> {
    let name = name.map(|n| check_name("name", n)).transpose()?;
    let view = project(tx, reference).await?;
    let row = AccessTokenRow {
        id: ids.token(now),
        token_hash: token.hash.clone(),
        token_prefix: token.prefix.clone(),
        project_id: view.project.id,
        name,
        created_at: now,
        revoked_at: None,
    };
    tx.access_token_insert(&row).await?;
    Ok(row)
}

/// The personal access tokens of the project `reference`, revoked ones included, by id.
pub(crate) async fn tokens(tx: &mut dyn Tx, reference: &str) -> Result<Vec<AccessTokenRow>, Error> {
    let view = project(tx, reference).await?;
    Ok(tx.access_token_list(&view.project.id).await?)
}

/// Revokes a personal access token of the project `reference`. Revoking it again changes
/// nothing. A token of another project is reported missing.
pub(crate) async fn revoke_token(
    tx: &mut dyn Tx,
    now: Timestamp,
    reference: &str,
    id: &TokenId,
) -> Result<AccessTokenRow, Error> {
    let view = project(tx, reference).await?;
    let token = match tx.access_token_get(id).await? {
        Some(token) if token.project_id == view.project.id => token,
        _ => return Err(Error::NotFound(format!("Token {id} not found"))),
    };
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    tx.access_token_revoke(id, now).await?;
    Ok(AccessTokenRow { revoked_at: Some(now), ..token })
}

/// The environment the secret key hashed as `key_hash` opens, unless it does not exist or is
/// revoked.
pub(crate) async fn key_environment(tx: &mut dyn Tx, key_hash: &str) -> Result<Option<EnvironmentRow>, Error> {
    match tx.api_key_by_hash(key_hash).await? {
        Some(key) if key.revoked_at.is_none() => Ok(tx.environment_get(&key.env_id).await?),
        _ => Ok(None),
    }
}

/// The project the personal access token hashed as `token_hash` opens, unless it does not exist
/// or is revoked.
pub(crate) async fn token_project(tx: &mut dyn Tx, token_hash: &str) -> Result<Option<ProjectRow>, Error> {
    match tx.access_token_by_hash(token_hash).await? {
        Some(token) if token.revoked_at.is_none() => Ok(tx.project_get(&token.project_id).await?),
        _ => Ok(None),
    }
}

/// Runs of any of `envs` matching `params`, newest first: the page `params` asks for, read in
/// each environment and merged. Pages are by run id, which is unique across environments.
pub(crate) async fn runs_of(
    tx: &mut dyn Tx,
    envs: &[EnvironmentRow],
    params: &RunListParams,
) -> Result<Vec<RunRow>, Error> {
    let mut runs = Vec::new();
    for env in envs {
        let params = RunListParams { env_id: Some(env.id.clone()), ..params.clone() };
        runs.extend(tx.run_list(&params).await?);
    }
    runs.sort_by(|a, b| b.id.cmp(&a.id));
    let limit = params.limit as usize;
    // A page before the cursor is the one nearest it: the oldest of the runs newer than it.
    if params.before.is_some() && params.after.is_none() {
        let extra = runs.len().saturating_sub(limit);
        runs.drain(..extra);
    } else {
        runs.truncate(limit);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slugs_are_checked() {
        assert_eq!(check_name("name", "  Billing ").unwrap(), "Billing");
        assert!(check_name("name", "   ").unwrap_err().to_string().contains("name must be"));
        assert!(check_name("name", &"x".repeat(MAX_NAME + 1)).is_err());
        assert!(check_slug("organization", "acme-2").is_ok());
        for bad in ["", "Acme", "a b", "a_b", &"a".repeat(MAX_SLUG + 1)] {
            let error = check_slug("organization", bad).unwrap_err().to_string();
            assert!(error.starts_with("organization must be a slug"), "{bad}: {error}");
        }
    }
}
