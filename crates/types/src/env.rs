//! Environment kinds and the secret-key prefixes that name them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvironmentType {
    /// A developer's machine.
    Development,
    /// Pre-production.
    Staging,
    /// Production.
    Production,
    /// A preview branch.
    Preview,
}

impl EnvironmentType {
    /// The environment kinds every project gets on creation.
    pub const DEFAULTS: [EnvironmentType; 3] =
        [EnvironmentType::Development, EnvironmentType::Staging, EnvironmentType::Production];

    /// The short name used in URLs and CLI flags (`dev`, `staging`, `prod`, `preview`).
    pub fn slug(self) -> &'static str {
        match self {
            EnvironmentType::Development => "dev",
            EnvironmentType::Staging => "staging",
            EnvironmentType::Production => "prod",
            EnvironmentType::Preview => "preview",
        }
    }

    /// The stored name (`DEVELOPMENT`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentType::Development => "DEVELOPMENT",
            EnvironmentType::Staging => "STAGING",
            EnvironmentType::Production => "PRODUCTION",
            EnvironmentType::Preview => "PREVIEW",
        }
    }

    /// The prefix of this kind's secret keys, as Trigger.dev writes them.
    pub fn secret_key_prefix(self) -> &'static str {
        match self {
            EnvironmentType::Development => "tr_dev_",
            EnvironmentType::Staging => "tr_stg_",
            EnvironmentType::Production => "tr_prod_",
            EnvironmentType::Preview => "tr_preview_",
        }
    }
}

impl fmt::Display for EnvironmentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnvironmentType {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        [EnvironmentType::Development, EnvironmentType::Staging, EnvironmentType::Production, EnvironmentType::Preview]
            .into_iter()
            .find(|kind| kind.as_str() == text || kind.slug() == text)
            .ok_or_else(|| format!("unknown environment '{text}': expected dev, staging, prod or preview"))
    }
}
