//! Step `dedupe` (design §8, spec §5.3): never lose a file. The same content
//! already archived is a duplicate (INVALID DUPLICATE_FILE, nothing written);
//! a different file whose KOAID is taken gets the next free KOAID (the
//! hundredths are advanced) with a DUPLICATE_KOAID warning. The KOAID is
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

impl Job<'_> {
    /// The content MD5 (joins the background computation started by `load`).
    pub(super) fn content_md5(&mut self) -> Result<String, super::Stop> {
        if let Some(h) = self.md5_job.take() {
            match h.join() {
                Ok(Ok(m)) => self.md5 = Some(m),
                Ok(Err(e)) => return Err(self.stop(Severity::Error, "FITS_FILE_TYPE_ERROR", "load", format!("reading {}: {e}", self.input.display()))),
                Err(_) => return Err(self.stop(Severity::Error, "CODE_ERROR", "load", "MD5 thread failed")),
            }
        }
        Ok(self.md5.clone().unwrap_or_default())
    }

    pub(super) fn step_dedupe(&mut self) -> StepResult {
        let koaid = self.koaid.clone().expect("koaid");
        let md5 = self.content_md5()?;
        let utdatetime = format!(
            "{} {}",
            self.utdate.clone().unwrap_or_default(),
            self.utc.clone().unwrap_or_default().chars().take(8).collect::<String>()
        );
        if !self.opts.reprocess {
            match self.a.block(self.a.db.by_md5(0, &md5)) {
                Ok(rows) => {
                    if let Some(r) = rows.iter().find(|r| r.id != self.id) {
                        self.duplicate_of = Some(r.id);
                        return Err(self.stop(
                            Severity::Invalid,
                            "DUPLICATE_FILE",
                            "dedupe",
                            format!(
                                "same content as job {} ({}, KOAID {}): not archived again",
                                r.id,
                                r.ofname,
                                r.koaid.as_deref().unwrap_or("not yet assigned")
                            ),
                        ));
                    }
                }
                Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "dedupe", e.to_string())),
            }
        }
        let mut candidate = koaid.clone();
        let mut holder = None;
        for _ in 0..10_000 {
            let taken = match self.a.block(self.a.db.by_koaid(0, &candidate)) {
                Ok(r) => r.filter(|r| r.id != self.id),
                Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "dedupe", e.to_string())),
            };
            if let Some(other) = taken {
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
                break;
            }
            match self.a.block(self.a.db.set_identity(self.id, &candidate, &utdatetime, &md5)) {
                Ok(()) => break,
                Err(e) if e.is_unique_violation() => continue, // another job took it meanwhile
                Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "dedupe", e.to_string())),
            }
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
