//! Step `publish`: temporary products renamed into place (stale products of
//! a reprocessed KOAID removed afterwards), then the MD5 table — the commit
//! point — written last. Then the non-critical bookkeeping: the header diff
//! file, the `headers` JSON row (spec §18, reference defect #26 fixed: raw
//! reads, HISTORY as a list), follow-up rows (DEIMOS level 1) and the raw
//! stage copy (spec §12.3).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json, json};

use super::{Job, Severity, StepResult};
use crate::db::{NewJob, Status};
use crate::fits::{Card, HValue};
use crate::sandbox::bindings::types::Followup;
use crate::tables::{product_files, write_md5_table};

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The `headers` JSON object of a primary header.
pub fn header_json(cards: &[Card]) -> Json {
    let mut obj = Map::new();
    let mut history: Vec<Json> = Vec::new();
    for c in cards {
        if c.key == "HISTORY" {
            history.push(Json::String(c.comment.clone()));
            continue;
        }
        if c.commentary || c.key.is_empty() || obj.contains_key(&c.key) {
            continue;
        }
        let value = match &c.value {
            HValue::Text(s) if s.is_empty() || s.trim().eq_ignore_ascii_case("nan") || s.trim().eq_ignore_ascii_case("-nan") => Json::Null,
            HValue::Text(s) => Json::String(s.clone()),
            HValue::Int(i) => json!(i),
            HValue::Float(f) if f.is_finite() => json!(f),
            HValue::Float(_) | HValue::Undefined => Json::Null,
            HValue::Logical(b) => json!(b),
        };
        obj.insert(c.key.clone(), json!({"value": value, "comment": c.comment}));
    }
    if !history.is_empty() {
        obj.insert("HISTORY".into(), json!({"value": history, "comment": ""}));
    }
    Json::Object(obj)
}

/// `<stage>/<D>/<ofname>` with `_verN` (N = 2…19) when taken (spec §12.3).
/// The target is always under `stage` and never the input itself.
pub fn stage_target(stage: &Path, utdatedir: &str, ofname: &str) -> Result<PathBuf, crate::paths::PathError> {
    let base = stage.join(utdatedir).join(crate::paths::relative_part(ofname)?);
    crate::paths::check_within(stage, &base)?;
    let input = Path::new(ofname).canonicalize().ok();
    if input.is_some() && base.canonicalize().ok() == input {
        return Err(crate::paths::PathError { code: "PATH_OUTSIDE_ROOT", message: format!("the stage copy {} would be the input itself", base.display()) });
    }
    Ok(stage_version(base))
}

fn stage_version(base: PathBuf) -> PathBuf {
    if !base.exists() {
        return base;
    }
    let mut last = base.clone();
    for i in 2..20 {
        last = versioned(&base, i);
        if !last.exists() {
            break;
        }
    }
    last
}

/// `<stem>_ver<i>.<ext>` beside `base` (spec §12.3).
fn versioned(base: &Path, i: u32) -> PathBuf {
    let name = base.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext)) => base.with_file_name(format!("{stem}_ver{i}.{ext}")),
        None => base.with_file_name(format!("{name}_ver{i}")),
    }
}

