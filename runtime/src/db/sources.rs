//! `source_status`: the last known state of each service's keyword source,
//! written by the daemon on every change, read by `koa-dep report sources`
//! and `report errors` (a CLI run elsewhere sees what the daemon saw).

use chrono::NaiveDateTime;

use super::{Db, DbResult, Kind, now};

/// A service's source as last recorded.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct SourceRow {
    pub service: String,
    /// The daemon that recorded it.
    pub owner: String,
    pub instrument: String,
    /// `UP`, `DOWN` (no broadcasts arrive) or `ERROR` (up, but reads or
    /// messages fail).
    pub state: String,
    pub status_code: Option<String>,
    pub message: Option<String>,
    /// When the source entered this state.
    pub since: NaiveDateTime,
    pub updated: NaiveDateTime,
}

impl Db {
    /// Record a service's source state (one row per service).
    pub async fn record_source(&self, row: &SourceRow) -> DbResult<()> {
        let message = row.message.as_deref().map(|m| m.chars().take(500).collect::<String>());
        let updated = now();
        match self.kind() {
            Kind::MySql => execute!(
                self,
                "INSERT INTO source_status (service, owner, instrument, state, status_code, message, since, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE owner = VALUES(owner), instrument = VALUES(instrument), state = VALUES(state), \
                 status_code = VALUES(status_code), message = VALUES(message), since = VALUES(since), updated = VALUES(updated)",
                &row.service,
                &row.owner,
                &row.instrument,
                &row.state,
                &row.status_code,
                &message,
                row.since,
                updated
            )?,
            _ => execute!(
                self,
                "INSERT INTO source_status (service, owner, instrument, state, status_code, message, since, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (service) DO UPDATE SET owner = excluded.owner, instrument = excluded.instrument, state = excluded.state, \
                 status_code = excluded.status_code, message = excluded.message, since = excluded.since, updated = excluded.updated",
                &row.service,
                &row.owner,
                &row.instrument,
                &row.state,
                &row.status_code,
                &message,
                row.since,
                updated
            )?,
        };
        Ok(())
    }

    /// Every recorded source, by service name.
    pub async fn sources(&self) -> DbResult<Vec<SourceRow>> {
        Ok(fetch!(
            self,
            SourceRow,
            fetch_all,
            "SELECT service, owner, instrument, state, status_code, message, since, updated FROM source_status ORDER BY service"
        )?)
    }
}
