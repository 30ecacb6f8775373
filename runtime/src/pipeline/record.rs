//! Step `record`: the koa_status row of the job (spec §4.3 steps 1–4): find
//! or create it, copy it to history and reset it when reprocessing, mark it
//! PROCESSING, and choose the input file (the stage copy when it exists).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{Archiver, Job, Severity, StepResult};
use crate::db::{NewJob, Status};

/// The row a command-line archive uses: the newest level-0 row of this path
/// when reprocessing, else a new PROCESSING row.
/// Returns the row id and whether it was inserted now.
pub(super) fn row_for_file(a: &Archiver, instrument: &str, path: &Path, reprocess: bool, transfer: bool) -> anyhow::Result<(i64, bool)> {
    // resolved before any rule: `..` and links, so the row names the real file
    let abs = path.canonicalize().or_else(|_| std::path::absolute(path))?;
    let ofname = abs.to_string_lossy().to_string();
    let instrument = instrument.to_uppercase();
    if reprocess {
        if let Some(row) = a.block(a.db.latest_by_ofname(0, &instrument, &ofname))? {
            return Ok((row.id, false));
        }
    }
    let id = a.block(a.db.insert_job(&NewJob {
        level: 0,
        instrument: &instrument,
        service: None,
        ofname: &ofname,
        status: Status::Processing,
        reprocess,
        transfer,
        stage_file: None,
        koaid: None,
    }))?;
    Ok((id, true))
}

impl Job<'_> {
    pub(super) fn step_record(&mut self) -> StepResult {
        let row = match self.a.block(self.a.db.get(self.id)) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(self.stop(Severity::Error, "DB_ID_NOT_FOUND", "record", format!("no koa_status row {}", self.id))),
            Err(e) => return Err(self.stop(Severity::Error, "QUERY_ERROR", "record", e.to_string())),
        };
        self.instrument = row.instrument.to_uppercase();
        if self.opts.reprocess || row.reprocess != 0 {
            self.opts.reprocess = true;
            // a dry run changes nothing in the job store
            if !self.opts.dry_run {
                if let Err(e) = self.a.block(self.a.db.archive_and_reset(self.id)) {
                    self.diag(Severity::Warn, "QUERY_ERROR", "record", format!("history copy: {e}"));
                }
            }
        }
        let claimed = row.status == "PROCESSING" && row.lease_owner.is_some();
        if !self.opts.dry_run {
            // a row this run did not claim from the queue gets a lease of its own
            let lease = Duration::from_secs(self.a.cfg.daemon.lease_s.max(3));
            let owner = crate::daemon::process_owner();
            let claim = (!claimed).then_some((owner.as_str(), lease));
            if let Err(e) = self.a.block(self.a.db.start_processing(self.id, claim)) {
                return Err(self.stop(Severity::Error, "QUERY_ERROR", "record", e.to_string()));
            }
            if !claimed {
                self.lease = Some(LeaseKeeper::start(self.a, self.id, owner, lease));
            }
        }
        self.input = match row.stage_file.as_deref().filter(|s| !s.is_empty() && Path::new(s).is_file()) {
            Some(stage) => stage.into(),
            None => row.ofname.clone().into(),
        };
        self.log.info(&format!("job {} {} {} (input {})", self.id, self.instrument, row.ofname, self.input.display()));
        self.row = Some(row);
        Ok(())
    }
}

/// Renews the lease of a job that took its own (not claimed from the
/// queue) every third of the lease until the job ends, so a killed command
/// line run's row comes back like a killed daemon's.
pub(crate) struct LeaseKeeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LeaseKeeper {
    fn start(a: &Archiver, id: i64, owner: String, lease: Duration) -> LeaseKeeper {
        let (tx, rx) = mpsc::channel::<()>();
        let (db, rt) = (a.db.clone(), a.rt.clone());
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(lease / 3) {
                if let Err(e) = rt.block_on(db.renew(id, &owner, lease)) {
                    tracing::warn!("lease renewal of job {id} failed: {e}");
                }
            }
        });
        LeaseKeeper { stop: Some(tx), thread: Some(thread) }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
