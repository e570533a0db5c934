//! First start: the default organization, project, environments and their secret keys.

use std::io::Write;
use std::path::{Path, PathBuf};

use stint_engine::{Engine, NewKey};
use stint_types::EnvironmentType;

use crate::Error;
use crate::auth::{check_key, generate_key, hash_key, key_prefix};

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

/// Creates the tenancy tree on first start. Keys given in `provided` become the environments'
/// keys; the others are generated, printed once and written, readable only by the owner, to
/// [`KEYS_FILE`] in `data_dir`. On later starts nothing changes; a given key that is not one of
/// the project's is reported.
pub async fn ensure(engine: &Engine, data_dir: &Path, provided: &[(EnvironmentType, String)]) -> Result<(), Error> {
    if !engine.environments().await?.is_empty() {
        let known: Vec<String> = engine.api_keys().await?.into_iter().map(|k| k.key_hash).collect();
        for (kind, key) in provided {
            if !known.contains(&hash_key(key)) {
                tracing::warn!(
                    variable = key_variable(*kind),
                    "this key is not one of the project's: keys in the environment are used only on first start"
                );
            }
        }
        return Ok(());
    }
    for (kind, key) in provided {
        check_key(*kind, key).map_err(|e| Error::Config(format!("{}: {e}", key_variable(*kind))))?;
    }
    let mut keys = Vec::new();
    let mut generated = Vec::new();
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
    let created = match engine.bootstrap(keys).await {
        Ok(created) => created,
        // Another node sharing the database created the project at the same moment.
        Err(stint_engine::Error::Store(stint_store::Error::Duplicate(_))) => false,
        Err(error) => return Err(error.into()),
    };
    if !created || generated.is_empty() {
        return Ok(());
    }
    let file = write_keys(data_dir, &generated)?;
    println!("Created the default project. Its secret keys are shown once here and saved in {}:", file.display());
    for (kind, key) in &generated {
        println!("  {:<8} {key}", kind.slug());
    }
    Ok(())
}

fn write_keys(data_dir: &Path, keys: &[(EnvironmentType, String)]) -> Result<PathBuf, Error> {
    let path = data_dir.join(KEYS_FILE);
    // A file left from an earlier database holds keys that no longer open anything. It is
    // replaced rather than rewritten, so the new one is created readable by its owner only.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io(format!("replacing {}: {e}", path.display()))),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| Error::Io(format!("creating {}: {e}", path.display())))?;
    for (kind, key) in keys {
        writeln!(file, "{}={key}", key_variable(*kind))
            .map_err(|e| Error::Io(format!("writing {}: {e}", path.display())))?;
    }
    Ok(path)
}
