//! Configuration: a TOML file with environment overrides
//! (`KOA_DEP__SECTION__KEY=value`, e.g. `KOA_DEP__DATABASE__URL`).
//! Every key has a default, so an empty file (or none) is a working
//! configuration on the embedded SQLite store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::sandbox::Limits;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub archive: Archive,
    pub database: Database,
    pub services: Services,
    pub components: Components,
    /// Per-instrument settings, keyed by upper-case instrument name.
    pub instruments: BTreeMap<String, Instrument>,
    /// The daemon (`koa-dep daemon`).
    pub daemon: Daemon,
    /// Instrument services the daemon watches (`[[service]]` tables).
    pub service: Vec<Service>,
    /// E-mail for errors.
    pub notify: Notify,
    /// Shipping products to the archive (rsync + ingest API).
    pub transfer: Transfer,
}

/// Transfer to IPAC (spec §17): rsync of a job's products, MD5 check at the
/// destination, then the ingest API call.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Transfer {
    /// Destination root, `account@server:/dir` (over ssh) or a local folder;
    /// products go to `<destination>/<INSTR>/<YYYYMMDD>/lev<N>/`. None: no transfer.
    pub destination: Option<String>,
    /// The rsync program and its options: the reference's `-avzR --no-t
    /// --compress-level=1` plus `--ignore-times` — without kept times rsync's
    /// size+time check can take a reprocessed product (same size, written in
    /// the same second) for the old copy and skip it.
    pub rsync: String,
    pub rsync_args: Vec<String>,
    /// The remote shell for `mkdir -p` and the MD5 check on a remote destination
    /// (also handed to rsync with `-e`).
    pub ssh: String,
    /// Wall-clock limit of one rsync/ssh run.
    pub timeout_s: u64,
    /// Check the MD5 of every transferred file at the destination.
    pub verify: bool,
    /// Ingest API prefix (`KOAXFR.INGESTAPI`, ends with `?` or `&`); the query
    /// `instrument=…&ingesttype=lev<N>&koaid=…` is appended. None: no ingest call.
    pub ingest_api: Option<String>,
    /// Tries of the ingest call on network errors / HTTP 5xx, and the first
    /// delay between them (doubling).
    pub ingest_tries: u32,
    pub ingest_retry_delay_s: f64,
    pub ingest_timeout_s: f64,
    /// Reply texts (case-insensitive, in APIStatus or Message) that mean "this
    /// KOAID is already ingested with the same content": success.
    pub already_ingested: Vec<String>,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            destination: None,
            rsync: "rsync".into(),
            rsync_args: vec!["-avzR".into(), "--no-t".into(), "--compress-level=1".into(), "--ignore-times".into()],
            ssh: "ssh".into(),
            timeout_s: 600,
            verify: true,
            ingest_api: None,
            ingest_tries: 3,
            ingest_retry_delay_s: 2.0,
            ingest_timeout_s: 30.0,
            already_ingested: vec!["already ingested".into()],
        }
    }
}

