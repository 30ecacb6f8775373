//! Step `write` (spec §16.1): the lev-0 FITS — the original bytes with the
//! edited headers — written to a temporary name and MD5-summed on the way,
//! on its own thread while the previews render.
//! Reference defects fixed: #20 (FILESIZE_MB recorded), #25 (a failed write
//! removes only its own temporary file).

use super::{Job, Pending, Severity, StepResult};
use crate::fits::write::{check_data_units, write_fits};

impl Job<'_> {
    /// Start writing the lev-0 file on another thread.
    pub(super) fn step_write(&mut self) -> StepResult {
        let koaid = self.koaid.clone().expect("koaid");
        let lev0 = self.lev0.clone().expect("lev0");
        let tmp = lev0.join(format!(".{koaid}.fits.{}.tmp", std::process::id()));
        let file = self.file().clone();
        self.pending.push(Pending { tmp: tmp.clone(), dest: lev0.join(format!("{koaid}.fits")), md5: None });
        self.write_job = Some(std::thread::spawn(move || {
            let w = write_fits(&file, &tmp).map_err(|e| ("WRITE_FITS_ERROR", e.to_string()))?;
            check_data_units(&tmp, &w.data_units).map_err(|e| ("DATA_UNIT_MISMATCH", format!("the written file's data units are not the input's: {e}")))?;
            Ok(w)
        }));
        Ok(())
    }

    /// Wait for the lev-0 write (before anything reads the written file).
    pub(super) fn finish_write(&mut self) -> StepResult {
        let Some(h) = self.write_job.take() else { return Ok(()) };
        let (tmp, dest) = (self.pending[0].tmp.clone(), self.pending[0].dest.clone());
        let r = h.join().unwrap_or_else(|_| Err(("WRITE_FITS_ERROR", "writer thread failed".into())));
        match r {
            Ok(w) => {
                self.filesize_mb = Some(koa_pyfmt::round_to(w.bytes as f64 / 1e6, 4));
                self.log.info(&format!("wrote {} ({} bytes, md5 {})", dest.display(), w.bytes, w.md5));
                self.pending[0].md5 = Some(w.md5);
                Ok(())
            }
            Err((code, e)) => {
                let _ = std::fs::remove_file(&tmp);
                Err(self.stop(Severity::Error, code, "write", format!("{}: {e}", dest.display())))
            }
        }
    }
}
