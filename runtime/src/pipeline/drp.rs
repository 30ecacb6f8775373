//! Levels 1 and 2 (spec pipeline.md §4.4–4.5, §20): a DRP row names its
//! KOAID and, in `stage_file`, the DRP output folder. The steps: the row's
//! identity and level folder, `copy_drp_files` (service `DRP`; KPF always:
//! the instrument component's `drp-scan`, the host's listing, its
//! `drp-select`, checked and copied by [`crate::drp`]), `run_lev1` (DEIMOS `RTI` rows: the 2×4
//! mosaic JPEG of the published lev-0 file, rendered by the thumbnail
//! component), the MD5 table and archive size, then the transfer with
//! `ingesttype=lev<N>` (KCWI level 2: one transfer list per night and the
//! ingest call only when the night's last level-2 row has arrived).

use std::path::{Path, PathBuf};

use super::{Job, Pending, Severity, StepResult};
use crate::drp;

impl Job<'_> {
    /// The steps after `record` for a level-1/2 row.
    pub(super) fn execute_drp(&mut self) -> StepResult {
        self.timed("drp_identity", Self::step_drp_identity)?;
        self.timed("copy_drp_files", Self::step_copy_drp_files)?;
        self.timed("run_lev1", Self::step_run_lev1)?;
        self.timed("drp_publish", Self::step_drp_publish)?;
        self.timed("transfer", Self::step_transfer)?;
        Ok(())
    }

    fn level(&self) -> u8 {
        self.row.as_ref().map(|r| r.level as u8).unwrap_or(0)
    }

    /// KOAID from the row, UT date from the KOAID, the level folder.
    fn step_drp_identity(&mut self) -> StepResult {
        let row = self.row.clone().expect("row");
        let Some(koaid) = row.koaid.clone().filter(|k| !k.is_empty()) else {
            return Err(self.stop(Severity::Error, "DB_ID_NOT_FOUND", "drp_identity", format!("level-{} row {} has no KOAID", row.level, row.id)));
        };
        let date = koaid.split('.').nth(1).filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()));
        let Some(date) = date.map(str::to_string) else {
            return Err(self.stop(Severity::Error, "INVALID_KOAID", "drp_identity", format!("{koaid}: no YYYYMMDD date")));
        };
        self.utdate = Some(format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]));
        let dir = self.a.lev_dir(&self.instrument, &date, row.level);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return Err(self.stop(Severity::Error, "WRITE_ERROR", "drp_identity", format!("{}: {e}", dir.display())));
        }
        self.rtui = !koaid.contains("_unp") && !self.instrument.eq_ignore_ascii_case("GUIDER");
        self.log.info(&format!("level {} {koaid} into {}", row.level, dir.display()));
        self.koaid = Some(koaid);
        self.lev0 = Some(dir);
        self.drp_files = Some(Vec::new());
        Ok(())
    }

    /// Service `DRP` (KPF: always): copy the products into the level folder.
    fn step_copy_drp_files(&mut self) -> StepResult {
        let row = self.row.clone().expect("row");
        let is_drp = row.service.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("DRP")) || self.instrument == "KPF";
        if !is_drp {
            return Ok(());
        }
        let koaid = self.koaid.clone().expect("koaid");
        let dir = self.lev0.clone().expect("level dir");
        let stage = row.stage_file.clone().unwrap_or_default();
        let list = self.drp_products(&stage, &koaid)?;
        let mut copied = 0;
        for p in &list {
            let dest = dir.join(&p.rel);
            match drp::copy_product(&p.src, &dest) {
                Ok(true) => copied += 1,
                Ok(false) => {}
                Err(e) => {
                    return Err(self.stop(Severity::Error, "FILE_COPY_ERROR", "copy_drp_files", format!("{} to {}: {e}", p.src.display(), dest.display())));
                }
            }
            self.drp_files.get_or_insert_with(Vec::new).push(dest);
        }
        self.log.info(&format!("{} DRP products ({copied} copied, the rest up to date)", list.len()));
        Ok(())
    }

    /// The component's products of this row ([`drp::select`]).
    fn drp_products(&mut self, stage: &str, koaid: &str) -> Result<Vec<drp::Product>, super::Stop> {
        let ctx = self.context();
        let config = drp::config_files(&self.a.cfg, &self.instrument);
        match drp::select(&self.a.sandbox, &self.component(), &ctx, stage, koaid, &config) {
            Ok((_, products)) => Ok(products),
            Err(e) => {
                let message = match &e {
                    drp::SelectError::NotFound(why) => format!("{koaid} level {}: {why}", self.level()),
                    other => other.to_string(),
                };
                Err(self.stop(Severity::Error, e.code(), "copy_drp_files", message))
            }
        }
    }

    /// DEIMOS `RTI` rows at level 1: the mosaic JPEG of the lev-0 file.
    fn step_run_lev1(&mut self) -> StepResult {
        let row = self.row.clone().expect("row");
        let rti = row.service.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("RTI"));
        if self.level() != 1 || !rti || self.instrument != "DEIMOS" {
            return Ok(());
        }
        let Some(stage) = row.stage_file.clone().filter(|s| Path::new(s).is_file()) else {
            return Err(self.stop(Severity::Error, "FILE_NOT_FOUND", "run_lev1", format!("the lev-0 file {:?} is missing", row.stage_file)));
        };
        self.input = PathBuf::from(stage);
        self.step_load()?;
        self.start_preview();
        self.step_preview()?;
        // the JPEG is the level-1 product
        let pending = std::mem::take(&mut self.pending);
        for Pending { tmp, dest, .. } in pending {
            if let Err(e) = std::fs::rename(&tmp, &dest) {
                return Err(self.stop(Severity::Error, "WRITE_ERROR", "run_lev1", format!("{}: {e}", dest.display())));
            }
            self.drp_files.get_or_insert_with(Vec::new).push(dest);
        }
        Ok(())
    }

    /// The MD5 table of the products and the archive size.
    fn step_drp_publish(&mut self) -> StepResult {
        let koaid = self.koaid.clone().expect("koaid");
        let dir = self.lev0.clone().expect("level dir");
        let mut files = self.drp_files.clone().unwrap_or_default();
        files.sort();
        files.dedup();
        if files.is_empty() {
            return Err(self.stop(Severity::Error, "FILE_NOT_FOUND", "drp_publish", format!("{koaid} level {}: no products", self.level())));
        }
        let (md5_name, total) = match crate::tables::write_md5_table(&dir, &koaid, &files, &self.known_md5) {
            Ok(t) => t,
            Err(e) => return Err(self.stop(Severity::Error, "CREATE_MD5_SUM_ERROR", "drp_publish", e.to_string())),
        };
        self.archsize_mb = Some(total as f64 / 1e6);
        self.products = files.clone();
        self.products.push(md5_name);
        self.drp_files = Some(files);
        Ok(())
    }
}