/// Settings of the long-running daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Daemon {
    /// Name of this daemon in lease records (default host-pid).
    pub name: Option<String>,
    /// Jobs running at once (default: the number of cores).
    pub max_jobs: Option<usize>,
    /// Memory the running jobs may use together, estimated from headers.
    pub memory_budget_mib: u64,
    /// Lease on a claimed job, renewed every third of it while it runs; a
    /// dead worker's jobs come back within lease + a third (default 45 s:
    /// a crash costs at most a minute). A restarted daemon takes back its
    /// own at once.
    pub lease_s: u64,
    /// How often an idle daemon looks at the queue.
    pub poll_s: f64,
    /// Retries of a job that failed for a transient reason, and the first delay.
    pub max_attempts: i64,
    pub retry_delay_s: u64,
    /// The journal (accepted triggers, outcomes waiting for the database).
    /// Default: `$STATE_DIRECTORY/journal` under systemd (a unit's
    /// `StateDirectory=`, off the archive disk), else `<archive.root>/journal`.
    /// Checked at start: writable, with `journal_min_free_mib` free.
    pub journal_dir: Option<PathBuf>,
    /// Free space the journal's filesystem needs at start (MiB).
    pub journal_min_free_mib: u64,
    /// Below this much free space on the archive disk (MiB) no job starts:
    /// the daemon waits, says so (`DISK_FULL`, `/healthz`), and resumes when
    /// space returns.
    pub min_free_mib: u64,
    /// How often temporary files of dead jobs are swept (s; 0: only at start).
    pub sweep_s: f64,
    /// A temporary is swept only when older than the oldest job running
    /// here by this much (s): spares other processes' jobs on the same disk.
    pub sweep_grace_s: f64,
    /// Daemon logs, one file per UT date (default `<archive.root>/log`).
    pub log_dir: Option<PathBuf>,
    /// Paths a trigger may point into (spec: `/sdata`, `/operations`), as
    /// path patterns compared with the resolved path component by
    /// component (`/s/sdata*` takes `/s/sdata1500/...`).
    pub accept_roots: Vec<String>,
    /// KTL `show` command, run as `<cmd> -s SERVICE -terse KEYWORD`.
    pub ktl_command: String,
    pub ktl_poll_s: f64,
    /// PostgreSQL with the keyword history (backfill after downtime).
    pub history_url: Option<String>,
    /// Status page and metrics (`host:port`); none: off.
    pub http_listen: Option<String>,
    /// Token that allows acknowledging errors on the status page.
    pub http_token: Option<String>,
    /// How often heartbeats and silent instruments are checked (s).
    pub check_s: f64,
    /// Callers of the IPAC ingest callback `/ingest_api`: name → bearer token
    /// (`Authorization: Bearer <token>`; the log names the caller). Empty:
    /// the endpoint answers 404.
    pub ingest_tokens: BTreeMap<String, String>,
    /// Addresses the callback accepts (`10.1.2.3`, `10.1.0.0/16`, `::1`); empty: any.
    pub ingest_allow: Vec<String>,
    /// Rows transferred longer than this (minutes) without IPAC's answer are
    /// shown on the status page (the reference mailed after 15).
    pub ipac_wait_min: f64,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            name: None,
            max_jobs: None,
            memory_budget_mib: 2048,
            lease_s: 45,
            poll_s: 0.5,
            max_attempts: 4,
            retry_delay_s: 30,
            journal_dir: None,
            journal_min_free_mib: 16,
            min_free_mib: 256,
            sweep_s: 3600.0,
            sweep_grace_s: 600.0,
            log_dir: None,
            accept_roots: vec!["/s/sdata*".into(), "/sdata*".into(), "/operations".into(), "/s/operations".into()],
            ktl_command: "show".into(),
            ktl_poll_s: 1.0,
            history_url: None,
            http_listen: None,
            http_token: None,
            check_s: 60.0,
            ingest_tokens: BTreeMap::new(),
            ingest_allow: vec![],
            ipac_wait_min: 15.0,
        }
    }
}

/// Where a service's triggers come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// KTL keyword polled with the `show` command.
    Ktl,
    /// An mKTL store: found through the registry (`{ store = "nids" }`), or at
    /// fixed addresses (`publish`, and `request` for reads).
    Mktl(MktlSource),
    /// New files in a folder (guider images, DRP outputs).
    Watch { dir: PathBuf, pattern: String },
    /// Only the keyword history / reconcile.
    None,
}

/// Where an mKTL store is (`source = { mktl = { … } }`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MktlSource {
    /// The store (any case; mKTL names are lower case on the wire). Default:
    /// the service's `ktl` name.
    #[serde(default)]
    pub store: Option<String>,
    /// Fixed publish address `tcp://host:port`; unset: the registry says.
    #[serde(default)]
    pub publish: Option<String>,
    /// Fixed request address for keyword reads; unset: the registry says
    /// (with a fixed `publish` and no `request`, nothing is read).
    #[serde(default)]
    pub request: Option<String>,
    /// The registry's discovery address `host:port` (UDP); default the
    /// broadcast address on port 10103.
    #[serde(default)]
    pub registry: Option<String>,
}

