//! Step `run_drp` (spec pipeline.md step 19, critical; instruments.md
//! OSIRIS): the instrument's configured DRP command (`[instruments.<I>]
//! drp_command`), split on blanks, with the UT date (YYYY-MM-DD) appended,
//! run before the products are published — in its own process group, under
//! a time bound (`drp_timeout_s`, default 600 s), its output in the job log.
//! A command that cannot start, exits non-zero or overruns ends the job
//! ERROR RUN_DRP_ERROR (the reference waited for ever and never looked at
//! the exit status); nothing of the job is published.

use std::process::Command;
use std::time::Duration;

use super::{Job, Severity, StepResult};

/// Characters of each output stream kept in the job log.
const OUTPUT_MAX: usize = 16 << 10;

const DEFAULT_TIMEOUT_S: f64 = 600.0;

fn clipped(s: &str) -> &str {
    match s.char_indices().nth(OUTPUT_MAX) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Job<'_> {
    pub(super) fn step_run_drp(&mut self) -> StepResult {
        let Some(ic) = self.a.cfg.instruments.get(&self.instrument) else { return Ok(()) };
        let Some(command) = ic.drp_command.clone().filter(|c| !c.trim().is_empty()) else { return Ok(()) };
        let secs = ic.drp_timeout_s.filter(|s| s.is_finite()).unwrap_or(DEFAULT_TIMEOUT_S).clamp(0.1, 86_400.0);
        let limit = Duration::from_secs_f64(secs);
        let utdate = self.utdate.clone().unwrap_or_default();
        let mut words = command.split_whitespace();
        let program = words.next().unwrap_or_default();
        let mut cmd = Command::new(program);
        cmd.args(words).arg(&utdate);
        self.log.info(&format!("run_drp: {command} {utdate} (at most {} s)", limit.as_secs_f64()));
        let ran = match crate::transfer::run(&mut cmd, limit) {
            Ok(r) => r,
            Err(e) => return Err(self.stop(Severity::Error, "RUN_DRP_ERROR", "run_drp", format!("{program}: {e}"))),
        };
        for (name, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
            if !text.trim().is_empty() {
                self.log.info(&format!("run_drp {name}:\n{}", clipped(text).trim_end()));
            }
        }
        if !ran.ok {
            return Err(self.stop(Severity::Error, "RUN_DRP_ERROR", "run_drp", format!("{command} {utdate}: {}", ran.status)));
        }
        Ok(())
    }
}
