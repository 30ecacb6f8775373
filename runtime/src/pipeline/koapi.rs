//! Step `koapi` (spec §21, non-critical, after the transfer): the
//! PI-notification bookkeeping in `koapi_send` — a new run of nights for a
//! program's first recent night, extended night by night. Reference defect
//! #46 fixed (the date arithmetic is done on dates, not on text).

use super::{Job, Severity, StepResult};
use crate::db::reports::{KoapiAction, koapi_action};

impl Job<'_> {
    pub(super) fn step_koapi(&mut self) -> StepResult {
        let warn = |j: &mut Self, m: String| j.diag(Severity::Warn, "CHECK_KOAPI_SEND_ERROR", "koapi", m);
        let Some(semid) = self.semid() else {
            warn(self, "No SEMID defined.".into());
            return Ok(());
        };
        let parts: Vec<&str> = semid.split('_').collect();
        if parts.len() != 2 {
            warn(self, format!("Incorrect format for SEMID {semid}"));
            return Ok(());
        }
        if matches!(parts[1].to_uppercase().as_str(), "NONE" | "NULL" | "ENG") {
            return Ok(());
        }
        let Some(utdate) = self.utdate.as_deref().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else {
            warn(self, format!("no UT date for {semid}"));
            return Ok(());
        };
        let instr = self.instrument.clone();
        let today = chrono::Utc::now().date_naive();
        let done = self.a.block(async {
            let newest = self.a.db.newest_koapi(&semid, &instr).await?;
            match koapi_action(newest.as_ref(), utdate, today) {
                KoapiAction::Nothing => Ok("nothing to record"),
                KoapiAction::Insert => self.a.db.insert_koapi(&semid, &instr, utdate).await.map(|_| "new run of nights"),
                KoapiAction::Extend(id) => self.a.db.extend_koapi(id, utdate).await.map(|_| "run extended"),
            }
        });
        match done {
            Ok(what) => self.log.info(&format!("koapi_send {semid} {instr} {utdate}: {what}")),
            Err(e) => warn(self, format!("{utdate}, {semid}, {instr}: {e}")),
        }
        Ok(())
    }
}
