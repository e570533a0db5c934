//! Tenancy administration: projects, their environments' secret keys and their personal access
//! tokens (`/api/v1/admin/…`, opened by the instance's admin token), and the project-level
//! endpoints personal access tokens open (`/api/v1/projects/{ref}…`).

use serde::{Deserialize, Serialize};

/// `POST /api/v1/admin/projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProjectRequest {
    /// The project's name.
    pub name: String,
    /// The slug of the organization it belongs to, created when missing; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

/// A project, its organization and its environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectObject {
    /// Its id.
    pub id: String,
    /// Its public reference, `proj_…`, used in paths.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The same reference under Trigger.dev's name for it.
    pub external_ref: String,
    /// Its name.
    pub name: String,
    /// Its organization.
    pub organization: OrganizationObject,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Its environments.
    pub environments: Vec<EnvironmentObject>,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationObject {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub title: String,
    /// Its slug.
    pub slug: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// An environment of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentObject {
    /// Its id.
    pub id: String,
    /// `DEVELOPMENT`, `STAGING`, `PRODUCTION` or `PREVIEW`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `dev`, `staging`, `prod` or `preview`.
    pub slug: String,
    /// The environment's secret key: only in the answer to the project's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// `GET /api/v1/admin/projects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectList {
    /// Every project.
    pub data: Vec<ProjectObject>,
}

/// `POST /api/v1/admin/projects/{ref}/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// The environment the key opens: `dev`, `staging`, `prod` or `preview`.
    pub environment: String,
    /// A name for the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A secret key, without its text except in the answer to its creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyObject {
    /// Its id, `key_…`.
    pub id: String,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Its first characters, to tell it apart from the others.
    pub prefix: String,
    /// The slug of the environment it opens.
    pub environment: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// When it was revoked (RFC 3339); a revoked key opens nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The key: only in the answer to its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `GET /api/v1/admin/projects/{ref}/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyList {
    /// The keys, revoked ones included.
    pub data: Vec<KeyObject>,
}

/// `POST /api/v1/admin/projects/{ref}/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A name for the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A personal access token, without its text except in the answer to its creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenObject {
    /// Its id, `pat_…`.
    pub id: String,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Its first characters, to tell it apart from the others.
    pub prefix: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// When it was revoked (RFC 3339); a revoked token opens nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The token, `tr_pat_…`: only in the answer to its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET /api/v1/admin/projects/{ref}/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenList {
    /// The tokens, revoked ones included.
    pub data: Vec<TokenObject>,
}
