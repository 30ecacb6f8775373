//! Step `tables` (spec §13, §15): the metadata table from the KOA keyword
//! table and the written lev-0 primary header (re-read from disk) plus extra
//! metadata; one extension table per named table HDU (not KCWI). The
//! metadata table is required wherever products leave the machine (the
//! reference's create_meta is critical): a job that will transfer without a
//! readable keyword table ends ERROR METADATA_SCHEMA_MISSING, nothing
//! shipped. A local run without one warns; with `archive.metadata = false`
//! the job says once that metadata is off.

use super::{Job, Pending, Severity, StepResult, hvalue};
use crate::fits::{self, HValue, HduKind};
use crate::tables::{ext_table_name, ext_table_text, meta};

impl Job<'_> {
    fn pending_text(&mut self, name: &str, text: &str) -> std::io::Result<()> {
        let lev0 = self.lev0.clone().expect("lev0");
        let tmp = lev0.join(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)?;
        self.pending.push(Pending { tmp, dest: lev0.join(name), md5: None });
        Ok(())
    }

    /// Extra metadata: the component's, plus FILESIZE_MB and SEMID.
    fn extra_meta(&self) -> Vec<(String, HValue)> {
        let mut extra: Vec<(String, HValue)> = self.extra.iter().map(|(k, v)| (k.clone(), hvalue(v))).collect();
        if let Some(mb) = self.filesize_mb {
            extra.push(("FILESIZE_MB".into(), HValue::Float(mb)));
        }
        if let Some(semid) = self.semid() {
            extra.push(("SEMID".into(), HValue::Text(semid)));
        }
        extra
    }

    /// SEMESTER_PROGID when both are known.
    pub(super) fn semid(&self) -> Option<String> {
        let h = &self.file.as_ref()?.hdus.first()?;
        let get = |k: &str| match h.value(k) {
            Some(HValue::Text(s)) if !s.trim().is_empty() && s != "null" => Some(s.trim().to_string()),
            _ => None,
        };
        Some(format!("{}_{}", get("SEMESTER")?, get("PROGID")?))
    }

    /// Whether this job's products will be transferred.
    pub(super) fn will_transfer(&self) -> bool {
        self.opts.transfer.unwrap_or(self.row.as_ref().is_some_and(|r| r.transfer != 0))
    }

    /// No metadata table can be written: fatal when the products will be
    /// transferred, else a warning.
    fn no_keyword_table(&mut self, why: String) -> StepResult {
        if self.will_transfer() {
            return Err(self.stop(
                Severity::Error,
                "METADATA_SCHEMA_MISSING",
                "tables",
                format!("{why}; products are not transferred without a metadata table"),
            ));
        }
        self.diag(Severity::Warn, "METADATA_SCHEMA_MISSING", "tables", format!("{why}; metadata table not written"));
        Ok(())
    }

    pub(super) fn step_tables(&mut self) -> StepResult {
        self.finish_write()?;
        let koaid = self.koaid.clone().expect("koaid");
        match self.a.metadata_table(&self.instrument) {
            // turned off on purpose: said once, plainly, for a local run
            Err(why) if !self.a.cfg.archive.metadata && !self.will_transfer() => {
                self.log.info(&format!("{why}: no metadata table for this file"));
            }
            Err(why) => self.no_keyword_table(why)?,
            Ok(table) => {
                let lev0_tmp = self.pending[0].tmp.clone();
                let header = match fits::load(&lev0_tmp) {
                    Ok(f) => f.hdus.into_iter().next().map(|h| h.cards).unwrap_or_default(),
                    Err(e) => return Err(self.stop(Severity::Error, "METADATA_ERROR", "tables", format!("re-reading lev0: {e}"))),
                };
                let extra = self.extra_meta();
                match meta::build(&table, &header, &extra, &self.keyskips, self.a.cfg.archive.dev) {
                    Ok(m) => {
                        for w in &m.warnings {
                            self.diag(Severity::Warn, w.code, "tables", w.message.clone());
                        }
                        if let Err(e) = self.pending_text(&format!("{koaid}.metadata.table"), &m.text) {
                            return Err(self.stop(Severity::Error, "METADATA_ERROR", "tables", e.to_string()));
                        }
                    }
                    Err(e) => return Err(self.stop(Severity::Error, "METADATA_ERROR", "tables", e.to_string())),
                }
            }
        }
        if self.instrument == "KCWI" {
            return Ok(());
        }
        let tables: Vec<(usize, String)> = self
            .file()
            .hdus
            .iter()
            .filter(|h| matches!(h.kind, HduKind::AsciiTable | HduKind::BinaryTable))
            .filter_map(|h| h.name.clone().map(|n| (h.index, n)))
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        let mut f = match std::fs::File::open(&self.input) {
            Ok(f) => f,
            Err(e) => {
                self.diag(Severity::Warn, "EXT_HEADER_FILE_ERROR", "tables", e.to_string());
                return Ok(());
            }
        };
        for (index, name) in tables {
            let hdu = self.file().hdus[index].clone();
            let text = match fits::table::read_table(&mut f, &hdu) {
                Ok(t) => ext_table_text(&name, &t),
                Err(e) => {
                    self.diag(Severity::Warn, "EXT_HEADER_FILE_ERROR", "tables", format!("HDU {index} {name}: {e}"));
                    break;
                }
            };
            if let Err(e) = self.pending_text(&ext_table_name(&koaid, index, &name), &text) {
                self.diag(Severity::Warn, "EXT_HEADER_FILE_ERROR", "tables", e.to_string());
                break;
            }
        }
        Ok(())
    }
}
