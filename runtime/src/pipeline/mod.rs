//! The level-0 pipeline (design §2, spec pipeline.md §4–§16): one module per
//! step, run in order on one job:
//!
//! `record` (koa_status row, reprocess bookkeeping) → `load` (FITS layer,
//! content MD5) → `screen` (HDUs, corrupted HDUs, rejected paths: INVALID
//! before any component runs) → `identify` (component: KOAID, DATE-OBS/UTC
//! repair) → `dqa` (component: the instrument's step list) → `validate`
//! (OFNAME set by DQA matches the file) → `dedupe` (never lose a file: same content is a duplicate, a
//! different file with the same KOAID gets a unique one) → `write` (lev-0
//! FITS, on its own thread) → `preview` (thumbnail component, rendering
//! on another thread meanwhile) → `tables` (metadata,
//! extension tables) → `publish` (renames, MD5 table as the commit point,
//! headers row, header diff, raw stage copy) → `finish` (status, log).
//!
//! Jobs are synchronous and run on blocking threads; database calls block on
//! the runtime handle.

mod dedupe;
mod dqa;
mod drp;
mod finish;
pub mod identify;
pub mod inspect;
pub mod jobhost;
mod koapi;
mod load;
mod preview;
mod publish;
mod record;
mod resume;
mod run_drp;
mod tables;
mod transfer;
mod validate;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Config;
use crate::db::{Db, Status, StatusRow};
use crate::fits::FitsFile;
use crate::sandbox::Sandbox;
use crate::sandbox::bindings::types;
use crate::services::Services;
use crate::tables::keywords::KeywordTable;
pub use jobhost::JobLog;

/// Severity of a job diagnostic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Severity {
    Warn,
    Error,
    Invalid,
}

/// A status code raised while processing a file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Diag {
    pub severity: Severity,
    pub code: String,
    pub step: String,
    pub message: String,
}

/// How a job is run.
#[derive(Clone, Debug, Default)]
pub struct JobOptions {
    pub reprocess: bool,
    pub progid: Option<String>,
    /// Extra context options for the components (`key=value`).
    pub context: Vec<(String, String)>,
    /// Compute everything, write nothing (no products, no database changes
    /// beyond the job row).
    pub dry_run: bool,
    /// Transfer the products (None: as the job row says).
    pub transfer: Option<bool>,
    /// Set by `archive_file` for a dry run of a file the store did not know:
    /// its row is deleted at the end.
    #[doc(hidden)]
    pub temporary_row: bool,
}

/// What a job did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JobReport {
    pub id: i64,
    pub instrument: String,
    pub ofname: String,
    pub koaid: Option<String>,
    pub status: Status,
    pub status_code: Option<String>,
    pub message: Option<String>,
    pub diagnostics: Vec<Diag>,
    pub products: Vec<PathBuf>,
    /// Seconds per step.
    pub timings: Vec<(String, f64)>,
    pub steps: Vec<types::StepReport>,
    /// Header changes (the diff file's content).
    pub changes: Vec<HeaderChange>,
    /// The outcome, when the database could not take it (an outage): the
    /// daemon keeps it in its journal and records it when the database returns.
    #[serde(skip)]
    pub unrecorded: Option<crate::db::Outcome>,
}

/// One header change for the diff file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HeaderChange {
    pub hdu: usize,
    pub key: String,
    pub action: &'static str,
    pub old: Option<String>,
    pub new: Option<String>,
    pub step: String,
}

/// A write failed because the disk is full (ENOSPC, EDQUOT): the daemon
/// waits for space and retries the job without using up an attempt.
pub const DISK_FULL: &str = "DISK_FULL";

/// Ends a job early (the reason is already recorded as a diagnostic).
#[derive(Debug)]
pub struct Stop;

pub type StepResult = Result<(), Stop>;

/// Everything jobs share: configuration, job store, sandbox, services.
pub struct Archiver {
    pub cfg: Config,
    pub db: Db,
    pub sandbox: Arc<Sandbox>,
    pub services: Arc<dyn Services>,
    pub rt: tokio::runtime::Handle,
    /// Latency histograms and failure counters of the jobs run here.
    pub metrics: Arc<crate::metrics::Metrics>,
    tables: Mutex<HashMap<String, Arc<KeywordTable>>>,
}

impl Archiver {
    pub fn new(cfg: Config, db: Db, sandbox: Arc<Sandbox>, services: Arc<dyn Services>, rt: tokio::runtime::Handle) -> Self {
        Archiver { cfg, db, sandbox, services, rt, metrics: Arc::default(), tables: Mutex::new(HashMap::new()) }
    }

    /// The keyword table of an instrument (cached).
    /// The keyword table a metadata table of `instrument` is built from, or
    /// why there is none (metadata off, no folder configured, unreadable).
    /// The tables step and the daemon's start-up check both ask this.
    pub fn metadata_table(&self, instrument: &str) -> Result<Arc<KeywordTable>, String> {
        if !self.cfg.archive.metadata {
            return Err("metadata tables are off (archive.metadata = false)".into());
        }
        self.keyword_table(instrument).unwrap_or_else(|| Err("no keyword-table directory configured (archive.keyword_tables)".into()))
    }

