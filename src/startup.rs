//! Everything between "config loaded" and "ready to serve": connect, migrate,
//! find the master key, make sure signing keys exist, sync static clients.
//! Each failure names its cause in one line.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};

use crate::config::{Config, decode_master_key, redact_url};
use crate::crypto::seal::MasterKey;
use crate::domain::Clock;
use crate::storage::{ConnectOptions, Db, clients as client_store};

/// Connects and migrates for the server: request-path queries get the
/// configured acquire and statement timeouts.
pub async fn open_db(cfg: &Config) -> anyhow::Result<Db> {
    let opts = ConnectOptions {
        max_connections: cfg.database.max_connections,
        acquire_timeout: Duration::from_millis(cfg.database.acquire_timeout_ms()),
        statement_timeout: Some(Duration::from_millis(cfg.database.statement_timeout_ms)),
    };
    connect(cfg, &opts).await
}

/// Connects and migrates for the CLI, whose long operations keep their own pace.
pub async fn open_db_for_cli(cfg: &Config) -> anyhow::Result<Db> {
    let opts = ConnectOptions { max_connections: 2, acquire_timeout: Duration::from_secs(30), statement_timeout: None };
    connect(cfg, &opts).await
}

/// Connects without migrating (`sesame migrate --check`).
pub async fn open_db_unmigrated(cfg: &Config) -> anyhow::Result<Db> {
    let opts = ConnectOptions { max_connections: 1, acquire_timeout: Duration::from_secs(30), statement_timeout: None };
    let url = cfg.database_url();
    Db::connect(&url, &opts).await.with_context(|| format!("cannot open database {}", redact_url(&url)))
}

/// Connects and migrates, with messages an operator can act on.
async fn connect(cfg: &Config, opts: &ConnectOptions) -> anyhow::Result<Db> {
    let url = cfg.database_url();
    let db = Db::connect(&url, opts).await.with_context(|| format!("cannot open database {}", redact_url(&url)))?;
    db.migrate().await.context("database migration failed")?;
    Ok(db)
}

/// The master key from config, from `master_key_file`, or — for a loopback
/// issuer only — a development key file created beside the SQLite database.
pub fn master_key(cfg: &Config) -> anyhow::Result<MasterKey> {
    if !cfg.master_key.is_empty() {
        let k =
            decode_master_key(cfg.master_key.expose()).map_err(|e| anyhow!("master_key (SESAME_MASTER_KEY): {e}"))?;
        return Ok(MasterKey::new(&k));
    }
    if !cfg.master_key_file.is_empty() {
        let text = std::fs::read_to_string(&cfg.master_key_file).with_context(|| {
            format!("master_key_file (SESAME_MASTER_KEY_FILE): cannot read {}", cfg.master_key_file)
        })?;
        let k = decode_master_key(&text).map_err(|e| anyhow!("master_key_file {}: {e}", cfg.master_key_file))?;
        return Ok(MasterKey::new(&k));
    }
    if !cfg.issuer_is_loopback() {
        return Err(anyhow!(
            "SESAME_MASTER_KEY is required for issuer {} (generate one with `sesame keys new-master-key`)",
            cfg.issuer
        ));
    }
    let path = cfg.dev_master_key_path();
    dev_master_key(&path)
}

fn dev_master_key(path: &Path) -> anyhow::Result<MasterKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let k = decode_master_key(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        return Ok(MasterKey::new(&k));
    }
    let key = crate::crypto::random::bytes::<32>();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(path, &encoded).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "no SESAME_MASTER_KEY set: generated a development master key file; set SESAME_MASTER_KEY for any real deployment"
    );
    Ok(MasterKey::new(&key))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Makes sure one signing key per algorithm exists and the master key opens them.
pub async fn ensure_keys(db: &Db, master: &MasterKey, clock: &Clock) -> anyhow::Result<()> {
    crate::crypto::keygen::check_master_key(db, master)
        .await
        .map_err(|e| anyhow!("{e} (the master key differs from the one the signing keys were sealed with)"))?;
    let made =
        crate::crypto::keygen::ensure_initial(db, master, clock.now()).await.context("generating signing keys")?;
    for k in made {
        tracing::info!(kid = %k.kid, alg = %k.alg, "generated signing key");
    }
    Ok(())
}

/// Mirrors `[[clients]]` from the config into the database.
pub async fn sync_static_clients(db: &Db, cfg: &Config, clock: &Clock) -> anyhow::Result<()> {
    let https = cfg.issuer_url()?.scheme() == "https";
    let mut wanted = Vec::with_capacity(cfg.clients.len());
    for sc in &cfg.clients {
        let v = crate::clients::from_static(sc, https, clock.now()).map_err(|e| anyhow!(e))?;
        for w in v.warnings {
            tracing::warn!(client_id = %v.client.client_id, "{w}");
        }
        wanted.push(v.client);
    }
    client_store::sync_static(db, &wanted).await.context("syncing static clients")?;
    Ok(())
}