impl Job<'_> {
    pub(super) fn step_publish(&mut self) -> StepResult {
        let koaid = self.koaid.clone().expect("koaid");
        let lev0 = self.lev0.clone().expect("lev0");
        if self.opts.reprocess && koaid.len() < 20 {
            return Err(self.stop(Severity::Error, "INVALID_KOAID", "publish", format!("{koaid} is too short to clean up by name")));
        }
        let old: BTreeSet<PathBuf> = product_files(&lev0, &koaid).unwrap_or_default().into_iter().collect();
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            if let Err(e) = std::fs::rename(&p.tmp, &p.dest) {
                return Err(self.stop(Severity::Error, "WRITE_ERROR", "publish", format!("{} → {}: {e}", p.tmp.display(), p.dest.display())));
            }
            if let Some(m) = &p.md5 {
                self.known_md5.insert(p.dest.clone(), m.clone());
            }
            self.products.push(p.dest.clone());
        }
        // stale products of an earlier run of this KOAID
        let fresh: BTreeSet<&PathBuf> = self.products.iter().collect();
        for stale in old.iter().filter(|o| !fresh.contains(o)) {
            if let Err(e) = std::fs::remove_file(stale) {
                return Err(self.stop(Severity::Error, "FILE_DELETE_ERROR", "publish", format!("{}: {e}", stale.display())));
            }
            self.log.info(&format!("removed stale product {}", stale.display()));
        }
        // the stage copy is in place before the commit point, so a job
        // resumed after it finds it (only its database record can be missing)
        self.place_raw_copy();
        sync_dir(&lev0);
        crate::faults::point("publish:renamed");
        // the commit point
        let files = match product_files(&lev0, &koaid) {
            Ok(f) => f,
            Err(e) => return Err(self.stop(Severity::Error, "CREATE_MD5_SUM_ERROR", "publish", e.to_string())),
        };
        let (md5_name, total) = match write_md5_table(&lev0, &koaid, &files, &self.known_md5) {
            Ok(t) => t,
            Err(e) => return Err(self.stop(Severity::Error, "CREATE_MD5_SUM_ERROR", "publish", e.to_string())),
        };
        sync_dir(&lev0);
        self.products.push(md5_name);
        if let Err(e) = self.a.block(self.a.db.set_step(self.id, "published")) {
            // the MD5 table says so too: a job resumed later finds it there
            self.log.warn(&format!("recording the published step: {e}"));
        }
        self.archsize_mb = Some(total as f64 / 1e6);
        let _ = self.timed("bookkeeping", |j| {
            j.bookkeeping(&koaid, &lev0);
            Ok(())
        });
        Ok(())
    }

    fn bookkeeping(&mut self, koaid: &str, lev0: &Path) {
        // header diff (local, not transferred)
        let diff = json!({"koaid": koaid, "changes": self.changes});
        let diff_path = lev0.join(format!("{koaid}.diff.json"));
        let diff_tmp = lev0.join(format!(".{koaid}.diff.json.{}.tmp", std::process::id()));
        let written = std::fs::write(&diff_tmp, serde_json::to_string_pretty(&diff).unwrap_or_default())
            .and_then(|_| std::fs::rename(&diff_tmp, &diff_path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&diff_tmp);
            self.diag(Severity::Warn, "DIFF_FILE_ERROR", "publish", e.to_string());
        }
        // headers row
        let header = header_json(&self.file().hdus[0].cards);
        if let Err(e) = self.a.block(self.a.db.upsert_header(koaid, &header)) {
            self.diag(Severity::Warn, "HEADER_TABLE_INSERT_FAIL", "publish", e.to_string());
        }
        // follow-up rows (DEIMOS RTI level 1), not when reprocessing
        if !self.opts.reprocess {
            // the level-1 product travels like its level-0 file
            let transfer = self.will_transfer();
            for f in self.followups.clone() {
                let Followup::QueueLevel((level, service)) = f;
                let stage = lev0.join(format!("{koaid}.fits")).display().to_string();
                let r = self.a.block(self.a.db.insert_job(&NewJob {
                    level: level as i64,
                    instrument: &self.instrument,
                    service: Some(&service),
                    ofname: &stage,
                    status: Status::Queued,
                    reprocess: false,
                    transfer,
                    stage_file: Some(&stage),
                    koaid: Some(koaid),
                }));
                if let Err(e) = r {
                    self.diag(Severity::Warn, "LEV1_INSERT_ERROR", "publish", e.to_string());
                }
            }
        }
        self.record_raw_copy();
    }

    /// Start copying the raw file under the stage directory (spec §12.3) on
    /// its own thread, to a temporary name; `place_raw_copy` puts it in
    /// place. A copy with the same bytes already there (an earlier run of
    /// this job got that far) is kept instead of making a `_verN`.
    pub(super) fn start_raw_copy(&mut self) {
        let Some(row) = self.row.clone() else { return };
        if row.stage_file.as_deref().is_some_and(|s| !s.is_empty() && Path::new(s).is_file()) {
            return;
        }
        let utdatedir = self.utdate.clone().unwrap_or_default().replace('-', "");
        let stage = self.a.cfg.archive.root.join(&self.instrument).join("stage");
        let target = match stage_target(&stage, &utdatedir, &row.ofname) {
            Ok(t) => t,
            Err(e) => {
                self.diag(Severity::Error, e.code, "publish", format!("no stage copy: {}", e.message));
                return;
            }
        };
        if target == self.input || self.input.canonicalize().is_ok_and(|i| i.starts_with(stage.canonicalize().unwrap_or_default())) {
            return;
        }
        // the raw file's HDUs only: trailing bytes are reported, never multiplied
        let (len, size) = self.file.as_ref().map(|f| (f.fits_len(), f.size)).unwrap_or((u64::MAX, 0));
        if len < size {
            self.diag(Severity::Warn, "TRAILING_BYTES", "publish", format!("{} bytes after the last HDU are not copied to the stage copy", size - len));
        }
        if let Some(same) = identical_copy(&target, &self.input, len.min(size)) {
            self.log.info(&format!("stage copy {} is already in place", same.display()));
            self.stage_copy = Some(same);
            return;
        }
        let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let input = self.input.clone();
        let t = tmp.clone();
        let h = std::thread::spawn(move || {
            t.parent().map(std::fs::create_dir_all).unwrap_or(Ok(()))?;
            let mut from = std::io::Read::take(std::fs::File::open(&input)?, len);
            let mut to = std::fs::File::create(&t)?;
            std::io::copy(&mut from, &mut to)?;
            to.sync_all()
        });
        self.raw_copy_job = Some((h, tmp, target));
    }

    /// Put the copy of the raw file in place (before the commit point).
    pub(super) fn place_raw_copy(&mut self) {
        let Some((h, tmp, target)) = self.raw_copy_job.take() else { return };
        let r = h.join().unwrap_or_else(|_| Err(std::io::Error::other("copy thread failed"))).and_then(|_| std::fs::rename(&tmp, &target));
        match r {
            Ok(_) => self.stage_copy = Some(target),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.diag(Severity::Warn, "FILE_COPY_ERROR", "publish", format!("{} to {}: {e}", self.input.display(), target.display()))
            }
        }
    }

    /// Record the stage copy in the job's row.
    pub(super) fn record_raw_copy(&mut self) {
        let Some(target) = self.stage_copy.clone() else { return };
        let s = target.display().to_string();
        if let Err(e) = self.a.block(self.a.db.set_stage_file(self.id, &s)) {
            self.diag(Severity::Warn, "QUERY_ERROR", "publish", e.to_string());
        }
    }
}

