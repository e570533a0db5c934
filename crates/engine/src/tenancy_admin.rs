//! The engine's tenancy administration: what the admin API and the credential checks read and
//! change. Credentials come in hashed; the engine never sees their text.

use stint_store::{AccessTokenRow, AdminTokenRow, EnvironmentRow, ProjectRow, RunListParams, RunRow, StoreExt};
use stint_types::{EnvironmentType, KeyId, TokenId};

use crate::Error;
use crate::shell::Engine;
use crate::systems::tenancy::{self, Bootstrapped, KeyView, NewKey, NewToken, ProjectView};

impl Engine {
    /// Creates, together, what a first start needs and does not find: the default organization,
    /// project and environments with `keys` (unless an organization exists) and the admin token
    /// hashed as `admin_hash` (unless the instance has one).
    pub async fn bootstrap_instance(&self, keys: Vec<NewKey>, admin_hash: String) -> Result<Bootstrapped, Error> {
        self.write(move |tx, ctx, _| {
            Box::pin(async move { tenancy::bootstrap_instance(tx, &ctx.ids, ctx.now, &keys, &admin_hash).await })
        })
        .await
    }

    /// The instance's admin token, if it has one.
    pub async fn admin_token(&self) -> Result<Option<AdminTokenRow>, Error> {
        self.store.read(|tx| Box::pin(async move { Ok::<_, Error>(tx.admin_token_get().await?) })).await
    }

    /// Creates a project named `name` in the organization with slug `organization` (created when
    /// missing), with a `dev`, `staging`, `prod` and `preview` environment and one of `keys` each.
    /// Returns the project and the keys' rows.
    pub async fn create_project(
        &self,
        name: String,
        organization: String,
        keys: Vec<NewKey>,
    ) -> Result<(ProjectView, Vec<KeyView>), Error> {
        // Two nodes creating the first project of one organization at once both try to create the
        // organization; the one refused finds it on its second try.
        let mut tries = 0;
        loop {
            tries += 1;
            let (name, organization, keys) = (name.clone(), organization.clone(), keys.clone());
            let created = self
                .write(move |tx, ctx, _| {
                    Box::pin(async move {
                        tenancy::create_project(tx, &ctx.ids, ctx.now, &name, &organization, &keys).await
                    })
                })
                .await;
            match created {
                Err(Error::Store(stint_store::Error::Duplicate(_))) if tries < 2 => continue,
                Err(error) => return Err(error),
                Ok((view, rows)) => {
                    let keys = rows
                        .into_iter()
                        .filter_map(|key| {
                            let kind = view.environments.iter().find(|e| e.id == key.env_id)?.kind;
                            Some(KeyView { key, kind })
                        })
                        .collect();
                    return Ok((view, keys));
                }
            }
        }
    }

    /// Every project, by id.
    pub async fn projects(&self) -> Result<Vec<ProjectView>, Error> {
        self.store.read(|tx| Box::pin(async move { tenancy::projects(tx).await })).await
    }

    /// The project whose public reference is `reference`.
    pub async fn project(&self, reference: &str) -> Result<ProjectView, Error> {
        let reference = reference.to_string();
        self.store.read(move |tx| Box::pin(async move { tenancy::project(tx, &reference).await })).await
    }

    /// Adds a secret key to the `key.kind` environment of the project `reference`.
    pub async fn create_key(&self, reference: &str, name: Option<String>, key: NewKey) -> Result<KeyView, Error> {
        let reference = reference.to_string();
        self.write(move |tx, ctx, _| {
            Box::pin(async move { tenancy::create_key(tx, &ctx.ids, ctx.now, &reference, name.as_deref(), &key).await })
        })
        .await
    }

    /// The secret keys of the project `reference`, revoked ones included: of one environment kind
    /// when `kind` is given, whose prefix starts with `prefix` when it is given.
    pub async fn keys(
        &self,
        reference: &str,
        kind: Option<EnvironmentType>,
        prefix: Option<String>,
    ) -> Result<Vec<KeyView>, Error> {
        let reference = reference.to_string();
        self.store
            .read(move |tx| Box::pin(async move { tenancy::keys(tx, &reference, kind, prefix.as_deref()).await }))
            .await
    }

    /// Revokes a secret key of the project `reference`; revoking it again changes nothing.
    pub async fn revoke_key(&self, reference: &str, id: &KeyId) -> Result<KeyView, Error> {
        let (reference, id) = (reference.to_string(), id.clone());
        self.write(move |tx, ctx, _| Box::pin(async move { tenancy::revoke_key(tx, ctx.now, &reference, &id).await }))
            .await
    }

    /// Adds a personal access token to the project `reference`.
    pub async fn create_token(
        &self,
        reference: &str,
        name: Option<String>,
        token: NewToken,
    ) -> Result<AccessTokenRow, Error> {
        let reference = reference.to_string();
        self.write(move |tx, ctx, _| {
            Box::pin(
                async move { tenancy::create_token(tx, &ctx.ids, ctx.now, &reference, name.as_deref(), &token).await },
            )
        })
        .await
    }

    /// The personal access tokens of the project `reference`, revoked ones included.
    pub async fn tokens(&self, reference: &str) -> Result<Vec<AccessTokenRow>, Error> {
        let reference = reference.to_string();
        self.store.read(move |tx| Box::pin(async move { tenancy::tokens(tx, &reference).await })).await
    }

    /// Revokes a personal access token of the project `reference`; revoking it again changes
    /// nothing.
    pub async fn revoke_token(&self, reference: &str, id: &TokenId) -> Result<AccessTokenRow, Error> {
        let (reference, id) = (reference.to_string(), id.clone());
        self.write(move |tx, ctx, _| Box::pin(async move { tenancy::revoke_token(tx, ctx.now, &reference, &id).await }))
            .await
    }

    /// The environment the secret key hashed as `key_hash` opens, unless it does not exist or is
    /// revoked.
    pub async fn key_environment(&self, key_hash: &str) -> Result<Option<EnvironmentRow>, Error> {
        let key_hash = key_hash.to_string();
        self.store.read(move |tx| Box::pin(async move { tenancy::key_environment(tx, &key_hash).await })).await
    }

    /// The project the personal access token hashed as `token_hash` opens, unless it does not
    /// exist or is revoked.
    pub async fn token_project(&self, token_hash: &str) -> Result<Option<ProjectRow>, Error> {
        let token_hash = token_hash.to_string();
        self.store.read(move |tx| Box::pin(async move { tenancy::token_project(tx, &token_hash).await })).await
    }

    /// Runs of any of `envs` matching `params`, newest first, paged as [`Engine::runs`] pages one
    /// environment's. `params.env_id` is ignored.
    pub async fn runs_in(&self, envs: &[EnvironmentRow], params: RunListParams) -> Result<Vec<RunRow>, Error> {
        let envs = envs.to_vec();
        self.store.read(move |tx| Box::pin(async move { tenancy::runs_of(tx, &envs, &params).await })).await
    }
}