/// One instrument service (spec §22.1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name, stored in koa_status.service.
    pub name: String,
    /// KTL service (or mKTL store).
    pub ktl: String,
    pub instrument: String,
    /// Keyword whose broadcast announces a new file.
    pub trigger: String,
    /// Only broadcasts with this value trigger (e.g. WDISK false).
    #[serde(default)]
    pub required_value: Option<String>,
    /// Path built from fresh keyword reads, e.g. `{OUTDIR}/{OUTFILE}{LFRAMENO}.fits`.
    #[serde(default)]
    pub path_format: Option<String>,
    /// Zero-fill widths of path-format keywords.
    #[serde(default)]
    pub zfill: BTreeMap<String, usize>,
    /// Heartbeat keyword.
    #[serde(default)]
    pub heartbeat: Option<String>,
    /// Seconds without a heartbeat broadcast before the service counts as offline: the
    /// reference's period plus its 2 s grace (spec §22.1), e.g. INFOMCLK every 1 s → 3.0.
    #[serde(default)]
    pub heartbeat_s: Option<f64>,
    /// Transfer to IPAC after archiving.
    #[serde(default)]
    pub transfer: bool,
    #[serde(default = "default_source")]
    pub source: Source,
    /// Keyword-history table of this service (an identifier).
    #[serde(default)]
    pub history_table: Option<String>,
    /// Globs of the files this service writes (for `koa-dep reconcile`).
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Alert (SILENT_INSTRUMENT) when the instrument is scheduled, its
    /// heartbeat is alive and no file came for this many minutes.
    #[serde(default)]
    pub silent_minutes: Option<f64>,
}

fn default_source() -> Source {
    Source::Ktl
}

fn yes() -> bool {
    true
}

