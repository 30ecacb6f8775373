//! One component call's working state (header, diagnostics, extra metadata)
//! and the ordered step runner with criticality (spec pipeline.md §4.2, with
//! reference defect #19 fixed: a non-critical step's failure is a warning).

use std::collections::BTreeMap;

use crate::header::{Header, KeyMap};
use crate::host::Host;
use crate::types::{Context, Diagnostic, Followup, Hdu, Severity, StepReport, Value};

/// An exception raised by a step (the reference's Python exceptions).
#[derive(Debug, Clone, PartialEq)]
pub struct Fail(pub String);

impl Fail {
    pub fn new(msg: impl Into<String>) -> Self {
        Fail(msg.into())
    }
}

/// What a step returns: `Ok(true)` success, `Ok(false)` failure, `Err` exception.
pub type StepResult = Result<bool, Fail>;

/// Shorthand for raising from an Option: `.ok_or_else(missing("OUTDIR"))`.
pub fn missing(key: &str) -> impl FnOnce() -> Fail + '_ {
    move || Fail(format!("keyword {key} missing or unusable"))
}

/// One step of a DQA list.
#[derive(Clone, Copy)]
pub struct Step {
    pub name: &'static str,
    pub critical: bool,
    pub run: fn(&mut Job) -> StepResult,
}

/// A step, critical (`Y` in the spec's lists).
pub const fn crit(name: &'static str, run: fn(&mut Job) -> StepResult) -> Step {
    Step { name, critical: true, run }
}

/// A step, non-critical (`N`).
pub const fn opt(name: &'static str, run: fn(&mut Job) -> StepResult) -> Step {
    Step { name, critical: false, run }
}

/// Instrument hooks the shared steps call back into.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Whether the file carries target information (zero-propint policy).
    pub has_target_info: fn(&mut Job) -> bool,
    /// PROGID from the telescope schedule when the header has none.
    pub progid_from_schedule: fn(&mut Job) -> Result<String, Fail>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks { has_target_info: |_| true, progid_from_schedule: crate::program::progid_from_schedule }
    }
}

/// The working state of one identify/evaluate call.
pub struct Job<'a> {
    pub ctx: &'a Context,
    pub hdr: Header,
    pub host: &'a dyn Host,
    pub diagnostics: Vec<Diagnostic>,
    pub extra: Vec<(String, Value)>,
    pub followups: Vec<Followup>,
    pub steps: Vec<StepReport>,
    /// Telescope number once known (set_telnr or the context).
    pub telnr: Option<u8>,
    /// Name of the running step, for diagnostics.
    pub step: &'static str,
    /// Per-run values computed by one step and read by a later one.
    pub vars: BTreeMap<&'static str, Value>,
    pub hooks: Hooks,
}

impl<'a> Job<'a> {
    pub fn new(ctx: &'a Context, hdus: Vec<Hdu>, keymap: KeyMap, host: &'a dyn Host, hooks: Hooks) -> Self {
        Job {
            ctx,
            hdr: Header::new(hdus, keymap),
            host,
            diagnostics: Vec::new(),
            extra: Vec::new(),
            followups: Vec::new(),
            steps: Vec::new(),
            telnr: ctx.telescope,
            step: "",
            vars: BTreeMap::new(),
            hooks,
        }
    }

    fn push(&mut self, severity: Severity, code: &str, message: impl Into<String>) {
        let message = message.into();
        self.host.log(
            match severity {
                Severity::Warn => 2,
                _ => 3,
            },
            &format!("{}: {code} {message}", self.step),
        );
        self.diagnostics.push(Diagnostic {
            severity,
            code: code.to_string(),
            step: self.step.to_string(),
            message,
        });
    }

    /// Record a warning (status unchanged, code recorded).
    pub fn warn(&mut self, code: &str, message: impl Into<String>) {
        self.push(Severity::Warn, code, message)
    }

    /// Record an error (status ERROR).
    pub fn error(&mut self, code: &str, message: impl Into<String>) {
        self.push(Severity::Error, code, message)
    }

    /// Record an invalid-file verdict (status INVALID).
    pub fn invalid(&mut self, code: &str, message: impl Into<String>) {
        self.push(Severity::Invalid, code, message)
    }

    pub fn log(&self, message: &str) {
        self.host.log(1, &format!("{}: {message}", self.step))
    }

    /// Set extra metadata (replacing an earlier value of the same key).
    pub fn set_extra(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.extra.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.extra.push((key.to_string(), value)),
        }
    }

    pub fn extra(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Option from the context's free-form extras.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.ctx.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Run one step and report it. Returns whether it succeeded.
    pub fn run_step(&mut self, step: &Step) -> bool {
        self.step = step.name;
        let before = self.diagnostics.len();
        let outcome = (step.run)(self);
        let ok = match outcome {
            Ok(ok) => ok,
            Err(Fail(msg)) => {
                if step.critical {
                    self.error("CODE_ERROR", format!("{}: {msg}", step.name));
                } else {
                    self.warn("STEP_FAILED", format!("{}: {msg}", step.name));
                }
                false
            }
        };
        for key in self.hdr.take_nulled() {
            self.host.log(3, &format!("{}: {key} value is NaN or infinite, written as null", step.name));
        }
        if !ok && step.critical {
            let own = &mut self.diagnostics[before..];
            if !own.iter().any(|d| d.severity != Severity::Warn) {
                // The run stops here: the last warning of this step becomes the
                // error that ends the job, or a generic one when it said nothing.
                match own.last_mut() {
                    Some(d) => d.severity = Severity::Error,
                    None => self.error("DQA_STEP_FAILED", format!("critical step {} failed", step.name)),
                }
            }
        }
        let keywords = self.hdr.take_touched();
        self.steps.push(StepReport { name: step.name.to_string(), critical: step.critical, ok, keywords });
        ok
    }

    /// Run a step list in order; a failing critical step stops it.
    pub fn run_steps(&mut self, steps: &[Step]) -> bool {
        for s in steps {
            if !self.run_step(s) && s.critical {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixtureHost, context, primary};

    fn job<'a>(ctx: &'a Context, host: &'a FixtureHost) -> Job<'a> {
        Job::new(ctx, vec![primary(vec![], 8, &[])], &[], host, Hooks::default())
    }

    /// Reference defect #19: an exception in a non-critical step became
    /// CODE_ERROR, so a file whose data were archived ended ERROR. Here it is
    /// a STEP_FAILED warning and the list goes on; in a critical step it
    /// still stops the list with CODE_ERROR.
    #[test]
    fn an_exception_in_an_optional_step_is_a_warning() {
        let (ctx, host) = (context("NIRES"), FixtureHost::default());
        let mut j = job(&ctx, &host);
        assert!(j.run_steps(&[opt("boom", |_| Err(Fail::new("exploded"))), crit("after", |_| Ok(true))]));
        let ran: Vec<(&str, bool)> = j.steps.iter().map(|s| (s.name.as_str(), s.ok)).collect();
        assert_eq!(ran, vec![("boom", false), ("after", true)]);
        assert_eq!(j.diagnostics.iter().map(|d| (d.code.as_str(), d.severity)).collect::<Vec<_>>(), vec![("STEP_FAILED", Severity::Warn)]);
        let mut j = job(&ctx, &host);
        assert!(!j.run_steps(&[crit("boom", |_| Err(Fail::new("exploded"))), crit("after", |_| Ok(true))]));
        assert_eq!(j.steps.len(), 1);
        assert_eq!(j.diagnostics.iter().map(|d| (d.code.as_str(), d.severity)).collect::<Vec<_>>(), vec![("CODE_ERROR", Severity::Error)]);
    }
}
