//! Reconciliation (`koa-dep reconcile --since T`): files in the instrument
//! output folders (each service's `files` globs) modified since T that the
//! database does not know, optionally queued.

use std::path::PathBuf;
use std::time::SystemTime;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::config::{Config, Service};
use crate::db::{Db, queue::Enqueued};

/// A file the database does not know.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Missing {
    pub service: String,
    pub instrument: String,
    pub path: PathBuf,
    /// Row id when `--enqueue` queued it.
    pub queued: Option<i64>,
}

/// Files matching every enabled service's `files` globs, modified in
/// [`from`, `until`) (no upper end when `until` is None), with their service.
pub fn service_files(cfg: &Config, from: SystemTime, until: Option<SystemTime>) -> anyhow::Result<Vec<(&Service, PathBuf)>> {
    let mut out = Vec::new();
    for s in cfg.service.iter().filter(|s| s.enabled) {
        for pattern in &s.files {
            let paths = glob::glob(pattern).map_err(|e| anyhow::anyhow!("service {}: bad glob {pattern:?}: {e}", s.name))?;
            for p in paths.flatten() {
                let t = std::fs::metadata(&p).and_then(|m| m.modified());
                if p.is_file() && t.is_ok_and(|t| t >= from && until.is_none_or(|u| t < u)) {
                    out.push((s, p));
                }
            }
        }
    }
    Ok(out)
}

/// Files of every enabled service modified at or after `since` (UTC) and
/// absent from the database; queued when `enqueue`.
pub async fn reconcile(cfg: &Config, db: &Db, since: NaiveDateTime, enqueue: bool) -> anyhow::Result<Vec<Missing>> {
    let since_sys: SystemTime = DateTime::<Utc>::from_naive_utc_and_offset(since, Utc).into();
    let mut out = Vec::new();
    for (s, p) in service_files(cfg, since_sys, None)? {
        let text = p.display().to_string();
        if db.known_path(&text).await? {
            continue;
        }
        let queued = if enqueue {
            match db.enqueue(&s.instrument, &s.name, &text, None, s.transfer).await? {
                Enqueued::Queued(id) => Some(id),
                _ => None,
            }
        } else {
            None
        };
        out.push(Missing { service: s.name.clone(), instrument: s.instrument.clone(), path: p, queued });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}
