//! Step `identify` (spec §6, §7, §5.2): the instrument component builds the
//! KOAID and repairs INSTRUME/DATE-OBS/UTC; the runtime applies its edits,
//! derives the UT date directory and creates the product directories.
//! Also home of the helpers every component call shares (context, HDU
//! conversion, applying edits, diagnostics).

use std::collections::BTreeMap;

use super::{HeaderChange, Job, Severity, StepResult, hvalue, wvalue};
use crate::fits::{FitsFile, HduKind};
use crate::sandbox::bindings::types;

impl Job<'_> {
    /// The component context: everything a component may know.
    pub(super) fn context(&self) -> types::Context {
        let row = self.row.as_ref();
        make_context(
            &self.a.cfg,
            &self.instrument,
            row.map(|r| r.level as u8).unwrap_or(0),
            &self.input,
            row.map(|r| r.ofname.as_str()).unwrap_or(""),
            &self.mtime_utc,
            &self.opts,
        )
    }

    /// The file's HDUs as WIT records (with every edit applied so far).
    pub(super) fn wit_hdus(&self) -> Vec<types::Hdu> {
        wit_hdus(self.file())
    }

    /// Apply component edits, recording the changes for the diff file.
    pub(super) fn apply_edits(&mut self, edits: &[types::Edit], steps: &[types::StepReport]) {
        let changes = apply_edits(self.file.as_mut().expect("file loaded"), edits, steps);
        self.changes.extend(changes);
    }

    /// Take over a component's diagnostics.
    pub(super) fn take_diagnostics(&mut self, diags: &[types::Diagnostic]) {
        for d in diags {
            let sev = match d.severity {
                types::Severity::Warn => Severity::Warn,
                types::Severity::Error => Severity::Error,
                types::Severity::Invalid => Severity::Invalid,
            };
            self.diag(sev, &d.code, &d.step, d.message.clone());
        }
    }

    pub(super) fn step_identify(&mut self) -> StepResult {
        let ctx = self.context();
        let hdus = self.wit_hdus();
        let host = self.host.clone().expect("host");
        let component = self.component();
        let out = match self.a.sandbox.identify(&component, &ctx, &hdus, host) {
            Ok(o) => o,
            Err(f) => return Err(self.stop(Severity::Error, f.code(), "identify", f.to_string())),
        };
        let id = match out {
            Ok(id) => id,
            Err(diags) => {
                self.take_diagnostics(&diags);
                if !self.diags.iter().any(|d| d.severity != Severity::Warn) {
                    self.diag(Severity::Error, "KOAID_CREATE_FAIL", "identify", "the component gave no KOAID");
                }
                return Err(super::Stop);
            }
        };
        self.take_diagnostics(&id.diagnostics);
        // the host's paths are built from these: strict grammars first
        let utdatedir = match crate::paths::check_koaid(&id.koaid).and_then(|_| crate::paths::utdate_dir(&id.utdate)) {
            Ok(d) => d,
            Err(e) => return Err(self.stop(Severity::Error, "COMPONENT_CONTRACT", "identify", format!("the component's identity is refused: {e}"))),
        };
        self.apply_edits(&id.edits, &id.steps);
        self.steps.extend(id.steps.iter().cloned());
        self.koaid = Some(id.koaid.clone());
        self.utdate = Some(id.utdate.clone());
        self.utc = id.utc.clone();
        self.rtui = id.rtui;
        self.log.info(&format!("KOAID {} (prefix {})", id.koaid, id.prefix));
        // product directories (spec §12.1)
        let root = self.a.cfg.archive.root.join(&self.instrument);
        let day = root.join(&utdatedir);
        let dirs = [
            root.clone(),
            day.clone(),
            day.join("lev0"),
            day.join("lev1"),
            day.join("lev2"),
            root.join("stage"),
            root.join("stage").join("udf"),
            root.join("logtmp"),
        ];
        if !self.opts.dry_run {
            for d in &dirs {
                if let Err(e) = crate::paths::check_within(&self.a.cfg.archive.root, d) {
                    return Err(self.stop(Severity::Error, e.code, "identify", e.message));
                }
                if let Err(e) = std::fs::create_dir_all(d) {
                    return Err(self.stop(Severity::Error, "WRITE_ERROR", "identify", format!("{}: {e}", d.display())));
                }
            }
        }
        self.lev0 = Some(day.join("lev0"));
        Ok(())
    }
}

