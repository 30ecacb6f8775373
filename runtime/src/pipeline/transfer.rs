//! Step `transfer` (spec §17, critical): after the products are published,
//! ship them to the archive when the job asks for it (its row's transfer
//! flag, or `--notransfer` on the command line) — `<KOAID>.xfr.table`, the
//! destination folder, rsync, the MD5 check at the destination, status
//! TRANSFERRING → TRANSFERRED with `xfr_start_time`/`xfr_end_time`, then the
//! ingest API (`ipac_notify_time`, `ipac_response_time`). Any failure clears
//! `xfr_start_time`, so a retry starts the transfer again.

use std::collections::BTreeMap;

use super::{Job, Severity, StepResult};
use crate::transfer::{self, Destination, Ingested, TransferError};

impl Job<'_> {
    pub(super) fn step_transfer(&mut self) -> StepResult {
        let Some(row) = self.row.clone() else { return Ok(()) };
        if !self.will_transfer() {
            self.log.info("no transfer for this job");
            return Ok(());
        }
        let settings = self.a.cfg.transfer.clone();
        // a transfer asked for but impossible is an error, never a COMPLETE row
        let Some(dest) = settings.destination.as_deref().map(Destination::parse) else {
            return Err(self.stop(
                Severity::Error,
                "TRANSFER_NOT_CONFIGURED",
                "transfer",
                "the job asks for a transfer but transfer.destination is not configured; the products stay here",
            ));
        };
        let koaid = self.koaid.clone().expect("koaid");
        let lev0 = self.lev0.clone().expect("lev0");
        let level = row.level;
        let utdatedir = self.utdate.clone().unwrap_or_default().replace('-', "");
        // the published products: everything of the KOAID plus its MD5 table
        let kcwi_night = level == 2 && self.instrument == "KCWI";
        let mut files = match &self.drp_files {
            Some(f) => f.clone(),
            None => crate::tables::product_files(&lev0, &koaid).unwrap_or_default(),
        };
        let md5_table = lev0.join(format!("{koaid}.md5sum.table"));
        files.push(md5_table.clone());
        if files.len() < 2 {
            return Err(self.stop(Severity::Error, "NO_TRANSFER_FILES", "transfer", format!("no products of {koaid} in {}", lev0.display())));
        }
        if let Some(f) = files.iter().find(|f| !f.is_file()) {
            return Err(self.stop(Severity::Error, "TRANSFER_FILE_MISSING", "transfer", f.display().to_string()));
        }
        // the MD5 of every file as the destination must have it
        let mut expected = BTreeMap::new();
        for f in &files {
            let rel = f.strip_prefix(&lev0).unwrap_or(f).display().to_string();
            let md5 = match self.known_md5.get(f) {
                Some(m) => m.clone(),
                None => match crate::fits::write::md5_file(f) {
                    Ok(m) => m,
                    Err(e) => return Err(self.stop(Severity::Error, "TRANSFER_FILE_MISSING", "transfer", format!("{}: {e}", f.display()))),
                },
            };
            expected.insert(rel, md5);
        }
        match self.a.block(self.a.db.transfer_started(self.id)) {
            Ok(true) => {}
            Ok(false) => {
                return Err(self.stop(Severity::Error, "TRANSFER_BAD_STATUS", "transfer", "a transfer of this row has already started (xfr_start_time is set)"));
            }
            Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "transfer", e.to_string())),
        }
        let to = dest.level_dir(&self.instrument, &utdatedir, level);
        let shipped = (|| -> Result<(), TransferError> {
            // KCWI level 2: one list per night (spec §17.6)
            let table_name = if kcwi_night { format!("{utdatedir}.xfr.table") } else { format!("{koaid}.xfr.table") };
            let table = transfer::write_xfr_table(&lev0, &table_name, &files)
                .map_err(|e| TransferError::NoFiles(format!("writing the transfer list: {e}")))?;
            transfer::make_dir(&settings, &to)?;
            let said = transfer::rsync(&settings, &lev0, &table, &to)?;
            for line in said.lines().filter(|l| !l.trim().is_empty()).take(50) {
                self.log.info(&format!("rsync: {line}"));
            }
            if settings.verify {
                transfer::verify(&settings, &to, &expected)?;
                self.log.info(&format!("{} files verified at {}", expected.len(), to.rsync_target()));
            }
            Ok(())
        })();
        if let Err(e) = shipped {
            let _ = self.a.block(self.a.db.transfer_failed(self.id));
            return Err(self.stop(Severity::Error, e.code(), "transfer", e.to_string()));
        }
        crate::faults::point("transfer:shipped");
        if let Err(e) = self.a.block(self.a.db.transfer_done(self.id, &to.rsync_target())) {
            return Err(self.stop(Severity::Error, "QUERY_ERROR", "transfer", e.to_string()));
        }
        self.transferred = true;
        // KCWI level 2: the night's last row calls the ingest API (spec §17.11)
        if kcwi_night {
            match self.a.block(self.a.db.untransferred_like(2, "KCWI", &utdatedir, self.id)) {
                Ok(0) => {}
                Ok(n) => {
                    self.log.info(&format!("{n} more level-2 KCWI rows of {utdatedir} to come: ingest waits for the last"));
                    return Ok(());
                }
                Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "transfer", e.to_string())),
            }
        }
        // the ingest API
        let Some(api) = settings.ingest_api.clone() else {
            if self.a.cfg.archive.dev {
                self.log.warn("no ingest API configured (DEV): not called");
                return Ok(());
            }
            return Err(self.stop(Severity::Error, "IPAC_API_UNDEFINED", "transfer", "transfer.ingest_api is not configured"));
        };
        let url = transfer::ingest_url(&api, &self.instrument, level, &koaid, &utdatedir, self.opts.reprocess, self.rtui);
        self.log.info(&format!("ingest API: {url}"));
        if let Err(e) = self.a.block(self.a.db.ipac_notified(self.id)) {
            self.log.warn(&format!("recording ipac_notify_time: {e}"));
        }
        let client = reqwest::Client::new();
        match self.a.block(transfer::ingest(&settings, &client, &url)) {
            Ok(answer) => {
                crate::faults::point("transfer:ingested");
                if let Ingested::AlreadyIngested(what) = &answer {
                    self.log.info(&format!("already ingested with the same content: {what}"));
                }
                // the row waits TRANSFERRED for IPAC's callback (`/ingest_api`)
                Ok(())
            }
            Err(e) => {
                let _ = self.a.block(self.a.db.ipac_refused(self.id, e.code()));
                let _ = self.a.block(self.a.db.transfer_failed(self.id));
                Err(self.stop(Severity::Error, e.code(), "transfer", e.to_string()))
            }
        }
    }
}
