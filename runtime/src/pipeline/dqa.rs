//! Step `dqa` (spec §4.3 step 13): the instrument component's ordered step
//! list on the identified header. Its edits are applied, its diagnostics,
//! extra metadata, step reports and follow-ups kept; a failed critical step
//! ends the job.

use super::{Job, Severity, StepResult};

impl Job<'_> {
    pub(super) fn step_dqa(&mut self) -> StepResult {
        let ctx = self.context();
        let hdus = self.wit_hdus();
        let host = self.host.clone().expect("host");
        let component = self.component();
        let ev = match self.a.sandbox.evaluate(&component, &ctx, &hdus, host) {
            Ok(ev) => ev,
            Err(f) => return Err(self.stop(Severity::Error, f.code(), "dqa", f.to_string())),
        };
        self.take_diagnostics(&ev.diagnostics);
        self.apply_edits(&ev.edits, &ev.steps);
        self.steps.extend(ev.steps.iter().cloned());
        self.extra = ev.extra_meta;
        self.keyskips = ev.keyskips;
        self.followups = ev.followups;
        if let Some(s) = ev.steps.iter().find(|s| s.critical && !s.ok) {
            let name = s.name.clone();
            if !self.diags.iter().any(|d| d.severity != Severity::Warn) {
                self.diag(Severity::Error, "DQA_STEP_FAILED", "dqa", format!("critical step {name} failed"));
            }
            self.log.error(&format!("DQA stopped at critical step {name}"));
            return Err(super::Stop);
        }
        Ok(())
    }
}