/// An existing stage copy (the target's base name or one of its `_verN`)
/// holding the first `len` bytes of `input`, if any. The input is read only
/// when a candidate of the right size exists.
fn identical_copy(target: &Path, input: &Path, len: u64) -> Option<PathBuf> {
    // the base name: `stage_target` may have picked a `_verN` already
    let name = target.file_name()?.to_string_lossy().to_string();
    let base_name = match name.rsplit_once("_ver") {
        Some((stem, rest)) if rest.split('.').next().is_some_and(|n| n.parse::<u32>().is_ok()) => {
            format!("{stem}{}", rest.find('.').map(|i| &rest[i..]).unwrap_or(""))
        }
        _ => name,
    };
    let base = target.with_file_name(&base_name);
    let candidates = std::iter::once(base.clone()).chain((2..20).map(|i| versioned(&base, i)));
    let mut want: Option<Option<String>> = None;
    for c in candidates.filter(|c| std::fs::metadata(c).is_ok_and(|m| m.len() == len)) {
        let want = want.get_or_insert_with(|| md5_prefix(input, len).ok());
        let Some(want) = want.as_ref() else { return None };
        if crate::fits::write::md5_file(&c).ok().as_ref() == Some(want) {
            return Some(c);
        }
    }
    None
}

fn md5_prefix(path: &Path, len: u64) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    let mut r = std::io::Read::take(std::fs::File::open(path)?, len);
    let mut h = Md5::new();
    std::io::copy(&mut r, &mut h)?;
    Ok(hex::encode(h.finalize()))
}
