//! Start-up: configuration → job store, sandbox, services → an [`Archiver`].

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::pipeline::Archiver;
use crate::sandbox::{Sandbox, registry::RegistrySpec};

/// Keep glibc from creating an allocation arena per thread: jobs use short
/// threads (MD5, lev-0 write, previews) and per-thread arenas kept their
/// freed pages, raising the daemon's resident memory by ~40 MiB.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
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
    let rt = tokio::runtime::Handle::current();
    let services = crate::services::from_config(&cfg, rt.clone())?;
    let cfg2 = cfg.clone();
    let sandbox = tokio::task::spawn_blocking(move || sandbox(&cfg2)).await??;
    Ok(Archiver::new(cfg, db, Arc::new(sandbox), services, rt))
}
