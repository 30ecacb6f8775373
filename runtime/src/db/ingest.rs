//! The statements of the IPAC ingest callback ([`crate::ingest`]): IPAC's
//! outcome recorded on a row (conditional, so a replay or a concurrent call
//! cannot reopen a finished row), the level-2 rows of a night, the DRPs'
//! re-queue, and the PI notices (`koa_pi_notify`, whose unique key makes
//! the insert the dedupe).

use chrono::{NaiveDate, NaiveDateTime};

use super::{Db, DbResult, StatusRow, now};

/// IPAC's outcome for one row.
#[derive(Clone, Debug)]
pub struct IpacOutcome<'a> {
    pub ingest_start_time: NaiveDateTime,
    pub ingest_copy_start_time: Option<NaiveDateTime>,
    pub ingest_copy_end_time: Option<NaiveDateTime>,
    pub ingest_end_time: NaiveDateTime,
    /// COMPLETE or ERROR (IPAC's WARNING is COMPLETE with its text).
    pub status: &'static str,
    /// `status_code_ipac`: '' for a clean COMPLETE, else IPAC's text cut to the column's 30 characters.
    pub code_ipac: &'a str,
    /// IPAC's whole text, when there is one (`status_message`).
    pub message: Option<&'a str>,
    /// Replace an earlier answer (`reingest=true`).
    pub reingest: bool,
}

impl Db {
    /// Record IPAC's outcome on row `id` when its status allows it
    /// (TRANSFERRED, ERROR, COMPLETE) and no answer is recorded yet (or
    /// `reingest`); returns whether the row changed.
    pub async fn record_ipac(&self, id: i64, o: &IpacOutcome<'_>) -> DbResult<bool> {
        let n = execute!(
            self,
            "UPDATE koa_status SET ingest_start_time = ?, ingest_copy_start_time = COALESCE(?, ingest_copy_start_time), \
             ingest_copy_end_time = COALESCE(?, ingest_copy_end_time), ingest_end_time = ?, ipac_response_time = ?, status = ?, \
             status_code_ipac = ?, status_message = COALESCE(?, status_message) \
             WHERE id = ? AND status IN ('TRANSFERRED', 'ERROR', 'COMPLETE') AND (? = 1 OR ipac_response_time IS NULL)",
            o.ingest_start_time,
            o.ingest_copy_start_time,
            o.ingest_copy_end_time,
            o.ingest_end_time,
            now(),
            o.status,
            o.code_ipac,
            o.message,
            id,
            i64::from(o.reingest)
        )?;
        Ok(n == 1)
    }

    /// IPAC's four ingest times of a row (start, copy start, copy end, end).
    #[allow(clippy::type_complexity)]
    pub async fn ingest_times(
        &self,
        id: i64,
    ) -> DbResult<Option<(Option<NaiveDateTime>, Option<NaiveDateTime>, Option<NaiveDateTime>, Option<NaiveDateTime>)>> {
        Ok(fetch!(
            self,
            (Option<NaiveDateTime>, Option<NaiveDateTime>, Option<NaiveDateTime>, Option<NaiveDateTime>),
            fetch_optional,
            "SELECT ingest_start_time, ingest_copy_start_time, ingest_copy_end_time, ingest_end_time FROM koa_status WHERE id = ?",
            id
        )?)
    }

    /// Level-2 rows of an instrument whose KOAID has this UT date.
    pub async fn level2_of_night(&self, instrument: &str, utdate: NaiveDate) -> DbResult<Vec<StatusRow>> {
        let like = format!("%.{}.%", utdate.format("%Y%m%d"));
        Ok(fetch!(self, StatusRow, fetch_all, const_format_row!("WHERE level = 2 AND instrument = ? AND koaid LIKE ? ORDER BY id"), instrument, like)?)
    }

    /// A DRP asks to archive a product folder again: the row (already copied
    /// to history by [`Db::archive_and_reset`]) goes back to the queue with
    /// the new folder, unless a job holds it now. Returns whether it did.
    pub async fn requeue_drp(&self, id: i64, datadir: &str) -> DbResult<bool> {
        let n = execute!(
            self,
            "UPDATE koa_status SET status = 'QUEUED', stage_file = ?, ofname = ?, lease_owner = NULL, lease_expiry = NULL, \
             attempts = 0, creation_time = ? WHERE id = ? AND status NOT IN ('QUEUED', 'PROCESSING', 'TRANSFERRING')",
            datadir,
            datadir,
            now(),
            id
        )?;
        Ok(n == 1)
    }

    /// Claim the PI notice of (instrument, program, night, level): false when
    /// it was already sent (the unique key refused the row).
    pub async fn claim_pi_notice(&self, instrument: &str, semid: &str, utdate: NaiveDate, level: i64, email: &str) -> DbResult<bool> {
        let r = execute!(
            self,
            "INSERT INTO koa_pi_notify (instrument, semid, utdate, level, pi_email) VALUES (?, ?, ?, ?, ?)",
            instrument,
            semid,
            utdate,
            level,
            email
        );
        match r {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = super::DbError::from(e);
                if e.is_unique_violation() { Ok(false) } else { Err(e) }
            }
        }
    }

    /// A PI notice that could not be sent: free it for the next callback.
    pub async fn release_pi_notice(&self, instrument: &str, semid: &str, utdate: NaiveDate, level: i64) -> DbResult<()> {
        execute!(
            self,
            "DELETE FROM koa_pi_notify WHERE instrument = ? AND semid = ? AND utdate = ? AND level = ?",
            instrument,
            semid,
            utdate,
            level
        )?;
        Ok(())
    }

    /// Seconds from the end of the transfer to IPAC's answer, per instrument,
    /// of the rows answered in the last day.
    pub async fn ingest_latencies(&self) -> DbResult<Vec<(String, NaiveDateTime, NaiveDateTime)>> {
        let since = now() - chrono::Duration::days(1);
        Ok(fetch!(
            self,
            (String, NaiveDateTime, NaiveDateTime),
            fetch_all,
            "SELECT instrument, xfr_end_time, ipac_response_time FROM koa_status \
             WHERE ipac_response_time >= ? AND xfr_end_time IS NOT NULL ORDER BY id",
            since
        )?)
    }

    /// Rows transferred longer than `minutes` ago that IPAC has not answered.
    pub async fn waiting_for_ipac(&self, minutes: f64) -> DbResult<Vec<StatusRow>> {
        let before = now() - chrono::Duration::seconds((minutes * 60.0) as i64);
        Ok(fetch!(
            self,
            StatusRow,
            fetch_all,
            const_format_row!("WHERE status = 'TRANSFERRED' AND ipac_response_time IS NULL AND xfr_end_time <= ? ORDER BY id LIMIT 100"),
            before
        )?)
    }
}
