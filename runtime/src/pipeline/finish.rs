//! Step `finish` (spec §11.3): the job's status from its diagnostics (the
//! last INVALID, else the last ERROR, else the last warning gives the code;
//! COMPLETE when nothing failed), the koa_status update, the per-file log
//! (`<KOAID>.log`, or `logtmp/<id>.log` before a KOAID exists), cleanup
//! of temporary files, and the copy of an INVALID file to `stage/udf`.

use super::{Job, JobReport, Severity};
use crate::db::{Outcome, Status};
use crate::fits::HValue;

/// Status and the diagnostic that decides the status code.
pub fn verdict(diags: &[super::Diag], stopped: bool) -> (Status, Option<&super::Diag>) {
    let last = |s: Severity| diags.iter().rev().find(|d| d.severity == s);
    if let Some(d) = last(Severity::Invalid) {
        return (Status::Invalid, Some(d));
    }
    if let Some(d) = last(Severity::Error) {
        return (Status::Error, Some(d));
    }
    let warn = last(Severity::Warn);
    if stopped {
        return (Status::Error, warn);
    }
    (Status::Complete, warn)
}

impl Job<'_> {
    pub(super) fn finish(mut self) -> JobReport {
        let stopped = self.products.is_empty() && !self.opts.dry_run;
        // background work of a job that stopped early
        if let Some(h) = self.write_job.take() {
            let _ = h.join();
        }
        if let Some(h) = self.preview_job.take() {
            let _ = h.join();
        }
        if let Some((h, tmp, _)) = self.raw_copy_job.take() {
            let _ = h.join();
            let _ = std::fs::remove_file(tmp);
        }
        // leftovers of a job that stopped before publishing
        for p in std::mem::take(&mut self.pending) {
            let _ = std::fs::remove_file(&p.tmp);
        }
        if let Some(p) = self.pixels_path.take() {
            let _ = std::fs::remove_file(p);
        }
        let (status, decider) = verdict(&self.diags, stopped);
        // design §8: COMPLETE without a transfer, TRANSFERRED after one
        let status = if status == Status::Complete && self.transferred { Status::Transferred } else { status };
        let (code, message) = match decider {
            Some(d) => (Some(d.code.clone()), Some(format!("{}: {}", d.step, d.message))),
            None if status == Status::Error => (Some("CODE_ERROR".to_string()), Some("the job stopped without a reason".into())),
            None => (None, None),
        };
        if status == Status::Invalid && !self.opts.dry_run && code.as_deref() != Some("DUPLICATE_FILE") {
            self.keep_invalid();
        }
        let primary = self.file.as_ref().and_then(|f| f.hdus.first());
        let text = |k: &str| match primary.and_then(|h| h.value(k)) {
            Some(HValue::Text(s)) if !s.trim().is_empty() && s != "null" => Some(s.trim().to_string()),
            _ => None,
        };
        let propint = self.extra.iter().find(|(k, _)| k == "PROPINT").and_then(|(_, v)| match v {
            crate::sandbox::bindings::types::Value::Int(i) => Some(*i),
            crate::sandbox::bindings::types::Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        });
        let outcome = Outcome {
            status: Some(status),
            status_code: code.clone(),
            status_message: message.clone().map(|m| m.chars().take(2000).collect()),
            process_dir: self.lev0.as_ref().filter(|_| !self.products.is_empty()).map(|p| p.display().to_string()),
            filesize_mb: self.filesize_mb,
            archsize_mb: self.archsize_mb,
            koaimtyp: text("KOAIMTYP"),
            semid: self.semid(),
            // spec §10.1 step 7: only a non-default period is recorded
            propint: propint.filter(|p| *p != 18),
            exptime: ["ELAPTIME", "EXPTIME", "ITIME", "TRUITIME"].iter().find_map(|k| match primary.and_then(|h| h.value(k)) {
                Some(HValue::Float(x)) if x.is_finite() => Some(*x),
                Some(HValue::Int(i)) => Some(*i as f64),
                Some(HValue::Text(t)) => t.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
                _ => None,
            }),
            timings: (!self.timings.is_empty()).then(|| {
                let m: serde_json::Map<String, serde_json::Value> =
                    self.timings.iter().map(|(k, v)| (k.clone(), serde_json::json!((v * 1e4).round() / 1e4))).collect();
                serde_json::Value::Object(m).to_string()
            }),
        };
        let mut unrecorded = None;
        if !self.opts.dry_run {
            if let Err(e) = self.a.block(self.a.db.finish(self.id, &outcome)) {
                self.log.error(&format!("QUERY_ERROR recording the outcome (kept to record later): {e}"));
                unrecorded = Some(outcome.clone());
            }
        } else if self.opts.temporary_row {
            // the row a dry run of a new file needed is removed again
            if let Err(e) = self.a.block(self.a.db.delete_job(self.id)) {
                self.log.error(&format!("QUERY_ERROR removing the dry run's row: {e}"));
            }
        }
        self.log.info(&format!(
            "finished {status} {} in {:.3} s",
            code.as_deref().unwrap_or(""),
            self.started.elapsed().as_secs_f64()
        ));
        if !self.opts.dry_run {
            let log_path = match (&self.lev0, &self.koaid) {
                (Some(d), Some(k)) if d.is_dir() => d.join(format!("{k}.log")),
                _ => self.a.cfg.archive.root.join(&self.instrument).join("logtmp").join(format!("job-{}.log", self.id)),
            };
            if let Some(parent) = log_path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            use std::io::Write;
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .and_then(|mut f| f.write_all(self.log.text().as_bytes()));
            if let Err(e) = appended {
                tracing::warn!("cannot write job log {}: {e}", log_path.display());
            }
        }
        JobReport {
            id: self.id,
            instrument: self.instrument.clone(),
            ofname: self.row.as_ref().map(|r| r.ofname.clone()).unwrap_or_default(),
            koaid: self.koaid.clone(),
            status,
            status_code: code,
            message,
            diagnostics: self.diags,
            products: self.products,
            timings: self.timings,
            steps: self.steps,
            changes: self.changes,
            unrecorded,
        }
    }
}