/// E-mail for errors (SMTP), throttled per instrument and code.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub from: String,
    pub to: Vec<String>,
    pub throttle_min: u64,
    /// Also mail warnings (each code at most once per throttle period).
    pub warnings: bool,
    /// Send the ingest callback's PI notice to the PI (administrators in
    /// Bcc); off: to the administrators only.
    pub pi_mail: bool,
    /// No PI notice for nights longer ago than this.
    pub pi_max_age_days: i64,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            smtp_host: None,
            smtp_port: 25,
            from: "koa-dep@localhost".into(),
            to: vec![],
            throttle_min: 60,
            warnings: false,
            pi_mail: false,
            pi_max_age_days: 7,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Archive {
    /// ROOTDIR: all products go under `<root>/<INSTR>/<YYYYMMDD>/lev<N>`.
    pub root: PathBuf,
    /// Value written to DQA_VERS.
    pub dep_version: String,
    /// Folder with `KOA_<INSTR>_Keyword_Table.txt` (a checkout of
    /// KeckObservatoryArchive/KeywordTables). Required wherever products
    /// are transferred; for local runs its absence is a warning.
    pub keyword_tables: Option<PathBuf>,
    /// Metadata tables on (default). `false` skips them on purpose (the
    /// demo on a clone without KOA's tables); products are then never
    /// transferred (a job asking for it ends METADATA_SCHEMA_MISSING).
    pub metadata: bool,
    /// MISC.ASSIGN_PROGNAME override.
    pub assign_progname: Option<String>,
    /// KOAID hundredths: false keeps the reference's archived behaviour.
    pub corrected_hundredths: bool,
    /// RUNTIME.DEV: metadata existence warnings on, no e-mail.
    pub dev: bool,
    /// The fixed KCWI level-2 DRP configuration file shipped with every
    /// level-2 KCWI product set (reference: `kcwi_koarti_lev2.cfg`).
    pub kcwi_lev2_config: Option<PathBuf>,
    /// INVALID inputs larger than this are recorded but not copied to
    /// `stage/udf` (a 2 GB non-FITS file is not kept twice).
    pub keep_invalid_max_mib: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite://path`, `postgres://…` or `mysql://…`.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Services {
    /// Offline answers (JSON); used instead of the network when set.
    pub fixture: Option<PathBuf>,
    /// Keck web API base URL (`…/api/`); none → services unavailable.
    pub api_url: Option<String>,
    /// EPICS archiver URL template; `{telnr}` is replaced.
    pub weather_url: Option<String>,
    pub timeout_s: f64,
    /// How long answers are cached.
    pub cache_s: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Components {
    /// Precompiled component cache (default: `<root>/.component-cache`).
    pub cache_dir: Option<PathBuf>,
    /// Components from files, overriding built-ins: name → path.
    pub files: BTreeMap<String, PathBuf>,
    /// Limits per component name.
    pub limits: BTreeMap<String, ComponentLimits>,
    /// Thumbnail instances rendering one large preview (≥ 4 Mpx, zscale)
    /// at once, each a strip of the picture under its own memory cap
    /// (default: one per core, at most 4; 1 renders every preview whole).
    pub preview_strips: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentLimits {
    pub memory_mib: usize,
    pub deadline_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Instrument {
    /// Telescope number (skips the getTelnr lookup).
    pub telescope: Option<u8>,
    /// The instrument's DRP command (the reference's `<INSTR>.DRP`, OSIRIS):
    /// split on blanks, the UT date (YYYY-MM-DD) appended, run by the
    /// critical `run_drp` step before the products are published.
    pub drp_command: Option<String>,
    /// Its time bound in seconds (default 600): past it the command is killed.
    pub drp_timeout_s: Option<f64>,
}

impl Default for Archive {
    fn default() -> Self {
        Archive {
            root: PathBuf::from("koadata"),
            dep_version: env!("CARGO_PKG_VERSION").to_string(),
            keyword_tables: None,
            metadata: true,
            assign_progname: None,
            corrected_hundredths: false,
            dev: false,
            kcwi_lev2_config: None,
            keep_invalid_max_mib: 512,
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Database { url: "sqlite://koa-dep.db".into(), max_connections: 8 }
    }
}

impl Default for Services {
    fn default() -> Self {
        Services { fixture: None, api_url: None, weather_url: None, timeout_s: 10.0, cache_s: 3600 }
    }
}

impl Default for Components {
    fn default() -> Self {
        Components { cache_dir: None, files: BTreeMap::new(), limits: BTreeMap::new(), preview_strips: None }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            archive: Archive::default(),
            database: Database::default(),
            services: Services::default(),
            components: Components::default(),
            instruments: BTreeMap::new(),
            daemon: Daemon::default(),
            service: Vec::new(),
            notify: Notify::default(),
            transfer: Transfer::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then the TOML file (if any), then `KOA_DEP__…` variables.
    /// Relative paths in the file are taken relative to the file's folder.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(ConfigError(format!("{} does not exist", p.display())));
            }
            fig = fig.merge(Toml::file(p));
        }
        fig = fig.merge(Env::prefixed("KOA_DEP__").split("__").lowercase(true));
        let mut cfg: Config = fig.extract().map_err(|e| ConfigError(e.to_string()))?;
        if let Some(base) = path.and_then(Path::parent) {
            cfg.resolve_relative(base);
        }
        Ok(cfg)
    }

    fn resolve_relative(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.archive.root);
        if let Some(p) = self.archive.keyword_tables.as_mut() {
            fix(p);
        }
        if let Some(p) = self.services.fixture.as_mut() {
            fix(p);
        }
        if let Some(p) = self.components.cache_dir.as_mut() {
            fix(p);
        }
        for p in self.components.files.values_mut() {
            fix(p);
        }
        for p in [self.daemon.journal_dir.as_mut(), self.daemon.log_dir.as_mut()].into_iter().flatten() {
            fix(p);
        }
        for s in &mut self.service {
            if let Source::Watch { dir, .. } = &mut s.source {
                fix(dir);
            }
        }
        if let Some(rest) = self.database.url.strip_prefix("sqlite://") {
            let p = Path::new(rest.split('?').next().unwrap_or(rest));
            if p.is_relative() && !rest.starts_with(':') {
                self.database.url = format!("sqlite://{}", base.join(rest).display());
            }
        }
    }

    /// Limits per component for the sandbox.
    pub fn component_limits(&self) -> BTreeMap<String, Limits> {
        self.components
            .limits
            .iter()
            .map(|(k, l)| {
                (k.to_lowercase(), Limits { memory: l.memory_mib << 20, deadline: Duration::from_secs_f64(l.deadline_s) })
            })
            .collect()
    }

    /// Strips per large preview (at least 1).
    pub fn preview_strips(&self) -> u32 {
        self.components
            .preview_strips
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(4) as u32)
            .max(1)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.components.cache_dir.clone().unwrap_or_else(|| self.archive.root.join(".component-cache"))
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.daemon.journal_dir.clone().unwrap_or_else(|| match std::env::var_os("STATE_DIRECTORY") {
            // systemd's StateDirectory= (the first, when it lists several)
            Some(s) if !s.is_empty() => PathBuf::from(s.to_string_lossy().split(':').next().unwrap_or_default()).join("journal"),
            _ => self.archive.root.join("journal"),
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.daemon.log_dir.clone().unwrap_or_else(|| self.archive.root.join("log"))
    }

    pub fn telescope(&self, instrument: &str) -> Option<u8> {
        self.instruments.get(&instrument.to_uppercase()).and_then(|i| i.telescope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_environment_layers() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[archive]\nroot = \"data\"\n[database]\nurl = \"sqlite://q.db\"\n[instruments.NIRES]\ntelescope = 2\n[components.limits.thumbnail]\nmemory_mib = 128\ndeadline_s = 5.0\n",
        )
        .unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(c.archive.root, dir.path().join("data"));
        assert_eq!(c.database.url, format!("sqlite://{}", dir.path().join("q.db").display()));
        assert_eq!(c.telescope("nires"), Some(2));
        assert_eq!(c.component_limits()["thumbnail"].memory, 128 << 20);
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
        std::fs::write(&f, "[archive]\nbogus = 1\n").unwrap();
        assert!(Config::load(Some(&f)).is_err(), "unknown keys are rejected");
    }

    #[test]
    fn shipped_examples_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        for name in ["sqlite.toml", "postgres.toml", "mariadb.toml"] {
            let c = Config::load(Some(&dir.join(name))).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!c.database.url.is_empty());
        }
        let c = Config::load(Some(&dir.join("sqlite.toml"))).unwrap();
        assert_eq!(c.telescope("NIRES"), Some(2));
        crate::services::fixture::Fixture::load(c.services.fixture.as_ref().unwrap()).unwrap();
    }

    #[test]
    fn the_reference_services_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let c = Config::load(Some(&dir.join("services.toml"))).unwrap();
        assert_eq!(c.service.len(), 24, "the reference's 23 and SCALES");
        let mut names: Vec<&str> = c.service.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 24, "unique service names");
        let by = |n: &str| c.service.iter().find(|s| s.name == n).unwrap();
        let esi = by("esi");
        assert_eq!((esi.trigger.as_str(), esi.required_value.as_deref()), ("WDISK", Some("false")));
        assert_eq!(esi.zfill.get("LFRAMENO"), Some(&4));
        assert_eq!(esi.heartbeat, None);
        let hires = by("hiccd");
        assert_eq!((hires.heartbeat.as_deref(), hires.heartbeat_s), (Some("INFOMCLK"), Some(3.0)));
        let koa = by("koa");
        assert_eq!((koa.instrument.as_str(), koa.trigger.as_str(), koa.transfer), ("KCWI", "LOUTFILE", false));
        let unp = by("alad_nirc2_unp");
        assert_eq!((unp.ktl.as_str(), unp.trigger.as_str()), ("alad", "RAWFITSFILE"));
        assert_eq!(by("nsds").heartbeat_s, Some(602.0), "period + 2 s grace");
        let scales = by("scales");
        assert_eq!((scales.instrument.as_str(), scales.ktl.as_str(), scales.trigger.as_str()), ("SCALES", "scops", "LASTFILE"));
        assert!(c.service.iter().filter(|s| s.name != "koa").all(|s| s.transfer));
    }
}
