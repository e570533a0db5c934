//! First start: the default organization, project, environments and their secret keys, and the
//! instance's admin token.

use std::io::Write;
use std::path::{Path, PathBuf};

use stint_engine::{Bootstrapped, Engine, NewKey};
use stint_store::AdminTokenRow;
use stint_types::EnvironmentType;

use crate::Error;
use crate::auth::{check_admin_token, check_key, generate_admin_token, generate_key, hash_key, key_prefix};

/// The file in the data directory where generated keys are written, as `NAME=value` lines a
/// shell can source.
pub const KEYS_FILE: &str = "secret-keys.env";

/// The variable that carries each environment's key.
pub fn key_variable(kind: EnvironmentType) -> &'static str {
    match kind {
        EnvironmentType::Development => "STINT_DEV_SECRET_KEY",
        EnvironmentType::Staging => "STINT_STAGING_SECRET_KEY",
        EnvironmentType::Production => "STINT_PROD_SECRET_KEY",
        EnvironmentType::Preview => "STINT_PREVIEW_SECRET_KEY",
    }
}

/// The variable that carries the instance's admin token.
pub const ADMIN_TOKEN_VARIABLE: &str = "STINT_ADMIN_TOKEN";

/// Creates on first start the tenancy tree and the instance's admin token, and on the first start
/// of a database made by an earlier version the admin token it lacks. Keys given in `provided`
/// become the environments' keys and `admin_token`, checked, the admin token; the others are
/// generated, printed once and written, readable only by the owner, to [`KEYS_FILE`] in
/// `data_dir`: the whole file on first start, only its admin token line when the admin token is
/// added to an existing database, so the keys in it are kept. On later starts nothing changes; a
/// given key or admin token that is not the instance's is reported. Returns the admin token row.
pub async fn ensure(
    engine: &Engine,
    data_dir: &Path,
    provided: &[(EnvironmentType, String)],
    admin_token: Option<&str>,
) -> Result<AdminTokenRow, Error> {
    if let Some(token) = admin_token {
        check_admin_token(token).map_err(|e| Error::Config(format!("{ADMIN_TOKEN_VARIABLE}: {e}")))?;
    }
    let admin = admin_token.map_or_else(generate_admin_token, str::to_string);
    let fresh = engine.environments().await?.is_empty();
    let mut keys = Vec::new();
    let mut generated = Vec::new();
    if fresh {
        for (kind, key) in provided {
            check_key(*kind, key).map_err(|e| Error::Config(format!("{}: {e}", key_variable(*kind))))?;
        }
        for kind in EnvironmentType::DEFAULTS {
            let key = match provided.iter().find(|(k, _)| *k == kind) {
                Some((_, key)) => key.clone(),
                None => {
                    let key = generate_key(kind);
                    generated.push((kind, key.clone()));
                    key
                }
            };
            keys.push(NewKey { kind, hash: hash_key(&key), prefix: key_prefix(&key) });
        }
    } else {
        let known: Vec<String> =
            engine.api_keys().await?.into_iter().filter(|k| k.revoked_at.is_none()).map(|k| k.key_hash).collect();
        for (kind, key) in provided {
            if !known.contains(&hash_key(key)) {
                tracing::warn!(
                    variable = key_variable(*kind),
                    "this key is not one of the project's: keys in the environment are used only on first start"
                );
            }
        }
    }
    let made = match engine.bootstrap_instance(keys, hash_key(&admin)).await {
        Ok(made) => made,
        // Another node sharing the database created them at the same moment.
        Err(stint_engine::Error::Store(stint_store::Error::Duplicate(_))) => {
            Bootstrapped { tenancy: false, admin_token: false }
        }
        Err(error) => return Err(error.into()),
    };
    let stored = engine.admin_token().await?.ok_or_else(|| Error::Io("the admin token was not stored".into()))?;
    if admin_token.is_some() && stored.token_hash != hash_key(&admin) {
        tracing::warn!(
            variable = ADMIN_TOKEN_VARIABLE,
            "this is not the instance's admin token: the admin token in the environment is used only when the \
             database has none"
        );
    }
    let new_admin = (made.admin_token && admin_token.is_none()).then_some(admin);
    if made.tenancy && (!generated.is_empty() || new_admin.is_some()) {
        let mut lines: Vec<String> =
            generated.iter().map(|(kind, key)| format!("{}={key}", key_variable(*kind))).collect();
        lines.extend(new_admin.iter().map(|token| format!("{ADMIN_TOKEN_VARIABLE}={token}")));
        let file = replace_file(data_dir, &lines)?;
        let shown = match (generated.is_empty(), new_admin.is_some()) {
            (false, true) => "Its secret keys and the instance's admin token are",
            (false, false) => "Its secret keys are",
            (true, _) => "The instance's admin token is",
        };
        println!("Created the default project. {shown} shown once here and saved in {}:", file.display());
        for (kind, key) in &generated {
            println!("  {:<8} {key}", kind.slug());
        }
        if let Some(token) = &new_admin {
            println!("  {:<8} {token}", "admin");
        }
    } else if let Some(token) = &new_admin {
        let file = set_admin_token_line(data_dir, token)?;
        println!("Created the instance's admin token. It is shown once here and saved in {}:", file.display());
        println!("  {:<8} {token}", "admin");
    }
    Ok(stored)
}

/// Writes `token` as the admin token line of [`KEYS_FILE`], keeping its other lines.
fn set_admin_token_line(data_dir: &Path, token: &str) -> Result<PathBuf, Error> {
    let path = data_dir.join(KEYS_FILE);
    let mut lines: Vec<String> = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .filter(|line| !line.starts_with(&format!("{ADMIN_TOKEN_VARIABLE}=")))
            .map(str::to_string)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::Io(format!("reading {}: {e}", path.display()))),
    };
    lines.push(format!("{ADMIN_TOKEN_VARIABLE}={token}"));
    replace_file(data_dir, &lines)
}

/// Replaces [`KEYS_FILE`] with `lines`. The new file is written beside it, created readable by its
/// owner only, and renamed over it, so the old one is never half written.
fn replace_file(data_dir: &Path, lines: &[String]) -> Result<PathBuf, Error> {
    let path = data_dir.join(KEYS_FILE);
    let temporary = data_dir.join(format!("{KEYS_FILE}.new"));
    let failed = |what: &str, e: std::io::Error| Error::Io(format!("{what} {}: {e}", temporary.display()));
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("removing", e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(|e| failed("creating", e))?;
    for line in lines {
        writeln!(file, "{line}").map_err(|e| failed("writing", e))?;
    }
    file.sync_all().map_err(|e| failed("writing", e))?;
    std::fs::rename(&temporary, &path).map_err(|e| Error::Io(format!("replacing {}: {e}", path.display())))?;
    Ok(path)
}
