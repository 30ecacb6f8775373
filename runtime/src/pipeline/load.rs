//! Step `load` (spec §5.1): existence probe bounded in time (hung mounts),
//! the FITS layer's structure and headers, the content MD5 (started in the
//! background, joined by `dedupe`), and a cfitsio
//! check that the pixels are readable (through a repaired copy when the
//! file lacks END or padding).

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::jobhost::{PipelineHost, PixelHdu};
use super::{Job, Severity, StepResult};
use crate::fits::{self, HValue, HduKind, pixels};

/// Whether scaled pixel values of an HDU are integers.
fn integer_pixels(h: &fits::Hdu) -> bool {
    let int_card = |k: &str, d: f64| match h.value(k) {
        Some(HValue::Int(i)) => *i as f64,
        Some(HValue::Float(f)) => *f,
        _ => d,
    };
    let (scale, zero) = if h.kind == HduKind::CompressedImage {
        (int_card("BSCALE", int_card("ZSCALE", 1.0)), int_card("BZERO", int_card("ZZERO", 0.0)))
    } else {
        (int_card("BSCALE", 1.0), int_card("BZERO", 0.0))
    };
    h.bitpix > 0 && scale.fract() == 0.0 && zero.fract() == 0.0
}

impl Job<'_> {
    pub(super) fn step_load(&mut self) -> StepResult {
        let path = self.input.clone();
        // a stat that cannot hang the worker on a dead mount
        let (tx, rx) = mpsc::channel();
        let probe = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::metadata(&probe));
        });
        let meta = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(m) => m,
            Err(_) => {
                return Err(self.stop(Severity::Error, "FITS_FILE_TYPE_ERROR", "load", format!("{} did not answer within 5 s", path.display())));
            }
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.stop(Severity::Error, "FITS_NOT_FOUND", "load", path.display().to_string()));
            }
            Err(e) => return Err(self.stop(Severity::Error, "FITS_FILE_TYPE_ERROR", "load", format!("{}: {e}", path.display()))),
        };
        // a FIFO would block the reader forever, a device never ends
        if let Some(code) = crate::paths::file_type_code(&meta) {
            return Err(self.stop(Severity::Invalid, code, "load", format!("{} is not a regular file", path.display())));
        }
        self.mtime_utc = meta
            .modified()
            .ok()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000000".into());
        let file = match fits::load(&path) {
            Ok(f) => f,
            Err(e) => {
                let sev = if e.is_invalid() { Severity::Invalid } else { Severity::Error };
                return Err(self.stop(sev, e.code(), "load", e.to_string()));
            }
        };
        for w in &file.warnings {
            self.diag(Severity::Warn, w.code, "load", w.message.clone());
        }
        self.original = file.hdus.iter().map(|h| h.cards.clone()).collect();
        // pixels through cfitsio: repaired copy when needed
        let mut pixels_path = path.clone();
        if file.corrupted.is_empty() {
            if file.needs_repair() {
                let tmp = self.a.cfg.archive.root.join(&self.instrument).join("logtmp").join(format!("repaired-{}-{}.fits", self.id, std::process::id()));
                if let Some(d) = tmp.parent() {
                    let _ = std::fs::create_dir_all(d);
                }
                match fits::write::write_fits(&file, &tmp) {
                    Ok(_) => {
                        self.pixels_path = Some(tmp.clone());
                        pixels_path = tmp;
                    }
                    Err(e) => return Err(self.stop(Severity::Error, "WRITE_ERROR", "load", format!("repaired copy: {e}"))),
                }
            }
            if let Err(e) = pixels::Reader::open(&pixels_path).and_then(|mut r| r.count()) {
                return Err(self.stop(Severity::Invalid, "UNREADABLE_FITS", "load", e.to_string()));
            }
            // an independent parser must find the data where the card layer does
            if pixels_path == path {
                if let Err(e) = fits::write::check_data_units(&path, &file.data_units()) {
                    return Err(self.stop(Severity::Error, "DATA_UNIT_MISMATCH", "load", format!("the header parsers disagree: {e}")));
                }
            }
        }
        let unrepaired = pixels_path == path;
        let hdus = file
            .hdus
            .iter()
            .map(|h| PixelHdu {
                has_image: h.has_image(),
                integer: integer_pixels(h),
                direct: if unrepaired { pixels::Layout::of(h, file.size) } else { None },
            })
            .collect();
        self.host = Some(Arc::new(PipelineHost::new(
            pixels_path,
            hdus,
            self.a.services.clone(),
            self.log.clone(),
            Some((self.a.db.clone(), self.a.rt.clone())),
        )));
        self.log.info(&format!("loaded {} HDUs, {} bytes", file.hdus.len(), file.size));
        self.file = Some(file);
        Ok(())
    }
}