/// Header cards as WIT records.
pub fn wit_cards(cards: &[crate::fits::card::Card]) -> Vec<types::Card> {
    cards.iter().map(|c| types::Card { key: c.key.clone(), value: wvalue(&c.value), comment: c.comment.clone() }).collect()
}

/// HDUs as WIT records.
pub fn wit_hdus(file: &FitsFile) -> Vec<types::Hdu> {
    file.hdus
        .iter()
        .map(|h| types::Hdu {
            index: h.index as u32,
            kind: match h.kind {
                HduKind::Primary => types::HduKind::Primary,
                HduKind::Image => types::HduKind::Image,
                HduKind::CompressedImage => types::HduKind::CompressedImage,
                HduKind::AsciiTable => types::HduKind::AsciiTable,
                HduKind::BinaryTable => types::HduKind::BinaryTable,
                HduKind::Other => types::HduKind::Other,
            },
            name: h.name.clone(),
            cards: wit_cards(&h.cards),
            bitpix: h.bitpix,
            shape: h.shape.clone(),
        })
        .collect()
}

/// Apply component edits to a file's headers; returns the changes made,
/// each attributed to the step that reported the keyword.
pub fn apply_edits(file: &mut FitsFile, edits: &[types::Edit], steps: &[types::StepReport]) -> Vec<HeaderChange> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for s in steps {
        for k in &s.keywords {
            owner.insert(k.as_str(), s.name.as_str());
        }
    }
    let step_of = |k: &str| owner.get(k).copied().unwrap_or("").to_string();
    let mut changes = Vec::new();
    for e in edits {
        match e {
            types::Edit::Set(s) => {
                let Some(h) = file.hdus.get_mut(s.hdu as usize) else { continue };
                let old = h.card(&s.key).map(|c| c.value.py_str());
                let new = hvalue(&s.value);
                changes.push(HeaderChange {
                    hdu: s.hdu as usize,
                    key: s.key.clone(),
                    action: if old.is_some() { "changed" } else { "added" },
                    old,
                    new: Some(new.py_str()),
                    step: step_of(&s.key),
                });
                h.set(&s.key, new, &s.comment);
            }
            types::Edit::Remove((hdu, key)) => {
                let Some(h) = file.hdus.get_mut(*hdu as usize) else { continue };
                if let Some(old) = h.card(key).map(|c| c.value.py_str()) {
                    changes.push(HeaderChange {
                        hdu: *hdu as usize,
                        key: key.clone(),
                        action: "removed",
                        old: Some(old),
                        new: None,
                        step: step_of(key),
                    });
                }
                h.remove(key);
            }
        }
    }
    changes
}

/// The component context of a job.
pub fn make_context(
    cfg: &crate::config::Config,
    instrument: &str,
    level: u8,
    input: &std::path::Path,
    ofname: &str,
    mtime_utc: &str,
    opts: &super::JobOptions,
) -> types::Context {
    let now = chrono::Utc::now();
    types::Context {
        instrument: instrument.to_uppercase(),
        level,
        filepath: input.display().to_string(),
        ofname: ofname.to_string(),
        file_mtime_utc: mtime_utc.to_string(),
        now_utc: now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        now_local: now.with_timezone(&chrono::Local).format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        reprocess: opts.reprocess,
        progid_override: opts.progid.clone(),
        assign_progname: cfg.archive.assign_progname.clone(),
        dep_version: cfg.archive.dep_version.clone(),
        telescope: cfg.telescope(instrument),
        corrected_hundredths: cfg.archive.corrected_hundredths,
        options: opts.context.clone(),
    }
}
