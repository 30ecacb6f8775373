//! Resume, not redo (issue 13): a level-0 job that comes back after a crash
//! or a database outage continues from its last durable step instead of
//! running again from the start.
//!
//! The commit point of a product set is its MD5 table (`publish`), so a row
//! that holds a KOAID whose `<KOAID>.md5sum.table` exists — whether or not
//! `last_step = 'published'` reached the database — has published products.
//! They are verified against the table and never rewritten: the job records
//! what was not recorded (headers row, stage copy, follow-ups), then runs the
//! transfer and the ingest call again (rsync sends only what is missing, and
//! the destination is verified) and records its outcome. A table that no
//! longer matches its files ends the job ERROR `PUBLISHED_PRODUCTS_CHANGED`
//! for an operator: nothing is overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Job, Severity, StepResult};

/// `<lev0>/<koaid>.md5sum.table` read back: MD5 by path.
fn read_md5_table(lev0: &Path, koaid: &str) -> Option<std::io::Result<BTreeMap<PathBuf, String>>> {
    let table = lev0.join(format!("{koaid}.md5sum.table"));
    let text = match std::fs::read_to_string(&table) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e)),
    };
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once("  ") {
            Some((md5, rel)) if md5.len() == 32 => {
                out.insert(lev0.join(rel), md5.to_string());
            }
            _ => return Some(Err(std::io::Error::other(format!("{}: malformed line {line:?}", table.display())))),
        }
    }
    Some(Ok(out))
}

/// The UT date folder (`YYYYMMDD`) of a KOAID (`II.YYYYMMDD.sssss.ss`).
pub(crate) fn koaid_date(koaid: &str) -> Option<&str> {
    koaid.split('.').nth(1).filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
}

