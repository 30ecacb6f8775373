//! Start-up: configuration → job store, sandbox, services → an [`Archiver`].

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::pipeline::Archiver;
use crate::sandbox::{Sandbox, registry::RegistrySpec};

/// Tune glibc's allocator for a long-running archiver:
/// * at most two arenas: jobs use short threads (MD5, lev-0 write, previews)
///   and per-thread arenas kept their freed pages (~40 MiB more resident);
/// * a fixed 1 MiB mmap threshold: glibc otherwise raises the threshold
///   after the first large buffer is freed (up to 32 MiB), so pixel rows,
///   JPEGs and oversized component results land in the heap between small
///   allocations and their pages are never returned (measured: +75 MiB after
///   a few misbehaving components).
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
}

/// The sandbox a configuration describes.
pub fn sandbox(cfg: &Config) -> anyhow::Result<Sandbox> {
    Sandbox::new(RegistrySpec {
        cache_dir: Some(cfg.cache_dir()),
        files: cfg.components.files.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect(),
        limits: cfg.component_limits(),
    })
}

/// Connect everything (must be called inside a tokio runtime).
pub async fn archiver(cfg: Config) -> anyhow::Result<Archiver> {
    std::fs::create_dir_all(&cfg.archive.root)
        .map_err(|e| anyhow::anyhow!("archive root {}: {e}", cfg.archive.root.display()))?;
    let db = Db::connect(&cfg.database.url, cfg.database.max_connections).await?;
    with_db(cfg, db).await
}

/// As [`archiver`], but a database server that does not answer yet is not
/// an error (the daemon starts, and checks the schema when it answers); a
/// refusal (wrong credentials, a schema to adopt) still is.
pub async fn archiver_waiting_for_db(cfg: Config) -> anyhow::Result<Archiver> {
    std::fs::create_dir_all(&cfg.archive.root)
        .map_err(|e| anyhow::anyhow!("archive root {}: {e}", cfg.archive.root.display()))?;
    // a server that does not answer within a few seconds is taken as down
    let first = tokio::time::timeout(std::time::Duration::from_secs(3), Db::connect(&cfg.database.url, cfg.database.max_connections)).await;
    let db = match first.unwrap_or(Err(crate::db::DbError::Sqlx(sqlx::Error::PoolTimedOut))) {
        Ok(db) => db,
        Err(e) if e.is_unavailable() => {
            tracing::warn!("database not answering ({e}): starting without it");
            Db::lazy(&cfg.database.url, cfg.database.max_connections)?
        }
        Err(e) => return Err(e.into()),
    };
    with_db(cfg, db).await
}

async fn with_db(cfg: Config, db: Db) -> anyhow::Result<Archiver> {
    let rt = tokio::runtime::Handle::current();
    let services = crate::services::from_config(&cfg, rt.clone())?;
    let cfg2 = cfg.clone();
    let sandbox = tokio::task::spawn_blocking(move || sandbox(&cfg2)).await??;
    Ok(Archiver::new(cfg, db, Arc::new(sandbox), services, rt))
}
