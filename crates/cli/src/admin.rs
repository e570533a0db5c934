//! `stint projects …`, `stint keys …`, `stint tokens …` and `stint environments …`: the admin
//! API, with the instance's admin token.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets};
use stint_protocol::admin::{
    CreateKeyRequest, CreateProjectRequest, CreateTokenRequest, KeyList, KeyObject, ProjectList, ProjectObject,
    TokenList, TokenObject,
};
use stint_protocol::environments::{EnvironmentLimits, SetEnvironmentLimits};

use crate::client::Client;

/// Where the server is and the admin token to use.
#[derive(Args, Clone)]
pub struct AdminConnection {
    /// The server's URL.
    #[arg(long, visible_alias = "url", env = "STINT_API_URL", default_value = "http://127.0.0.1:3030", global = true)]
    pub api_url: String,
    /// The instance's admin token (`stint_admin_…`), printed at the server's first start and
    /// saved in its data directory's `secret-keys.env`.
    #[arg(long, env = "STINT_ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<String>,
}

impl AdminConnection {
    fn client(&self) -> anyhow::Result<Client> {
        let token = self
            .admin_token
            .clone()
            .context("no admin token: set STINT_ADMIN_TOKEN or pass --admin-token (see secret-keys.env)")?;
        Ok(Client::with_credential(&self.api_url, token))
    }
}

