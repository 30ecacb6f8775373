//! Step `preview` (spec §16.2, non-critical): the instrument component plans
//! the JPEGs (which HDUs, layout, scaling, size, names) from the identified
//! header; the thumbnail component renders each plan from host-owned pixels
//! under its memory cap and deadline, on its own thread while the lev-0
//! file is written; a large picture (a DEIMOS mosaic, a KCWI frame) is
//! rendered in strips by one instance per core at once and the strips
//! joined into one JPEG. This step collects the JPEGs and names them by the final KOAID.
//! Any failure is a MAKE_JPG_ERROR warning.

use std::sync::Arc;

use super::{Job, Pending, Severity, StepResult};
use crate::pipeline::jobhost::PipelineHost;
use crate::sandbox::bindings::types::{Preview, Scaling};
use crate::sandbox::{ComponentFailure, ImageRes, JobHost, Sandbox};

/// One rendered preview: its file-name suffix and the JPEG or why not.
pub(crate) struct Rendered {
    pub suffix: String,
    pub plan: Preview,
    pub jpeg: Result<Vec<u8>, String>,
}

/// Pictures of at least this many pixels are rendered in strips, one per
/// core, by separate thumbnail instances at once (a DEIMOS mosaic is 16.7
/// Mpx, a KCWI frame 5 Mpx; a NIRES frame, 2 Mpx, renders whole).
const STRIP_MIN_PIXELS: u64 = 4 << 20;

/// Render plans (on a background thread).
fn render_all(sandbox: &Sandbox, host: &PipelineHost, plans: Vec<Preview>, strips: u32) -> Vec<Rendered> {
    plans
        .into_iter()
        .map(|plan| {
            let suffix = plan.suffix.clone();
            if plan.prefer_sibling {
                // decided at collection time, when the sibling can be checked
                return Rendered { suffix, plan, jpeg: Err(String::new()) };
            }
            let jpeg = render_plan(sandbox, host, &plan, strips);
            Rendered { suffix, plan, jpeg }
        })
        .collect()
}

/// The host images of a plan's tiles.
fn images(host: &PipelineHost, plan: &Preview) -> Result<Vec<ImageRes>, String> {
    plan.tiles
        .iter()
        .map(|t| {
            let img = match t.plane {
                Some(pick) => host.open_plane(t.hdu, pick),
                None => host.open_image(t.hdu),
            };
            img.map(ImageRes).map_err(|e| format!("HDU {}: {e}", t.hdu))
        })
        .collect()
}

fn called<T>(r: Result<Result<T, String>, ComponentFailure>) -> Result<T, String> {
    r.map_err(|f| format!("{}: {f}", f.code()))?
}

/// Binned canvas pixels of a plan (rotation keeps the count).
fn canvas_pixels(plan: &Preview) -> u64 {
    let (w, h) = koa_preview::canvas_size_of(plan.bin, plan.tiles.iter().map(|t| (t.x, t.y, t.crop.nx, t.crop.ny)));
    w as u64 * h as u64
}

/// One plan: whole, or for a large picture in strips rendered at
/// once by one instance per core and joined (the same JPEG, restart
/// markers included, as one instance would write).
fn render_plan(sandbox: &Sandbox, host: &PipelineHost, plan: &Preview, strips: u32) -> Result<Vec<u8>, String> {
    let strippable = strips > 1 && plan.width.is_none() && canvas_pixels(plan) >= STRIP_MIN_PIXELS;
    if !strippable {
        return called(sandbox.render(plan, images(host, plan)?, host));
    }
    let layout = called(sandbox.layout(plan, images(host, plan)?, host))?;
    // a histogram-equalised plan has no limits: each strip equalises over all pixels
    let limits = match (layout.limits, plan.scaling) {
        (Some(l), _) => l,
        (None, Scaling::HistogramEqualize) => (0.0, 0.0),
        (None, _) => return called(sandbox.render(plan, images(host, plan)?, host)),
    };
    let rows = layout.height.div_ceil(strips).div_ceil(8) * 8;
    let bounds: Vec<(u32, u32)> =
        (0..layout.height).step_by(rows.max(8) as usize).map(|y0| (y0, rows.min(layout.height - y0))).collect();
    let strips: Vec<Result<Vec<u8>, String>> = std::thread::scope(|s| {
        let running: Vec<_> = bounds
            .iter()
            .map(|&(first, count)| s.spawn(move || called(sandbox.render_strip(plan, images(host, plan)?, (limits, first, count), host))))
            .collect();
        running.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a preview strip thread failed".into()))).collect()
    });
    let strips: Vec<Vec<u8>> = strips.into_iter().collect::<Result<_, _>>()?;
    koa_preview::jpeg::join(&strips)
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
        let strips = self.a.cfg.preview_strips();
        self.preview_job = Some(std::thread::spawn(move || render_all(&sandbox, &host, plans, strips)));
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
            if let Err(e) = crate::paths::check_name_part(&r.suffix) {
                return Err(self.stop(Severity::Error, "COMPONENT_CONTRACT", "preview", format!("preview suffix refused: {e}")));
            }
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
                        render_all(&self.a.sandbox, &host, vec![plan], self.a.cfg.preview_strips()).remove(0).jpeg
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
