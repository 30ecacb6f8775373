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

/// Errors of a source, each with its status code ([`SourceError::code`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// The source could not start or lost its peer (connect, discovery,
    /// subscription): `KTL_START_ERROR`.
    #[error("{0}")]
    Start(String),
    /// A keyword read failed (no answer, the peer's error): `KTL_READ_ERROR`.
    #[error("{0}")]
    Read(String),
    /// The peer sent what this client cannot use (malformed frames, another
    /// protocol version, non-JSON payloads): `KTL_PROTOCOL_ERROR`.
    #[error("{0}")]
    Protocol(String),
    /// Connected, but not one broadcast (not even the heartbeat) within the
    /// heartbeat period: `KTL_SOURCE_SILENT`.
    #[error("{0}")]
    Silent(String),
    /// The store does not have a configured key (its broadcasts will never
    /// come): `KTL_UNKNOWN_KEY`.
    #[error("{0}")]
    UnknownKey(String),
}

impl SourceError {
    /// The status code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Start(_) => "KTL_START_ERROR",
            SourceError::Read(_) => "KTL_READ_ERROR",
            SourceError::Protocol(_) => "KTL_PROTOCOL_ERROR",
            SourceError::Silent(_) => "KTL_SOURCE_SILENT",
            SourceError::UnknownKey(_) => "KTL_UNKNOWN_KEY",
        }
    }

    /// Whether the source is down after this error (no broadcasts arrive).
    pub fn is_down(&self) -> bool {
        matches!(self, SourceError::Start(_) | SourceError::Silent(_))
    }
}

/// What a source tells the daemon about itself (besides broadcasts).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceEvent {
    /// Unique service name.
    pub service: String,
    pub state: SourceState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SourceState {
    /// Broadcasts arrive (from where).
    Up(String),
    Failed(SourceError),
    /// A lasting problem of this code is over (a read worked again; the
    /// catalog lists every configured key).
    Cleared(&'static str),
}

/// The channel a source reports its state on.
pub type Events = tokio::sync::mpsc::Sender<SourceEvent>;

/// Send a state change of `service` (the daemon may be gone: ignored).
pub async fn tell(events: &Events, service: &str, state: SourceState) {
    let _ = events.send(SourceEvent { service: service.to_string(), state }).await;
}

/// Reading current keyword values of a service.
pub trait Reader: Send + Sync {
    fn read<'a>(&'a self, keyword: &'a str) -> Pin<Box<dyn Future<Output = Result<String, SourceError>> + Send + 'a>>;
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