impl Job<'_> {
    /// Reference defect #28 fixed: an INVALID file is copied to
    /// `<root>/<INSTR>/stage/udf/<YYYYMMDD>/<original path>` (`_verN` when
    /// taken), so it survives the instrument's disk clean-up for an operator
    /// to inspect (a duplicate of an archived file is not copied).
    fn keep_invalid(&mut self) {
        if !self.input.is_file() {
            return;
        }
        let Some(row) = self.row.as_ref() else { return };
        let size = std::fs::metadata(&self.input).map(|m| m.len()).unwrap_or(0);
        let max = self.a.cfg.archive.keep_invalid_max_mib << 20;
        if size > max {
            return self.log.warn(&format!(
                "the invalid file ({size} bytes) is over archive.keep_invalid_max_mib = {} MiB: recorded, not copied",
                self.a.cfg.archive.keep_invalid_max_mib
            ));
        }
        let utdatedir = match &self.utdate {
            Some(d) => d.replace('-', ""),
            None => chrono::Utc::now().format("%Y%m%d").to_string(),
        };
        let udf = self.a.cfg.archive.root.join(&self.instrument).join("stage").join("udf");
        let target = match super::publish::stage_target(&udf, &utdatedir, &row.ofname) {
            Ok(t) => t,
            Err(e) => return self.log.error(&format!("{} the invalid file is not kept: {}", e.code, e.message)),
        };
        let r = target.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|_| std::fs::copy(&self.input, &target));
        match r {
            Ok(_) => self.log.info(&format!("invalid file kept as {}", target.display())),
            Err(e) => self.log.error(&format!("FILE_COPY_ERROR cannot keep the invalid file as {}: {e}", target.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Diag;
    use super::*;

    fn d(s: Severity, code: &str) -> Diag {
        Diag { severity: s, code: code.into(), step: "x".into(), message: String::new() }
    }

    #[test]
    fn last_invalid_then_error_then_warning() {
        let diags = vec![d(Severity::Warn, "A"), d(Severity::Error, "B"), d(Severity::Warn, "C"), d(Severity::Error, "D")];
        let (s, c) = verdict(&diags, true);
        assert_eq!((s, c.unwrap().code.as_str()), (Status::Error, "D"));
        let diags = vec![d(Severity::Invalid, "I"), d(Severity::Error, "E")];
        assert_eq!(verdict(&diags, true).0, Status::Invalid);
        let diags = vec![d(Severity::Warn, "W1"), d(Severity::Warn, "W2")];
        let (s, c) = verdict(&diags, false);
        assert_eq!((s, c.unwrap().code.as_str()), (Status::Complete, "W2"));
        assert_eq!(verdict(&[], false).0, Status::Complete);
        assert_eq!(verdict(&[], true).0, Status::Error);
    }
}
