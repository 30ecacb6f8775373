//! Step `preview` (spec §16.2, non-critical): the instrument component plans
//! the JPEGs (which HDUs, layout, scaling, size, names) from the identified
//! header; the thumbnail component renders each plan from host-owned pixels
//! under its memory cap and deadline, on its own thread while the lev-0
//! file is written; this step collects the JPEGs and names them by the
//! final KOAID. Any failure is a MAKE_JPG_ERROR warning.

use std::sync::Arc;

use super::{Job, Pending, Severity, StepResult};
use crate::pipeline::jobhost::PipelineHost;
use crate::sandbox::bindings::types::Preview;
use crate::sandbox::{ImageRes, JobHost, Sandbox};

/// One rendered preview: its file-name suffix and the JPEG or why not.
pub(crate) struct Rendered {
    pub suffix: String,
    pub plan: Preview,
    pub jpeg: Result<Vec<u8>, String>,
}

/// Render plans (on a background thread).
fn render_all(sandbox: &Sandbox, host: &PipelineHost, plans: Vec<Preview>) -> Vec<Rendered> {
    plans
        .into_iter()
        .map(|plan| {
            let suffix = plan.suffix.clone();
            if plan.prefer_sibling {
                // decided at collection time, when the sibling can be checked
                return Rendered { suffix, plan, jpeg: Err(String::new()) };
            }
            let mut images = Vec::with_capacity(plan.tiles.len());
            let hdus: Vec<u32> = plan.tiles.iter().map(|t| t.hdu).collect();
            for hdu in hdus {
                match host.open_image(hdu) {
                    Ok(i) => images.push(ImageRes(i)),
                    Err(e) => return Rendered { suffix, plan, jpeg: Err(format!("HDU {hdu}: {e}")) },
                }
            }
            let jpeg = match sandbox.render(&plan, images) {
                Ok(r) => r,
                Err(f) => Err(format!("{}: {f}", f.code())),
            };
            Rendered { suffix, plan, jpeg }
        })
        .collect()
}

impl Job<'_> {
    /// Plan the previews and start rendering them.
    pub(super) fn start_preview(&mut self) {
        let host = self.host.clone().expect("host");
        let ctx = self.context();
        let hdus = self.wit_hdus();
        let plans = match self.a.sandbox.preview_plan(&self.component(), &ctx, &hdus, host.clone()) {
            Ok(Ok(p)) => p,
            Ok(Err(why)) => {
                self.diag(Severity::Warn, "MAKE_JPG_ERROR", "preview", format!("no preview: {why}"));
                return;
            }
            Err(f) => {
                self.diag(Severity::Warn, "MAKE_JPG_ERROR", "preview", format!("{}: {f}", f.code()));
                return;
            }
        };
        if plans.is_empty() {
            self.log.info("no preview planned for this file");
            return;
        }
        let sandbox = Arc::clone(&self.a.sandbox);
        self.preview_job = Some(std::thread::spawn(move || render_all(&sandbox, &host, plans)));
    }

    pub(super) fn step_preview(&mut self) -> StepResult {
        let Some(job) = self.preview_job.take() else { return Ok(()) };
        let rendered = match job.join() {
            Ok(r) => r,
            Err(_) => {
                self.diag(Severity::Warn, "MAKE_JPG_ERROR", "preview", "the preview thread failed");
                return Ok(());
            }
        };
        let koaid = self.koaid.clone().expect("koaid");
        let lev0 = self.lev0.clone().expect("lev0");
        for r in rendered {
            let name = format!("{koaid}{}.jpg", r.suffix);
            let dest = lev0.join(&name);
            let tmp = lev0.join(format!(".{name}.{}.tmp", std::process::id()));
            let bytes = if r.plan.prefer_sibling {
                let ofname = self.row.as_ref().map(|r| r.ofname.clone()).unwrap_or_default();
                let sibling = std::path::PathBuf::from(ofname.replace(".fits", ".jpg"));
                match std::fs::read(&sibling) {
                    Ok(b) => {
                        self.log.info(&format!("preview copied from {}", sibling.display()));
                        Ok(b)
                    }
                    Err(_) => {
                        let host = self.host.clone().expect("host");
                        let mut plan = r.plan.clone();
                        plan.prefer_sibling = false;
                        render_all(&self.a.sandbox, &host, vec![plan]).remove(0).jpeg
                    }
                }
            } else {
                r.jpeg
            };
            match bytes.and_then(|b| std::fs::write(&tmp, &b).map(|_| b.len()).map_err(|e| e.to_string())) {
                Ok(n) => {
                    self.log.info(&format!("preview {name}: {n} bytes"));
                    self.pending.push(Pending { tmp, dest, md5: None });
                }
                Err(msg) => self.diag(Severity::Warn, "MAKE_JPG_ERROR", "preview", format!("{name}: {msg}")),
            }
        }
        Ok(())
    }
}
