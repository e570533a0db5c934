//! The tenancy tree: the default organization, project and environments made on first start.

use stint_store::{ApiKeyRow, EnvironmentRow, OrganizationRow, ProjectRow, Tx};
use stint_types::{EnvironmentType, Timestamp};

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
            tx.api_key_insert(&ApiKeyRow {
                key_hash: key.hash.clone(),
                key_prefix: key.prefix.clone(),
                env_id: env.id.clone(),
                created_at: now,
            })
            .await?;
        }
    }
    Ok(true)
}
