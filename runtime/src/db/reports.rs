//! Queries behind the operators' reports: outstanding errors and warnings
//! (honouring the acknowledged flag), stuck jobs, a night's rows, and the
//! PI-notification table `koapi_send` (spec pipeline.md §21).

use chrono::{NaiveDate, NaiveDateTime};

use super::{Db, DbResult, StatusRow, now};

/// Rows of one instrument, status and code.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct CodeGroup {
    pub instrument: String,
    pub status: String,
    pub status_code: Option<String>,
    pub status_code_ipac: Option<String>,
    pub count: i64,
    /// The newest row of the group.
    pub newest_id: i64,
}

/// Row counts of one (level, instrument, status, code).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct StatusCount {
    pub level: i64,
    pub instrument: String,
    pub status: String,
    pub status_code: Option<String>,
    pub count: i64,
}

/// One `koapi_send` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct KoapiRow {
    pub id: i64,
    pub semid: String,
    pub instr: String,
    pub utdate_beg: NaiveDate,
    pub utdate_end: NaiveDate,
    pub send_data: i64,
    pub data_notified: i64,
    pub send_dvd: i64,
    pub dvd_notified: i64,
}

impl Db {
    /// ERROR rows, and archived rows with a warning code, grouped by
    /// instrument, status and code; unacknowledged ones unless `all`.
    pub async fn code_groups(&self, all: bool, instrument: Option<&str>) -> DbResult<Vec<CodeGroup>> {
        Ok(fetch!(
            self,
            CodeGroup,
            fetch_all,
            "SELECT instrument, status, status_code, status_code_ipac, COUNT(*) AS count, MAX(id) AS newest_id FROM koa_status \
             WHERE (status = 'ERROR' OR (status IN ('COMPLETE', 'TRANSFERRED', 'TRANSFERRING') AND status_code IS NOT NULL AND status_code <> '')) \
             AND (acknowledged = 0 OR ? = 1) AND (? IS NULL OR instrument = ?) \
             GROUP BY instrument, status, status_code, status_code_ipac ORDER BY instrument, status, status_code",
            all as i64,
            instrument,
            instrument
        )?)
    }

    /// Counts of every (level, instrument, status, code) (metrics, status page).
    pub async fn status_counts(&self) -> DbResult<Vec<StatusCount>> {
        Ok(fetch!(
            self,
            StatusCount,
            fetch_all,
            "SELECT level, instrument, status, status_code, COUNT(*) AS count FROM koa_status \
             GROUP BY level, instrument, status, status_code ORDER BY level, instrument, status, status_code"
        )?)
    }

    /// Rows of a level and instrument whose KOAID contains `part`, other
    /// than `except`, that are not TRANSFERRED (KCWI level-2 ingest batching).
    pub async fn untransferred_like(&self, level: i64, instrument: &str, part: &str, except: i64) -> DbResult<i64> {
        let like = format!("%{}%", super::like_literal(part));
        Ok(scalar!(
            self,
            i64,
            fetch_one,
            "SELECT COUNT(*) FROM koa_status WHERE level = ? AND instrument = ? AND koaid LIKE ? ESCAPE '!' AND status <> 'TRANSFERRED' AND id <> ?",
            level,
            instrument,
            like,
            except
        )?)
    }

    /// The newest rows (status page).
    pub async fn recent(&self, limit: i64) -> DbResult<Vec<StatusRow>> {
        Ok(fetch!(self, StatusRow, fetch_all, const_format_row!("ORDER BY id DESC LIMIT ?"), limit)?)
    }

    /// Jobs still QUEUED, PROCESSING or TRANSFERRING that were created before `before`.
    pub async fn stuck(&self, before: NaiveDateTime) -> DbResult<Vec<StatusRow>> {
        Ok(fetch!(
            self,
            StatusRow,
            fetch_all,
            const_format_row!("WHERE status IN ('QUEUED', 'PROCESSING', 'TRANSFERRING') AND creation_time < ? ORDER BY id"),
            before
        )?)
    }

    /// Mark rows reviewed; returns how many changed.
    pub async fn acknowledge(&self, ids: &[i64]) -> DbResult<u64> {
        let mut n = 0;
        for id in ids {
            n += execute!(self, "UPDATE koa_status SET acknowledged = 1 WHERE id = ? AND acknowledged = 0", *id)?;
        }
        Ok(n)
    }

    /// Mark every unreviewed row with this code (of one instrument) reviewed.
    pub async fn acknowledge_code(&self, code: &str, instrument: Option<&str>) -> DbResult<u64> {
        Ok(execute!(
            self,
            "UPDATE koa_status SET acknowledged = 1 WHERE status_code = ? AND (? IS NULL OR instrument = ?) AND acknowledged = 0",
            code,
            instrument,
            instrument
        )?)
    }