impl Job<'_> {
    /// Where this row's products were published, when they were: the row
    /// holds a KOAID and its MD5 table exists. Not for reprocessing (which
    /// means to redo) nor for dry runs.
    pub(super) fn published_before(&self) -> Option<PathBuf> {
        let row = self.row.as_ref()?;
        if self.opts.reprocess || self.opts.dry_run || row.level != 0 {
            return None;
        }
        let koaid = row.koaid.as_deref()?;
        let mut places = vec![self.a.lev_dir(&self.instrument, koaid_date(koaid)?, 0)];
        places.extend(row.process_dir.as_deref().map(PathBuf::from));
        places.into_iter().find(|d| d.join(format!("{koaid}.md5sum.table")).is_file())
    }

    /// Continue a job whose products are published (see the module head).
    pub(super) fn resume(&mut self, lev0: PathBuf) -> StepResult {
        let row = self.row.clone().expect("record ran");
        let koaid = row.koaid.clone().expect("published rows hold a KOAID");
        self.log.info(&format!(
            "resuming after {}: the products of {koaid} are published in {}; verifying, not rewriting",
            row.last_step.as_deref().unwrap_or("an unrecorded publish"),
            lev0.display()
        ));
        let t = std::time::Instant::now();
        let published = self.verify_published(&lev0, &koaid);
        self.timings.push(("verify".into(), t.elapsed().as_secs_f64()));
        let md5 = published?;
        let product = lev0.join(format!("{koaid}.fits"));
        match crate::fits::load(&product) {
            Ok(f) => self.file = Some(f),
            Err(e) => return Err(self.stop(Severity::Error, "PUBLISHED_PRODUCTS_CHANGED", "resume", format!("{}: {e}", product.display()))),
        }
        let date = koaid_date(&koaid).unwrap_or_default();
        self.utdate = Some(format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..]));
        self.koaid = Some(koaid.clone());
        self.lev0 = Some(lev0.clone());
        self.filesize_mb = std::fs::metadata(&product).ok().map(|m| koa_pyfmt::round_to(m.len() as f64 / 1e6, 4));
        let total: u64 = md5.keys().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        self.archsize_mb = Some(total as f64 / 1e6);
        self.products = md5.keys().cloned().collect();
        self.products.push(lev0.join(format!("{koaid}.md5sum.table")));
        self.known_md5 = md5;
        // what the crash may have left unrecorded
        self.resume_stage_copy();
        let _ = self.timed("bookkeeping", |j| {
            j.resume_bookkeeping(&koaid);
            Ok(())
        });
        if let Err(e) = self.a.block(self.a.db.set_step(self.id, "published")) {
            self.log.warn(&format!("recording the published step: {e}"));
        }
        self.timed("transfer", Self::step_transfer)?;
        self.timed("koapi", Self::step_koapi)?;
        Ok(())
    }

    /// Every file the MD5 table lists is there with its MD5, and no product
    /// of the KOAID is missing from the table. Returns the table's MD5s by path.
    fn verify_published(&mut self, lev0: &Path, koaid: &str) -> Result<BTreeMap<PathBuf, String>, super::Stop> {
        let md5 = match read_md5_table(lev0, koaid) {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(self.stop(Severity::Error, "PUBLISHED_PRODUCTS_CHANGED", "resume", e.to_string())),
            None => return Err(self.stop(Severity::Error, "PUBLISHED_PRODUCTS_CHANGED", "resume", format!("{koaid}.md5sum.table is gone"))),
        };
        for (path, want) in &md5 {
            match crate::fits::write::md5_file(path) {
                Ok(got) if &got == want => {}
                Ok(got) => {
                    return Err(self.stop(
                        Severity::Error,
                        "PUBLISHED_PRODUCTS_CHANGED",
                        "resume",
                        format!("{} has MD5 {got}, its table says {want}: left as it is", path.display()),
                    ));
                }
                Err(e) => return Err(self.stop(Severity::Error, "PUBLISHED_PRODUCTS_CHANGED", "resume", format!("{}: {e}", path.display()))),
            }
        }
        self.log.info(&format!("{} published products verified", md5.len()));
        Ok(md5)
    }

    /// The raw stage copy: an identical copy already in place (the crash
    /// came after its rename) is recorded; otherwise it is made now.
    fn resume_stage_copy(&mut self) {
        let Some(row) = self.row.clone() else { return };
        if row.stage_file.as_deref().is_some_and(|s| !s.is_empty() && Path::new(s).is_file()) || !self.input.is_file() {
            return;
        }
        // the raw file's own structure, for the copy's length (trailing bytes are not copied)
        let raw = match crate::fits::load(&self.input) {
            Ok(f) => f,
            Err(e) => return self.diag(Severity::Warn, "FILE_COPY_ERROR", "resume", format!("no stage copy: {e}")),
        };
        let product = self.file.take();
        self.file = Some(raw);
        self.start_raw_copy();
        self.file = product;
        self.place_raw_copy();
    }

    /// The bookkeeping of `publish` that a crash may have cut short: the
    /// headers row (from the published header) and the stage copy's record.
    /// (DEIMOS level-1 follow-ups come from DQA, which a resumed job does
    /// not run again: a crash between the commit point and their insert
    /// loses them — a known gap, named in docs/operator.md.)
    fn resume_bookkeeping(&mut self, koaid: &str) {
        let header = super::publish::header_json(&self.file().hdus[0].cards);
        if let Err(e) = self.a.block(self.a.db.upsert_header(koaid, &header)) {
            self.diag(Severity::Warn, "HEADER_TABLE_INSERT_FAIL", "resume", e.to_string());
        }
        self.record_raw_copy();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_tables_read_back_and_koaid_dates() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_md5_table(d.path(), "NR.20240315.30074.52").is_none(), "no table: not published");
        std::fs::write(
            d.path().join("NR.20240315.30074.52.md5sum.table"),
            "0123456789abcdef0123456789abcdef  NR.20240315.30074.52.fits\nfedcba9876543210fedcba9876543210  NR.20240315.30074.52.jpg\n",
        )
        .unwrap();
        let m = read_md5_table(d.path(), "NR.20240315.30074.52").unwrap().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&d.path().join("NR.20240315.30074.52.jpg")], "fedcba9876543210fedcba9876543210");
        std::fs::write(d.path().join("X.md5sum.table"), "garbage\n").unwrap();
        assert!(read_md5_table(d.path(), "X").unwrap().is_err());
        assert_eq!(koaid_date("NR.20240315.30074.52"), Some("20240315"));
        assert_eq!(koaid_date("GR.20240101.12345.67_K1ACAMA"), Some("20240101"));
        assert_eq!(koaid_date("bad"), None);
    }
}
