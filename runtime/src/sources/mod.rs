//! Keyword sources: where the daemon learns that an instrument wrote a file.
//! Each source runs as a task and sends [`Broadcast`]s; each can also read a
//! keyword's current value (for path formats like `{OUTDIR}/{OUTFILE}…`).
//!
//! * `ktl` — the KTL command-line tool polled at an interval, a value change
//!   being a broadcast;
//! * `mktl` — an mKTL subscriber (ZeroMQ SUB + JSON, DEALER requests);
//! * `watch` — new files in a folder (inotify through the `notify` crate);
//! * `history` — broadcasts replayed from the PostgreSQL keyword history.

pub mod history;
pub mod ktl;
pub mod mktl;
pub mod watch;

use std::future::Future;
use std::pin::Pin;

/// A keyword value change.
#[derive(Clone, Debug, PartialEq)]
pub struct Broadcast {
    /// Unique service name (koa_status.service).
    pub service: String,
    pub keyword: String,
    pub value: String,
    /// Unix seconds of the broadcast.
    pub time: f64,
}

/// Errors of a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Failed(String),
}

/// Reading current keyword values of a service.
pub trait Reader: Send + Sync {
    fn read<'a>(&'a self, keyword: &'a str) -> Pin<Box<dyn Future<Output = Result<String, SourceError>> + Send + 'a>>;
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