/// `stint projects …`.
#[derive(Subcommand)]
pub enum ProjectsCommand {
    /// Create a project with dev, staging, prod and preview environments, and print their keys.
    Create {
        /// The project's name.
        name: String,
        /// The slug of its organization, created when missing.
        #[arg(long, default_value = "default")]
        organization: String,
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// List the projects.
    List {
        #[command(flatten)]
        connection: AdminConnection,
    },
}

/// `stint keys …`: the secret keys of a project's environments.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a secret key to an environment and print it.
    Create {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// The environment: dev, staging, prod or preview.
        #[arg(long)]
        env: String,
        /// A name for the key.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// List a project's keys, revoked ones included.
    List {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// Only the keys of this environment.
        #[arg(long)]
        env: Option<String>,
        /// Only the keys whose prefix starts with this.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// Revoke a key: it opens nothing from now on.
    Revoke {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// The key's id (`key_…`).
        id: String,
        #[command(flatten)]
        connection: AdminConnection,
    },
}

/// `stint environments …`: an environment's concurrency limit, burst factor and pause.
#[derive(Subcommand)]
pub enum EnvironmentsCommand {
    /// Show an environment's limits and how many of its runs execute now.
    Get {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// The environment: dev, staging, prod or preview.
        #[arg(long)]
        env: String,
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// Change an environment's limits or pause it; what is not given stays.
    Set {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// The environment: dev, staging, prod or preview.
        #[arg(long)]
        env: String,
        /// Most runs of one queue at once (the environment's queues together: this times the
        /// burst factor), or `none` for no limit.
        #[arg(long)]
        concurrency_limit: Option<String>,
        /// The burst factor, from 1.
        #[arg(long)]
        burst_factor: Option<f64>,
        /// Pause the environment: none of its queues starts a run.
        #[arg(long, conflicts_with = "resume")]
        pause: bool,
        /// Resume a paused environment.
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        connection: AdminConnection,
    },
}

/// Runs a `stint environments` subcommand.
pub async fn environments(command: EnvironmentsCommand) -> anyhow::Result<()> {
    let limits: EnvironmentLimits = match command {
        EnvironmentsCommand::Get { project, env, connection } => {
            connection.client()?.get(&environment_path(&project, &env)?, &[]).await?
        }
        EnvironmentsCommand::Set { project, env, concurrency_limit, burst_factor, pause, resume, connection } => {
            let concurrency_limit = match concurrency_limit.as_deref() {
                None => None,
                Some("none") => Some(serde_json::Value::Null),
                Some(text) => Some(serde_json::Value::from(
                    text.parse::<u32>()
                        .with_context(|| format!("--concurrency-limit: '{text}' is not a number or none"))?,
                )),
            };
            let paused = (pause || resume).then_some(pause);
            let change = SetEnvironmentLimits { concurrency_limit, burst_factor, paused };
            connection.client()?.patch(&environment_path(&project, &env)?, &change).await?
        }
    };
    let limit = |n: Option<u32>| n.map_or_else(|| "none".to_string(), |n| n.to_string());
    println!("environment      {} ({})", limits.slug, limits.id);
    println!(
        "concurrency      {} (burst factor {}, {} in all)",
        limit(limits.concurrency_limit),
        limits.burst_factor,
        limit(limits.burst_limit)
    );
    println!("paused           {}", limits.paused);
    println!("running          {}", limits.running);
    Ok(())
}

fn environment_path(project: &str, env: &str) -> anyhow::Result<String> {
    Ok(format!("{}/environments/{}", project_path(project)?, segment("environment", env)?))
}

/// `stint tokens …`: a project's personal access tokens.
#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a personal access token and print it.
    Create {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// A name for the token.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// List a project's tokens, revoked ones included.
    List {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        #[command(flatten)]
        connection: AdminConnection,
    },
    /// Revoke a token: it opens nothing from now on.
    Revoke {
        /// The project's ref (`proj_…`).
        #[arg(long)]
        project: String,
        /// The token's id (`pat_…`).
        id: String,
        #[command(flatten)]
        connection: AdminConnection,
    },
}

/// The line printed under a revealed key or token.
const SHOWN_ONCE: &str = "This is shown only now: store it safely, it cannot be retrieved again.";

/// Runs a `stint projects` subcommand.
pub async fn projects(command: ProjectsCommand) -> anyhow::Result<()> {
    match command {
        ProjectsCommand::Create { name, organization, connection } => {
            let request = CreateProjectRequest { name, organization: Some(organization) };
            let project: ProjectObject = connection.client()?.post("/api/v1/admin/projects", &request).await?;
            println!(
                "Created project {} ({}) in organization {}.",
                project.name, project.reference, project.organization.slug
            );
            let mut table = new_table(["environment", "secret key"]);
            for env in &project.environments {
                table.add_row([env.slug.clone(), env.api_key.clone().unwrap_or_default()]);
            }
            println!("{table}");
            println!("These secret keys are shown only now: store them safely, they cannot be retrieved again.");
        }
        ProjectsCommand::List { connection } => {
            let list: ProjectList = connection.client()?.get("/api/v1/admin/projects", &[]).await?;
            let mut table = new_table(["ref", "name", "organization", "environments", "created"]);
            for project in &list.data {
                let envs: Vec<&str> = project.environments.iter().map(|e| e.slug.as_str()).collect();
                table.add_row([
                    project.reference.clone(),
                    project.name.clone(),
                    project.organization.slug.clone(),
                    envs.join(","),
                    project.created_at.clone(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

/// Runs a `stint keys` subcommand.
pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { project, env, name, connection } => {
            let path = format!("{}/keys", project_path(&project)?);
            let request = CreateKeyRequest { environment: env, name };
            let key: KeyObject = connection.client()?.post(&path, &request).await?;
            println!("Created key {} ({}) for the {} environment:", key.id, key.prefix, key.environment);
            println!("{}", key.key.as_deref().unwrap_or_default());
            println!("{SHOWN_ONCE}");
        }
        KeysCommand::List { project, env, prefix, connection } => {
            let path = format!("{}/keys", project_path(&project)?);
            let query: Vec<(String, String)> = [("environment", env), ("prefix", prefix)]
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_string(), value?)))
                .collect();
            let list: KeyList = connection.client()?.get(&path, &query).await?;
            let mut table = new_table(["id", "name", "environment", "prefix", "created", "revoked"]);
            for key in &list.data {
                table.add_row([
                    key.id.clone(),
                    key.name.clone().unwrap_or_default(),
                    key.environment.clone(),
                    key.prefix.clone(),
                    key.created_at.clone(),
                    key.revoked_at.clone().unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
        KeysCommand::Revoke { project, id, connection } => {
            let path = format!("{}/keys/{}", project_path(&project)?, segment("key id", &id)?);
            let key: KeyObject = connection.client()?.delete(&path).await?;
            println!("Revoked key {} ({}) at {}.", key.id, key.prefix, key.revoked_at.unwrap_or_default());
        }
    }
    Ok(())
}

/// Runs a `stint tokens` subcommand.
pub async fn tokens(command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create { project, name, connection } => {
            let path = format!("{}/tokens", project_path(&project)?);
            let token: TokenObject = connection.client()?.post(&path, &CreateTokenRequest { name }).await?;
            println!("Created personal access token {} ({}) for project {project}:", token.id, token.prefix);
            println!("{}", token.token.as_deref().unwrap_or_default());
            println!("{SHOWN_ONCE}");
        }
        TokensCommand::List { project, connection } => {
            let path = format!("{}/tokens", project_path(&project)?);
            let list: TokenList = connection.client()?.get(&path, &[]).await?;
            let mut table = new_table(["id", "name", "prefix", "created", "revoked"]);
            for token in &list.data {
                table.add_row([
                    token.id.clone(),
                    token.name.clone().unwrap_or_default(),
                    token.prefix.clone(),
                    token.created_at.clone(),
                    token.revoked_at.clone().unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
        TokensCommand::Revoke { project, id, connection } => {
            let path = format!("{}/tokens/{}", project_path(&project)?, segment("token id", &id)?);
            let token: TokenObject = connection.client()?.delete(&path).await?;
            println!("Revoked token {} ({}) at {}.", token.id, token.prefix, token.revoked_at.unwrap_or_default());
        }
    }
    Ok(())
}

fn project_path(project: &str) -> anyhow::Result<String> {
    Ok(format!("/api/v1/admin/projects/{}", segment("project ref", project)?))
}

/// Text to put in a path: refs and ids are letters, digits and `_`.
fn segment<'a>(what: &str, text: &'a str) -> anyhow::Result<&'a str> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        bail!("'{text}' is not a {what}: expected letters, digits and '_'");
    }
    Ok(text)
}

fn new_table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(header);
    table
}