    pub fn keyword_table(&self, instrument: &str) -> Option<Result<Arc<KeywordTable>, String>> {
        let dir = self.cfg.archive.keyword_tables.as_ref()?;
        let key = instrument.to_uppercase();
        if let Some(t) = self.tables.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Some(Ok(t.clone()));
        }
        Some(match KeywordTable::load(dir, &key) {
            Ok(t) => {
                let t = Arc::new(t);
                self.tables.lock().unwrap_or_else(|e| e.into_inner()).insert(key, t.clone());
                Ok(t)
            }
            Err(e) => Err(e.to_string()),
        })
    }

    /// Run the job of a koa_status row (synchronous; call from a blocking thread).
    /// A panic inside a job (a bug) ends that job ERROR `CODE_ERROR`; it
    /// never takes the process down or leaves the row PROCESSING.
    pub fn run_job(&self, id: i64, opts: &JobOptions) -> JobReport {
        let mut job = Job::new(self, id, opts.clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.execute()));
        if let Err(panic) = outcome {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            job.diag(Severity::Error, "CODE_ERROR", "internal", format!("internal error: {what}"));
        }
        let report = job.finish();
        if !opts.dry_run {
            self.metrics.record(&report);
        }
        report
    }

    /// Archive one file from the command line: reuse the newest level-0 row of
    /// this path when reprocessing, else insert a new PROCESSING row.
    pub fn archive_file(&self, instrument: &str, path: &Path, opts: &JobOptions) -> anyhow::Result<JobReport> {
        let (id, inserted) = record::row_for_file(self, instrument, path, opts.reprocess, opts.transfer.unwrap_or(false))?;
        let opts = JobOptions { temporary_row: opts.dry_run && inserted, ..opts.clone() };
        Ok(self.run_job(id, &opts))
    }

    /// Product directories of an instrument and UT date (YYYYMMDD).
    pub fn lev_dir(&self, instrument: &str, utdatedir: &str, level: i64) -> PathBuf {
        self.cfg.archive.root.join(instrument.to_uppercase()).join(utdatedir).join(format!("lev{level}"))
    }

    pub(crate) fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// A file written to a temporary name, renamed at publish.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub tmp: PathBuf,
    pub dest: PathBuf,
    pub md5: Option<String>,
}

/// The state of one job through its steps.
pub(crate) struct Job<'a> {
    pub a: &'a Archiver,
    pub id: i64,
    pub opts: JobOptions,
    pub started: Instant,
    pub row: Option<StatusRow>,
    pub instrument: String,
    pub input: PathBuf,
    pub file: Option<FitsFile>,
    /// A cfitsio-readable copy when the input needed repairs.
    pub pixels_path: Option<PathBuf>,
    pub original: Vec<Vec<crate::fits::Card>>,
    pub md5: Option<String>,
    /// Previews rendering in the background.
    pub preview_job: Option<std::thread::JoinHandle<Vec<preview::Rendered>>>,
    /// The lev-0 write running in the background.
    pub write_job: Option<std::thread::JoinHandle<Result<crate::fits::write::Written, (&'static str, String)>>>,
    /// The raw stage copy running in the background: (thread, temporary name, target).
    pub raw_copy_job: Option<(std::thread::JoinHandle<std::io::Result<()>>, PathBuf, PathBuf)>,
    /// The raw stage copy once it is in place (recorded after the commit point).
    pub stage_copy: Option<PathBuf>,
    /// Renews the lease of a row this job claimed itself (command line, `--dbid`).
    pub lease: Option<record::LeaseKeeper>,
    pub mtime_utc: String,
    pub koaid: Option<String>,
    pub utdate: Option<String>,
    pub utc: Option<String>,
    pub rtui: bool,
    pub lev0: Option<PathBuf>,
    pub diags: Vec<Diag>,
    pub steps: Vec<types::StepReport>,
    pub extra: Vec<(String, types::Value)>,
    pub keyskips: Vec<String>,
    pub followups: Vec<types::Followup>,
    pub pending: Vec<Pending>,
    pub products: Vec<PathBuf>,
    pub known_md5: BTreeMap<PathBuf, String>,
    pub timings: Vec<(String, f64)>,
    pub log: JobLog,
    pub host: Option<Arc<jobhost::PipelineHost>>,
    pub changes: Vec<HeaderChange>,
    pub filesize_mb: Option<f64>,
    pub archsize_mb: Option<f64>,
    pub duplicate_of: Option<i64>,
    /// The products reached the archive (status TRANSFERRED).
    pub transferred: bool,
    /// Levels 1/2: the products in the level folder (transfer list).
    pub drp_files: Option<Vec<PathBuf>>,
}