    /// Level-0 rows of a UT date (by `utdatetime`).
    pub async fn night_rows(&self, utdate: NaiveDate) -> DbResult<Vec<StatusRow>> {
        let like = format!("{}%", utdate.format("%Y-%m-%d"));
        Ok(fetch!(self, StatusRow, fetch_all, const_format_row!("WHERE level = 0 AND CAST(utdatetime AS CHAR) LIKE ? ORDER BY id"), like)?)
    }

    /// The newest `koapi_send` row of a program and instrument.
    pub async fn newest_koapi(&self, semid: &str, instr: &str) -> DbResult<Option<KoapiRow>> {
        Ok(fetch!(
            self,
            KoapiRow,
            fetch_optional,
            "SELECT id, semid, instr, utdate_beg, utdate_end, send_data, data_notified, send_dvd, dvd_notified FROM koapi_send \
             WHERE semid = ? AND instr = ? ORDER BY utdate_beg DESC, id DESC LIMIT 1",
            semid,
            instr
        )?)
    }

    pub async fn insert_koapi(&self, semid: &str, instr: &str, utdate: NaiveDate) -> DbResult<()> {
        execute!(
            self,
            "INSERT INTO koapi_send (semid, instr, utdate_beg, utdate_end, send_data, data_notified, send_dvd, dvd_notified, last_mod) \
             VALUES (?, ?, ?, ?, 1, 0, 1, 0, ?)",
            semid,
            instr,
            utdate,
            utdate,
            now()
        )?;
        Ok(())
    }

    /// Extend a run of nights to `utdate` (and ask for the notification again).
    pub async fn extend_koapi(&self, id: i64, utdate: NaiveDate) -> DbResult<()> {
        execute!(self, "UPDATE koapi_send SET utdate_end = ?, send_data = 1, send_dvd = 1, last_mod = ? WHERE id = ?", utdate, now(), id)?;
        Ok(())
    }

    /// The PI-notification table: rows still to notify, or all.
    pub async fn koapi_rows(&self, all: bool) -> DbResult<Vec<KoapiRow>> {
        Ok(fetch!(
            self,
            KoapiRow,
            fetch_all,
            "SELECT id, semid, instr, utdate_beg, utdate_end, send_data, data_notified, send_dvd, dvd_notified FROM koapi_send \
             WHERE ? = 1 OR (send_data = 1 AND data_notified = 0) ORDER BY utdate_beg, semid, instr",
            all as i64
        )?)
    }
}

/// What `update_koapi_send` does for a night of a program (spec §21), given
/// the program's newest row and today's date.
#[derive(Clone, Debug, PartialEq)]
pub enum KoapiAction {
    Nothing,
    Insert,
    Extend(i64),
}

pub fn koapi_action(newest: Option<&KoapiRow>, utdate: NaiveDate, today: NaiveDate) -> KoapiAction {
    match newest {
        // an old night seen for the first time is not announced
        None if (today - utdate).num_days() > 3 => KoapiAction::Nothing,
        None => KoapiAction::Insert,
        Some(r) => match (utdate - r.utdate_end).num_days() {
            1 => KoapiAction::Extend(r.id),
            d if d > 1 => KoapiAction::Insert,
            _ => KoapiAction::Nothing,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn koapi_rules() {
        let today = d("2024-03-20");
        assert_eq!(koapi_action(None, d("2024-03-18"), today), KoapiAction::Insert);
        assert_eq!(koapi_action(None, d("2024-03-17"), today), KoapiAction::Insert, "3 days is recent");
        assert_eq!(koapi_action(None, d("2024-03-16"), today), KoapiAction::Nothing, "more than 3 days ago");
        let row = KoapiRow { id: 7, semid: "2024A_C272".into(), instr: "NIRES".into(), utdate_beg: d("2024-03-15"), utdate_end: d("2024-03-16"), send_data: 1, data_notified: 1, send_dvd: 1, dvd_notified: 0 };
        assert_eq!(koapi_action(Some(&row), d("2024-03-16"), today), KoapiAction::Nothing, "same night");
        assert_eq!(koapi_action(Some(&row), d("2024-03-17"), today), KoapiAction::Extend(7), "the next night");
        assert_eq!(koapi_action(Some(&row), d("2024-03-19"), today), KoapiAction::Insert, "a later run");
        assert_eq!(koapi_action(Some(&row), d("2024-03-10"), today), KoapiAction::Nothing, "an earlier night");
    }
}
