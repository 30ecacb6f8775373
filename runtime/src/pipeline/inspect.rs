//! `koa-dep component run`: one component on one FITS file, in isolation but
//! under the same sandbox limits — identify, evaluate (on the identified
//! header) and preview-plan — with no database and no products written.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::JobOptions;
use super::identify::{apply_edits, make_context, wit_hdus};
use super::jobhost::{JobLog, PipelineHost, PixelHdu};
use crate::config::Config;
use crate::fits;
use crate::sandbox::Sandbox;
use crate::sandbox::bindings::types;
use crate::services::Services;

#[derive(Debug, Serialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// What the component said about the file.
#[derive(Debug, Serialize)]
pub struct Inspection {
    pub component: String,
    pub instrument: String,
    pub file: String,
    pub identity: Option<types::Identity>,
    pub identify_diagnostics: Vec<types::Diagnostic>,
    pub evaluation: Option<types::Evaluation>,
    pub previews: Vec<types::Preview>,
    /// Why the file's layout cannot be previewed (MAKE_JPG_ERROR in a job).
    pub preview_error: Option<String>,
    pub failure: Option<Failure>,
    pub log: Vec<String>,
}

impl Inspection {
    /// A readable report.
    pub fn print_table(&self) {
        println!("component {}  instrument {}  file {}", self.component, self.instrument, self.file);
        if let Some(f) = &self.failure {
            println!("FAILURE {}: {}", f.code, f.message);
        }
        if let Some(id) = &self.identity {
            println!("\nKOAID {}  prefix {}  utdate {}  utc {}  rtui {}", id.koaid, id.prefix, id.utdate, id.utc.as_deref().unwrap_or("-"), id.rtui);
        }
        let edits = self.identity.iter().flat_map(|i| &i.edits).chain(self.evaluation.iter().flat_map(|e| &e.edits));
        println!("\n{:<4} {:<10} {:<34} COMMENT", "HDU", "KEYWORD", "VALUE");
        for e in edits {
            match e {
                types::Edit::Set(s) => println!("{:<4} {:<10} {:<34} {}", s.hdu, s.key, format!("{:?}", s.value), s.comment),
                types::Edit::Remove((h, k)) => println!("{:<4} {:<10} (removed)", h, k),
            }
        }
        if let Some(ev) = &self.evaluation {
            if !ev.extra_meta.is_empty() {
                println!("\nextra metadata:");
                for (k, v) in &ev.extra_meta {
                    println!("  {k:<12} {v:?}");
                }
            }
            println!("\n{:<22} {:<5} {:<4} KEYWORDS", "STEP", "CRIT", "OK");
            for s in &ev.steps {
                println!("{:<22} {:<5} {:<4} {}", s.name, if s.critical { "Y" } else { "N" }, if s.ok { "ok" } else { "FAIL" }, s.keywords.join(" "));
            }
        }
        let diags = self.identify_diagnostics.iter().chain(self.evaluation.iter().flat_map(|e| &e.diagnostics));
        println!("\n{:<8} {:<26} {:<18} MESSAGE", "SEVERITY", "CODE", "STEP");
        for d in diags {
            println!("{:<8} {:<26} {:<18} {}", format!("{:?}", d.severity), d.code, d.step, d.message);
        }
        if let Some(why) = &self.preview_error {
            println!("\nno preview (MAKE_JPG_ERROR): {why}");
        }
        println!("\npreviews: {}", self.previews.iter().map(|p| format!("KOAID{}.jpg ({} tiles)", p.suffix, p.tiles.len())).collect::<Vec<_>>().join(", "));
    }
}

/// Run a component on a file.
pub fn inspect(
    sb: &Sandbox,
    services: Arc<dyn Services>,
    cfg: &Config,
    component: &str,
    instrument: &str,
    path: &Path,
    options: Vec<(String, String)>,
) -> anyhow::Result<Inspection> {
    let mut file = fits::load(path).map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
    let mtime = std::fs::metadata(path)?
        .modified()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default();
    let log = JobLog::default();
    let hdus = file.hdus.iter().map(|h| PixelHdu { has_image: h.has_image(), integer: h.bitpix > 0, direct: None }).collect();
    let host = Arc::new(PipelineHost::new(path.to_path_buf(), hdus, services, log.clone(), None));
    let opts = JobOptions { context: options, ..Default::default() };
    let ofname = path.display().to_string();
    let ctx = make_context(cfg, instrument, 0, path, &ofname, &mtime, &opts);
    let mut out = Inspection {
        component: component.to_string(),
        instrument: instrument.to_string(),
        file: path.display().to_string(),
        identity: None,
        identify_diagnostics: vec![],
        evaluation: None,
        previews: vec![],
        preview_error: None,
        failure: None,
        log: vec![],
    };
    let fail = |f: crate::sandbox::ComponentFailure| Some(Failure { code: f.code().into(), message: f.to_string() });
    match sb.identify(component, &ctx, &wit_hdus(&file), host.clone()) {
        Err(f) => out.failure = fail(f),
        Ok(Err(d)) => out.identify_diagnostics = d,
        Ok(Ok(id)) => {
            apply_edits(&mut file, &id.edits, &id.steps);
            out.identity = Some(id);
            match sb.evaluate(component, &ctx, &wit_hdus(&file), host.clone()) {
                Err(f) => out.failure = fail(f),
                Ok(ev) => {
                    apply_edits(&mut file, &ev.edits, &ev.steps);
                    out.evaluation = Some(ev);
                    match sb.preview_plan(component, &ctx, &wit_hdus(&file), host.clone()) {
                        Ok(Ok(p)) => out.previews = p,
                        Ok(Err(why)) => out.preview_error = Some(why),
                        Err(f) => out.failure = fail(f),
                    }
                }
            }
        }
    }
    out.log = log.text().lines().map(str::to_string).collect();
    Ok(out)
}