impl<'a> Job<'a> {
    fn new(a: &'a Archiver, id: i64, opts: JobOptions) -> Self {
        Job {
            a,
            id,
            opts,
            started: Instant::now(),
            row: None,
            instrument: String::new(),
            input: PathBuf::new(),
            file: None,
            pixels_path: None,
            original: Vec::new(),
            md5: None,
            preview_job: None,
            write_job: None,
            raw_copy_job: None,
            stage_copy: None,
            lease: None,
            mtime_utc: String::new(),
            koaid: None,
            utdate: None,
            utc: None,
            rtui: true,
            lev0: None,
            diags: Vec::new(),
            steps: Vec::new(),
            extra: Vec::new(),
            keyskips: Vec::new(),
            followups: Vec::new(),
            pending: Vec::new(),
            products: Vec::new(),
            known_md5: BTreeMap::new(),
            timings: Vec::new(),
            log: JobLog::default(),
            host: None,
            changes: Vec::new(),
            filesize_mb: None,
            archsize_mb: None,
            duplicate_of: None,
            transferred: false,
            drp_files: None,
        }
    }

    pub fn diag(&mut self, severity: Severity, code: &str, step: &str, message: impl Into<String>) {
        let message = message.into();
        // a write that failed for want of space is a wait, not a fault of the file
        let code = if severity == Severity::Error && crate::faults::is_disk_full(&message) { DISK_FULL } else { code };
        let line = format!("{step}: {code} {message}");
        match severity {
            Severity::Warn => self.log.warn(&line),
            _ => self.log.error(&line),
        }
        self.diags.push(Diag { severity, code: code.to_string(), step: step.to_string(), message });
    }

    /// Record a diagnostic and stop the job.
    pub fn stop(&mut self, severity: Severity, code: &str, step: &str, message: impl Into<String>) -> Stop {
        self.diag(severity, code, step, message);
        Stop
    }

    pub(crate) fn timed(&mut self, name: &str, f: impl FnOnce(&mut Self) -> StepResult) -> StepResult {
        crate::faults::step(name, false);
        let t = Instant::now();
        let r = f(self);
        self.timings.push((name.to_string(), t.elapsed().as_secs_f64()));
        crate::faults::step(name, true);
        r
    }

    /// The step sequence.
    fn execute(&mut self) -> StepResult {
        self.timed("record", Self::step_record)?;
        if self.row.as_ref().is_some_and(|r| r.level > 0) {
            return self.execute_drp();
        }
        // products published by an earlier run of this job: resume, never redo
        if let Some(lev0) = self.published_before() {
            return self.resume(lev0);
        }
        self.timed("load", Self::step_load)?;
        self.timed("screen", Self::step_screen)?;
        self.timed("identify", Self::step_identify)?;
        // two cores: the previews (planned from the identified header, which
        // is all the plans read) render while DQA runs and the lev-0 file is
        // written; a job that stops early waits for them and drops them
        if !self.opts.dry_run {
            self.start_preview();
        }
        self.timed("dqa", Self::step_dqa)?;
        self.timed("validate", Self::step_validate)?;
        self.timed("dedupe", Self::step_dedupe)?;
        if self.opts.dry_run {
            return Ok(());
        }
        self.start_raw_copy();
        self.timed("write", Self::step_write)?;
        self.timed("preview", Self::step_preview)?;
        self.timed("tables", Self::step_tables)?;
        self.timed("run_drp", Self::step_run_drp)?;
        self.timed("publish", Self::step_publish)?;
        self.timed("transfer", Self::step_transfer)?;
        self.timed("koapi", Self::step_koapi)?;
        Ok(())
    }

    /// The primary header as the component should see it now.
    pub fn file(&self) -> &FitsFile {
        self.file.as_ref().expect("file loaded")
    }

    pub fn file_mut(&mut self) -> &mut FitsFile {
        self.file.as_mut().expect("file loaded")
    }

    /// The job's component name (lower-case instrument).
    pub fn component(&self) -> String {
        self.instrument.to_lowercase()
    }
}

/// Convert a WIT value into a header value.
pub fn hvalue(v: &types::Value) -> crate::fits::HValue {
    use crate::fits::HValue;
    match v {
        types::Value::Text(s) => HValue::Text(s.clone()),
        types::Value::Int(i) => HValue::Int(*i),
        types::Value::Float(f) => HValue::Float(*f),
        types::Value::Logical(b) => HValue::Logical(*b),
        types::Value::Undefined => HValue::Undefined,
    }
}

/// Convert a header value into a WIT value.
pub fn wvalue(v: &crate::fits::HValue) -> types::Value {
    use crate::fits::HValue;
    match v {
        HValue::Text(s) => types::Value::Text(s.clone()),
        HValue::Int(i) => types::Value::Int(*i),
        HValue::Float(f) => types::Value::Float(*f),
        HValue::Logical(b) => types::Value::Logical(*b),
        HValue::Undefined => types::Value::Undefined,
    }
}
