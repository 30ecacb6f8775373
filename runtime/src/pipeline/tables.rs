//! Step `tables` (spec §13, §15): the metadata table from the KOA keyword
//! table and the written lev-0 primary header (re-read from disk) plus extra
//! metadata; one extension table per named table HDU (not KCWI). Without a
//! keyword table the step warns METADATA_SCHEMA_MISSING and the rest goes on.

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

    pub(super) fn step_tables(&mut self) -> StepResult {
        self.finish_write()?;
        let koaid = self.koaid.clone().expect("koaid");
        match self.a.keyword_table(&self.instrument) {
            None => self.diag(
                Severity::Warn,
                "METADATA_SCHEMA_MISSING",
                "tables",
                "no keyword-table directory configured (archive.keyword_tables); metadata table not written",
            ),
            Some(Err(e)) => self.diag(Severity::Warn, "METADATA_SCHEMA_MISSING", "tables", e),
            Some(Ok(table)) => {
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
