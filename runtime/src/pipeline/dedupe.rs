//! Step `dedupe` (design §8, spec §5.3, §22.3): never lose a file. The same
//! content already archived under the KOAID is a duplicate (INVALID
//! DUPLICATE_FILE, nothing written; MD5s compared as the reference compares
//! the stage copy with the new file);
//! a different file whose KOAID is taken gets the next free KOAID (the
//! hundredths are advanced) with a DUPLICATE_KOAID warning. The same
//! content held by a failed row (ERROR, INVALID: a re-broadcast, a CLI run
//! without --reprocess, `reconcile --enqueue` after TRANSFER_ERROR) is taken
//! over — the failed row gives its KOAID up — so one exposure never holds
//! two KOAIDs (issue 16 §1). The KOAID is
//! claimed through the unique (level, koaid) index, so concurrent jobs
//! cannot both take it.

use super::{Job, Severity, StepResult};
use crate::fits::HValue;

/// The KOAID after `id`: hundredths + 1 (carrying into the seconds).
pub fn next_koaid(id: &str) -> Option<String> {
    let (head, suffix) = match id.find('_') {
        Some(i) => (&id[..i], &id[i..]),
        None => (id, ""),
    };
    let parts: Vec<&str> = head.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let secs: u32 = parts[2].parse().ok()?;
    let hh: u32 = parts[3].parse().ok()?;
    let total = secs * 100 + hh + 1;
    if total >= 86_400 * 100 {
        return None;
    }
    Some(format!("{}.{}.{:05}.{:02}{suffix}", parts[0], parts[1], total / 100, total % 100))
}

/// MD5 of a readable file, None when it cannot be read.
fn file_md5(path: &str) -> Option<String> {
    let p = std::path::Path::new(path);
    p.is_file().then(|| crate::fits::write::md5_file(p).ok()).flatten()
}

impl Job<'_> {
    /// The content MD5 of the input, computed the first time it is needed.
    fn content_md5(&mut self) -> Result<String, super::Stop> {
        if let Some(m) = &self.md5 {
            return Ok(m.clone());
        }
        match crate::fits::write::md5_file(&self.input) {
            Ok(m) => {
                self.md5 = Some(m.clone());
                Ok(m)
            }
            Err(e) => Err(self.stop(Severity::Error, "FITS_FILE_TYPE_ERROR", "dedupe", format!("reading {}: {e}", self.input.display()))),
        }
    }

    /// Whether the file of another job has this job's content. The other
    /// job's MD5 is taken from its row, else computed from its stage copy or
    /// original file (and recorded for next time); unknown counts as different.
    fn same_content(&mut self, other: &crate::db::StatusRow) -> Result<bool, super::Stop> {
        let theirs = match &other.md5 {
            Some(m) => Some(m.clone()),
            None => {
                let m = other.stage_file.as_deref().and_then(file_md5).or_else(|| file_md5(&other.ofname));
                if let Some(m) = &m {
                    if let Err(e) = self.a.block(self.a.db.set_md5(other.id, m)) {
                        self.log.warn(&format!("recording the MD5 of job {}: {e}", other.id));
                    }
                }
                m
            }
        };
        let Some(theirs) = theirs else { return Ok(false) };
        Ok(self.content_md5()? == theirs)
    }

    /// Claim the KOAID. Identical content already archived under the KOAID
    /// chain is a duplicate; a different file holding it pushes this one to
    /// the next free hundredth. The input's MD5 is computed only when a
    /// KOAID is taken (same content ⇒ same header ⇒ same KOAID), so a new
    /// file costs no extra read.
    pub(super) fn step_dedupe(&mut self) -> StepResult {
        let koaid = self.koaid.clone().expect("koaid");
        let utdatetime = format!(
            "{} {}",
            self.utdate.clone().unwrap_or_default(),
            self.utc.clone().unwrap_or_default().chars().take(8).collect::<String>()
        );
        let mut candidate = koaid.clone();
        let mut holder = None;
        // only a reprocess of a row that held a KOAID may archive archived
        // content again (a re-run of a failed row that never got one may not)
        let reprocessing_archived = self.opts.reprocess && self.row.as_ref().is_some_and(|r| r.koaid.is_some());
        let mut claimed = false;
        for _ in 0..10_000 {
            let taken = match self.a.block(self.a.db.by_koaid(0, &candidate)) {
                Ok(r) => r.filter(|r| r.id != self.id),
                Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "dedupe", e.to_string())),
            };
            if let Some(other) = taken {
                let archived = other.is_archived();
                if !archived && self.same_content(&other)? {
                    if self.opts.dry_run {
                        // a dry run changes no other row: the KOAID would be taken over
                        claimed = true;
                        break;
                    }
                    match self.a.block(self.a.db.release_koaid(other.id, &candidate, self.id)) {
                        Ok(released) => {
                            if released {
                                self.log.info(&format!("KOAID {candidate} taken over from job {} ({}, {}): same content", other.id, other.status, other.ofname));
                            }
                            continue; // claim it (or see who holds it now)
                        }
                        Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "dedupe", e.to_string())),
                    }
                }
                if !reprocessing_archived && archived && self.same_content(&other)? {
                    self.duplicate_of = Some(other.id);
                    return Err(self.stop(
                        Severity::Invalid,
                        "DUPLICATE_FILE",
                        "dedupe",
                        format!("same content as job {} ({}, KOAID {candidate}): not archived again", other.id, other.ofname),
                    ));
                }
                holder.get_or_insert(other.id);
                match next_koaid(&candidate) {
                    Some(n) => {
                        candidate = n;
                        continue;
                    }
                    None => {
                        return Err(self.stop(Severity::Error, "DUPLICATE_KOAID", "dedupe", format!("no free KOAID after {koaid}")));
                    }
                }
            }
            if self.opts.dry_run {
                claimed = true;
                break;
            }
            let md5 = self.md5.clone();
            match self.a.block(self.a.db.set_identity(self.id, &candidate, &utdatetime, md5.as_deref())) {
                Ok(()) => {
                    claimed = true;
                    break;
                }
                Err(e) if e.is_unique_violation() => continue, // another job took it meanwhile
                Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "dedupe", e.to_string())),
            }
        }
        if !claimed {
            return Err(self.stop(Severity::Error, "DUPLICATE_KOAID", "dedupe", format!("could not claim a KOAID from {koaid} on (the store kept refusing it)")));
        }
        if candidate != koaid {
            self.diag(
                Severity::Warn,
                "DUPLICATE_KOAID",
                "dedupe",
                format!(
                    "KOAID {koaid} is held by job {} for a different file; this file is archived as {candidate}",
                    holder.unwrap_or(0)
                ),
            );
            let file = self.file_mut();
            file.hdus[0].set("KOAID", HValue::Text(format!("{candidate}.fits")), "KOA: Data file name");
            self.changes.push(super::HeaderChange {
                hdu: 0,
                key: "KOAID".into(),
                action: "changed",
                old: Some(format!("{koaid}.fits")),
                new: Some(format!("{candidate}.fits")),
                step: "dedupe".into(),
            });
            self.koaid = Some(candidate);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_koaid;

    #[test]
    fn hundredths_advance_and_carry() {
        assert_eq!(next_koaid("NR.20190615.12571.36").as_deref(), Some("NR.20190615.12571.37"));
        assert_eq!(next_koaid("KB.20190615.12571.99").as_deref(), Some("KB.20190615.12572.00"));
        assert_eq!(next_koaid("GR.20240101.12345.67_K1ACAMA").as_deref(), Some("GR.20240101.12345.68_K1ACAMA"));
        assert_eq!(next_koaid("N2.20220409.00001.00_unp").as_deref(), Some("N2.20220409.00001.01_unp"));
        assert_eq!(next_koaid("bad"), None);
    }
}
