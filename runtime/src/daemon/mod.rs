//! The daemon (spec pipeline.md §22, design §5 and §7): one process serving
//! any number of instrument services.
//!
//! * **sources** (KTL poller, mKTL subscriber, directory watcher) send
//!   broadcasts; [`trigger`] turns a broadcast into a file path or a reason
//!   to ignore it;
//! * every accepted trigger goes to the durable [`journal`] first; a replay
//!   task moves journal entries into the database queue and acknowledges
//!   them, so a database outage loses nothing;
//! * the **dispatcher** claims queued jobs with leases, estimates each job's
//!   memory from its headers and starts jobs while they fit the budget
//!   ([`admission`]); finished jobs with a transient failure come back after a
//!   backoff, dead workers' jobs come back when their lease expires;
//! * **heartbeats**: a silent service is an error only when its instrument is
//!   scheduled tonight; every error goes through [`crate::notify`];
//! * SIGTERM/SIGINT: sources stop, waiting claims are released, running jobs
//!   finish (nothing is left half-published);
//! * **faults** (issue 13): the daemon starts without its database (triggers
//!   go to the journal, the queue begins when the database answers); an
//!   outcome the database could not take waits in the journal; a restarted
//!   daemon takes back its own jobs at once; a full archive disk pauses the
//!   queue (`DISK_FULL`) instead of failing jobs; the [`sweeper`] removes
//!   temporaries of dead jobs.

pub mod admission;
pub mod journal;
pub mod liveness;
pub mod reconcile;
pub mod sweeper;
pub mod trigger;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::{Config, Service, Source};
use crate::db::{Db, DbError, Status, queue::Enqueued};
use crate::notify::Notifier;
use crate::pipeline::{Archiver, JobOptions, JobReport};
use crate::sources::{self, Broadcast, Reader, SourceError, SourceEvent, SourceState};
use admission::Admission;
use journal::{Journal, Retry, Settle};
use liveness::SourceStatus;
use trigger::Ignored;

/// Status codes of failures worth another attempt (database, services,
/// files still being written, disk). Everything INVALID is final.
pub const TRANSIENT: &[&str] = &[
    "QUERY_ERROR",
    "DATABASE_ERROR",
    "WRITE_ERROR",
    "FITS_FILE_TYPE_ERROR",
    "TRANSFER_ERROR",
    "INGEST_ERROR",
    "TELNR_API_ERROR",
    crate::pipeline::DISK_FULL,
];

/// Counters for the status page, the metrics endpoint and tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub broadcasts: AtomicU64,
    pub ignored: AtomicU64,
    pub accepted: AtomicU64,
    pub queued: AtomicU64,
    pub duplicates: AtomicU64,
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub retried: AtomicU64,
    pub released: AtomicU64,
    /// Outcomes kept in the journal while the database was away, then recorded.
    pub settled_late: AtomicU64,
    /// Temporary files of dead jobs removed, and their bytes.
    pub swept_files: AtomicU64,
    pub swept_bytes: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    /// (name, value) pairs.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("broadcasts", g(&self.broadcasts)),
            ("ignored", g(&self.ignored)),
            ("accepted", g(&self.accepted)),
            ("queued", g(&self.queued)),
            ("duplicates", g(&self.duplicates)),
            ("started", g(&self.started)),
            ("finished", g(&self.finished)),
            ("retried", g(&self.retried)),
            ("released", g(&self.released)),
            ("settled_late", g(&self.settled_late)),
            ("swept_files", g(&self.swept_files)),
            ("swept_bytes", g(&self.swept_bytes)),
        ]
    }
}

/// A finished job, as the daemon saw it (for the demo, the benchmark and tests).
#[derive(Clone, Debug)]
pub struct Finished {
    pub report: JobReport,
    /// Data level of the row (0 raw; 1/2 DRP products).
    pub level: i64,
    /// Seconds from the trigger (journal time) or the queue insert to the end.
    pub latency_s: f64,
    /// When the job ended.
    pub done_at: Instant,
}

/// The daemon.
pub struct Daemon {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    archiver: Arc<Archiver>,
    owner: String,
    journal: Mutex<Journal>,
    admission: Arc<Admission>,
    notifier: Notifier,
    /// Wakes the journal replay (new trigger).
    replay: Notify,
    /// Wakes the dispatcher (new job, a job finished).
    dispatch: Notify,
    stop: watch::Sender<bool>,
    /// Per service: whether a broadcast was seen since start, and the
    /// modification time of the last accepted file.
    seen: Mutex<HashMap<String, Option<SystemTime>>>,
    heartbeats: Mutex<HashMap<String, Instant>>,
    /// Jobs this daemon holds a lease on (waiting or running).
    held: Mutex<HashSet<i64>>,
    /// When each queued path was accepted (trigger-to-done latency).
    accepted_at: Mutex<HashMap<String, Instant>>,
    finished: Mutex<Vec<Finished>>,
    pub counters: Counters,
    /// When each service last had a file accepted.
    last_file: Mutex<HashMap<String, Instant>>,
    /// Services found silent at the last check.
    silent: Mutex<HashSet<String>>,
    /// What each service's source last said of itself.
    sources: Mutex<HashMap<String, SourceStatus>>,
    started: Instant,
    /// The database answered and its schema is koa-dep's: the queue may run.
    db_ready: watch::Sender<bool>,
    /// Why no job starts now (the archive disk is short of space).
    disk_short: Mutex<Option<String>>,
    /// Consecutive jobs that met a full disk (their retry's backoff).
    disk_waits: AtomicU64,
    /// Free bytes when a job last met a full disk: the wait ends when the
    /// disk has more than that (and `min_free_mib`).
    disk_free_at: AtomicU64,
    /// When each running job started (the sweeper spares their temporaries).
    running_since: Mutex<BTreeMap<i64, SystemTime>>,
    /// Where the status page listens.
    http_addr: std::sync::OnceLock<std::net::SocketAddr>,
}

impl Daemon {
    /// Connect to everything a configuration names.
    /// A database that does not answer does not stop the start: the daemon
    /// runs on its journal and begins the queue when the database answers.
    pub async fn new(cfg: Config) -> anyhow::Result<Daemon> {
        let archiver = Arc::new(crate::app::archiver_waiting_for_db(cfg.clone()).await?);
        Daemon::with_archiver(cfg, archiver)
    }

    /// The journal's folder: writable (the journal opened in it), with room,
    /// and preferably not on the archive disk (a full archive disk would
    /// otherwise stop the triggers too).
    fn check_journal_dir(cfg: &Config) -> anyhow::Result<()> {
        let dir = cfg.journal_dir();
        let free = crate::faults::free_bytes(&dir).map_err(|e| anyhow::anyhow!("journal {}: {e}", dir.display()))?;
        if free < cfg.daemon.journal_min_free_mib << 20 {
            anyhow::bail!(
                "journal {}: {} MiB free, below daemon.journal_min_free_mib = {}; free space or set daemon.journal_dir elsewhere",
                dir.display(),
                free >> 20,
                cfg.daemon.journal_min_free_mib
            );
        }
        if crate::faults::device(&dir) == crate::faults::device(&cfg.archive.root) {
            tracing::warn!(
                "the journal {} is on the archive disk: a full disk would stop triggers as well as jobs; set daemon.journal_dir (or run under systemd with StateDirectory=)",
                dir.display()
            );
        }
        Ok(())
    }

    /// Products never leave the machine without a metadata table: every
    /// instrument of a service that transfers needs a readable keyword table.
    fn check_metadata_tables(cfg: &Config, archiver: &Archiver) -> anyhow::Result<()> {
        let mut instruments: Vec<&str> = cfg.service.iter().filter(|s| s.enabled && s.transfer).map(|s| s.instrument.as_str()).collect();
        instruments.sort();
        instruments.dedup();
        let mut missing = Vec::new();
        for instrument in instruments {
            if let Err(why) = archiver.metadata_table(instrument) {
                missing.push(format!("{instrument}: {why}"));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "services transfer products, which need a metadata table, but no readable keyword table was found ({}); set archive.keyword_tables to a KeywordTables checkout or turn transfer off for those services",
            missing.join("; ")
        )
    }

    /// A service that transfers needs somewhere to transfer to: found at
    /// start, not as rows that can never reach IPAC.
    fn check_transfer_destination(cfg: &Config) -> anyhow::Result<()> {
        let transferring: Vec<&str> = cfg.service.iter().filter(|s| s.enabled && s.transfer).map(|s| s.name.as_str()).collect();
        if transferring.is_empty() || cfg.transfer.destination.as_deref().is_some_and(|d| !d.trim().is_empty()) {
            return Ok(());
        }
        anyhow::bail!(
            "services {} transfer their products, but transfer.destination is not set; set it (and transfer.ingest_api) or turn transfer off for them",
            transferring.join(", ")
        )
    }

    /// A daemon around an existing archiver (tests run several on one queue).
    pub fn with_archiver(cfg: Config, archiver: Arc<Archiver>) -> anyhow::Result<Daemon> {
        Self::check_metadata_tables(&cfg, &archiver)?;
        Self::check_transfer_destination(&cfg)?;
        // koa_status.service is VARCHAR(16) in KOA's database
        if let Some(s) = cfg.service.iter().find(|s| s.name.chars().count() > 16) {
            anyhow::bail!("service name {:?} is longer than 16 characters (koa_status.service)", s.name);
        }
        let journal = Journal::open(&cfg.journal_dir()).map_err(|e| anyhow::anyhow!("journal {}: {e}", cfg.journal_dir().display()))?;
        Self::check_journal_dir(&cfg)?;
        let owner = cfg.daemon.name.clone().unwrap_or_else(process_owner);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let max_jobs = cfg.daemon.max_jobs.unwrap_or(cores);
        let admission = Arc::new(Admission::new(cfg.daemon.memory_budget_mib << 20, max_jobs, Duration::from_secs(60)));
        let notifier = Notifier::new(cfg.notify.clone(), archiver.db.clone());
        let (stop, _) = watch::channel(false);
        let (db_ready, _) = watch::channel(false);
        Ok(Daemon {
            inner: Arc::new(Inner {
                cfg,
                archiver,
                owner,
                journal: Mutex::new(journal),
                admission,
                notifier,
                replay: Notify::new(),
                dispatch: Notify::new(),
                stop,
                seen: Mutex::new(HashMap::new()),
                heartbeats: Mutex::new(HashMap::new()),
                held: Mutex::new(HashSet::new()),
                accepted_at: Mutex::new(HashMap::new()),
                finished: Mutex::new(Vec::new()),
                counters: Counters::default(),
                last_file: Mutex::new(HashMap::new()),
                silent: Mutex::new(HashSet::new()),
                sources: Mutex::new(HashMap::new()),
                started: Instant::now(),
                db_ready,
                disk_short: Mutex::new(None),
                disk_waits: AtomicU64::new(0),
                disk_free_at: AtomicU64::new(0),
                running_since: Mutex::new(BTreeMap::new()),
                http_addr: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub fn db(&self) -> &Db {
        &self.inner.archiver.db
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// (peak reserved, budget) of the memory admission, bytes.
    pub fn admission_peak(&self) -> (u64, u64) {
        (self.inner.admission.peak(), self.inner.admission.budget())
    }

    /// The status page's address once it listens (`daemon.http_listen`).
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.http_addr.get().copied()
    }

    /// Services as the status page shows them.
    pub fn services_view(&self) -> Vec<crate::http::ServiceView> {
        crate::http::DaemonView::services(&*self.inner)
    }

    /// Jobs finished so far (drained).
    pub fn take_finished(&self) -> Vec<Finished> {
        std::mem::take(&mut *lock(&self.inner.finished))
    }

    /// Journal entries not yet in the database.
    pub fn journal_pending(&self) -> usize {
        lock(&self.inner.journal).pending().len()
    }

    /// Job outcomes waiting in the journal for the database.
    pub fn journal_settles(&self) -> usize {
        lock(&self.inner.journal).settles().len()
    }

    /// Whether the queue runs (the database answered).
    pub fn database_ready(&self) -> bool {
        *self.inner.db_ready.borrow()
    }

    /// Why no job starts now, when the archive disk is short of space.
    pub fn disk_short(&self) -> Option<String> {
        lock(&self.inner.disk_short).clone()
    }

    /// Hand a broadcast to the trigger rules (what sources do).
    pub async fn broadcast(&self, b: Broadcast) {
        self.inner.on_broadcast(b, &HashMap::new()).await
    }

    /// Accept a file for a service (journal first, then the queue).
    pub fn accept(&self, service: &Service, path: &str) -> anyhow::Result<u64> {
        self.inner.accept(service, path, false)
    }

    /// Run until `shutdown` completes: sources, journal replay, dispatcher,
    /// lease renewal, heartbeat checks. Returns after a clean stop.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let inner = self.inner.clone();
        tracing::info!(
            "daemon {} starting: {} services, budget {} MiB, {} jobs at most",
            inner.owner,
            inner.cfg.service.iter().filter(|s| s.enabled).count(),
            inner.cfg.daemon.memory_budget_mib,
            inner.admission_max()
        );
        if let Some(listen) = inner.cfg.daemon.http_listen.clone() {
            let state = Arc::new(crate::http::StatusState { archiver: inner.archiver.clone(), daemon: Some(inner.clone()) });
            let addr = crate::http::serve(&listen, state, inner.stop.subscribe()).await?;
            tracing::info!("status page on http://{addr}/");
            let _ = inner.http_addr.set(addr);
        }
        let mut tasks = JoinSet::new();
        // the queue begins when the database answers (it may be away at start)
        let (fatal_tx, fatal_rx) = tokio::sync::oneshot::channel::<String>();
        let i = inner.clone();
        tasks.spawn(async move { i.await_database(fatal_tx).await });
        // temporaries of dead jobs, at start and periodically
        let i = inner.clone();
        tasks.spawn(async move { i.sweep_loop().await });
        // free space on the archive disk
        let i = inner.clone();
        tasks.spawn(async move { i.disk_loop().await });
        let (tx, mut rx) = mpsc::channel::<Broadcast>(1024);
        let (etx, mut erx) = mpsc::channel::<SourceEvent>(256);
        let (readers, _watchers) = inner.start_sources(&mut tasks, tx.clone(), etx.clone()).await;
        drop(tx);
        drop(etx);
        let readers = Arc::new(readers);

        // broadcasts → trigger rules: in order per service, services side by side
        let i = inner.clone();
        let r = readers.clone();
        tasks.spawn(async move { i.route_broadcasts(&mut rx, r).await });
        // what sources say of themselves
        let i = inner.clone();
        tasks.spawn(async move {
            while let Some(ev) = erx.recv().await {
                i.source_event(ev).await;
            }
        });
        // keyword-history backfill for the gap since the last broadcast seen
        let i = inner.clone();
        let r = readers.clone();
        tasks.spawn(async move { i.backfill(&r).await });
        // journal → queue
        let i = inner.clone();
        tasks.spawn(async move { i.replay_loop().await });
        // leases
        let i = inner.clone();
        tasks.spawn(async move { i.lease_loop().await });
        // heartbeats
        let i = inner.clone();
        tasks.spawn(async move { i.heartbeat_loop().await });

        let dispatcher = tokio::spawn({
            let i = inner.clone();
            async move { i.dispatch_loop().await }
        });

        let fatal = tokio::select! {
            _ = shutdown => None,
            Ok(why) = fatal_rx => Some(why),
        };
        tracing::info!("daemon {} stopping", inner.owner);
        let _ = inner.stop.send(true);
        inner.dispatch.notify_one();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        // running jobs finish; waiting claims are released by the dispatcher
        let _ = dispatcher.await;
        // a last attempt to hand journalled triggers to the database
        if *inner.db_ready.borrow() {
            inner.replay_once().await;
        }
        tracing::info!("daemon {} stopped", inner.owner);
        match fatal {
            Some(why) => Err(anyhow::anyhow!(why)),
            None => Ok(()),
        }
    }
}

/// This process as a lease owner: `<host>-<pid>` (a daemon without a
/// `daemon.name`, a command-line run).
pub fn process_owner() -> String {
    format!("{}-{}", host_name(), std::process::id())
}

/// This machine's name (lease owner records).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// Whether a lease `owner` is an earlier run of the daemon `me` on `host`:
/// the same configured name, or `<host>-<pid>` of a process that is gone.
fn previous_incarnation(owner: &str, me: &str, host: &str, named: bool) -> bool {
    if named {
        return owner == me;
    }
    let Some(pid) = owner.strip_prefix(host).and_then(|r| r.strip_prefix('-')).and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn stopping(rx: &watch::Receiver<bool>) -> bool {
    *rx.borrow()
}

impl Inner {
    /// Wait until the database answers with koa-dep's schema (migrating it),
    /// then record the outcomes the journal kept, take back this daemon's
    /// own jobs and expired leases, and let the queue run. A schema koa-dep
    /// must not use (KOA's, not yet adopted; a newer one) stops the daemon.
    async fn await_database(&self, fatal: tokio::sync::oneshot::Sender<String>) {
        let mut said = false;
        loop {
            match self.archiver.db.ensure_schema().await {
                Ok(()) => break,
                Err(DbError::Schema(why)) => {
                    tracing::error!("database refused: {why}");
                    let _ = fatal.send(why);
                    return;
                }
                Err(e) => {
                    if !said {
                        tracing::warn!("database not answering ({e}): triggers wait in the journal, the queue starts when it answers");
                        said = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        if said {
            tracing::info!("database answers: the queue starts");
        }
        self.settle_journalled().await;
        match self.archiver.db.requeue_expired().await {
            Ok(n) if n > 0 => tracing::warn!("{n} jobs with expired leases back in the queue"),
            Ok(_) => {}
            Err(e) => tracing::warn!("lease check failed: {e}"),
        }
        self.reclaim_own().await;
        // send_replace: stored even when nobody waits yet (send would drop it)
        self.db_ready.send_replace(true);
        self.replay.notify_one();
        self.dispatch.notify_one();
    }

    /// Wait for the queue to be allowed to run.
    async fn until_db_ready(&self) {
        let mut rx = self.db_ready.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Temporaries of dead jobs, at start and every `daemon.sweep_s`: files
    /// older than the oldest job running here, less `daemon.sweep_grace_s`.
    async fn sweep_loop(&self) {
        let root = self.cfg.archive.root.clone();
        let grace = Duration::from_secs_f64(self.cfg.daemon.sweep_grace_s.max(0.0));
        loop {
            let oldest = lock(&self.running_since).values().min().copied().unwrap_or_else(SystemTime::now);
            let cutoff = oldest - grace;
            let r = root.clone();
            let (files, bytes) = tokio::task::spawn_blocking(move || sweeper::sweep(&r, cutoff)).await.unwrap_or((0, 0));
            if files > 0 {
                tracing::warn!("swept {files} temporary files ({bytes} bytes) of jobs that died");
                self.counters.swept_files.fetch_add(files, Ordering::Relaxed);
                self.counters.swept_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            if self.cfg.daemon.sweep_s <= 0.0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64(self.cfg.daemon.sweep_s.max(1.0))).await;
        }
    }

    /// The archive disk's free space, every few seconds: below
    /// `daemon.min_free_mib` no job starts (`DISK_FULL`, once per episode,
    /// through the one error path); when space returns the queue resumes.
    async fn disk_loop(&self) {
        let min = self.cfg.daemon.min_free_mib << 20;
        loop {
            let root = self.cfg.archive.root.clone();
            let free = tokio::task::spawn_blocking(move || crate::faults::free_bytes(&root)).await.ok().and_then(|r| r.ok());
            match free {
                Some(free) if free < min => {
                    let why = format!("{} MiB free on {}, below daemon.min_free_mib = {}", free >> 20, self.cfg.archive.root.display(), min >> 20);
                    self.disk_full(why).await;
                }
                // a job met a full disk with this much free: wait for more
                Some(free) if free < self.disk_free_at.load(Ordering::Relaxed).saturating_add(1 << 20) && lock(&self.disk_short).is_some() => {}
                Some(_) => {
                    if lock(&self.disk_short).take().is_some() {
                        self.disk_free_at.store(0, Ordering::Relaxed);
                        tracing::info!("archive disk has room again: the queue resumes");
                        self.disk_waits.store(0, Ordering::Relaxed);
                        self.dispatch.notify_one();
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_secs_f64(self.cfg.daemon.poll_s.clamp(0.2, 5.0) * 4.0)).await;
        }
    }

    /// The archive disk is full: no job starts until it has room; said once per episode.
    async fn disk_full(&self, why: String) {
        let first = lock(&self.disk_short).replace(why.clone()).is_none();
        if first {
            tracing::error!("DISK_FULL {why}: no job starts until there is room");
            self.report("DEP", crate::pipeline::DISK_FULL, &format!("{why}: jobs wait and resume when there is room")).await;
        }
    }

    /// Record the outcomes the journal kept while the database was away.
    /// Returns whether all went in.
    async fn settle_journalled(&self) -> bool {
        let settles = lock(&self.journal).settles();
        for s in settles {
            match self.settle_now(&s).await {
                Ok(recorded) => {
                    if recorded {
                        Counters::bump(&self.counters.settled_late);
                        tracing::info!("job {}: outcome kept during the outage recorded", s.id);
                    } else {
                        tracing::warn!("job {}: taken by another worker meanwhile; its journalled outcome is dropped", s.id);
                    }
                    lock(&self.held).remove(&s.id);
                    if let Err(e) = lock(&self.journal).settled(s.id) {
                        tracing::error!("journal: {e}");
                    }
                }
                Err(e) => {
                    tracing::debug!("job {}: outcome still waits: {e}", s.id);
                    return false;
                }
            }
        }
        true
    }

    /// Record one outcome (and its retry), if the row is still this owner's.
    async fn settle_now(&self, s: &Settle) -> Result<bool, DbError> {
        let db = &self.archiver.db;
        if !db.settle_late(s.id, &s.owner, Some(&s.outcome)).await? {
            return Ok(false);
        }
        if let Some(r) = &s.retry {
            if !db.retry_later(s.id, Duration::from_secs_f64(r.delay_s), r.max_attempts, r.counted).await? {
                let code = s.outcome.status_code.clone().unwrap_or_default();
                self.report(&self.instrument_of(s.id).await, &code, &format!("job {}: {code}, attempts exhausted", s.id)).await;
            }
        }
        Ok(true)
    }

    async fn instrument_of(&self, id: i64) -> String {
        self.archiver.db.get(id).await.ok().flatten().map(|r| r.instrument).unwrap_or_else(|| "DEP".into())
    }

    /// Jobs a previous incarnation of this daemon held come back at once,
    /// not when their lease expires: those of this daemon's own configured
    /// name (one daemon per name), and those of `<this host>-<pid>` whose
    /// process is gone.
    async fn reclaim_own(&self) {
        let owners = match self.archiver.db.lease_owners().await {
            Ok(o) => o,
            Err(e) => return tracing::warn!("lease owners not read: {e}"),
        };
        let host = host_name();
        for owner in owners.into_iter().filter(|o| previous_incarnation(o, &self.owner, &host, self.cfg.daemon.name.is_some())) {
            match self.archiver.db.requeue_owner(&owner).await {
                Ok(n) if n > 0 => tracing::warn!("{n} jobs of {owner} (an earlier run of this daemon) back in the queue"),
                Ok(_) => {}
                Err(e) => tracing::warn!("reclaiming the jobs of {owner}: {e}"),
            }
        }
    }

    fn admission_max(&self) -> usize {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        self.cfg.daemon.max_jobs.unwrap_or(cores)
    }

    fn service(&self, unique: &str) -> Option<&Service> {
        self.cfg.service.iter().find(|s| s.name == unique && s.enabled)
    }

    /// Start every enabled service's source; returns the keyword readers by
    /// service and the directory watchers (kept alive by the caller).
    async fn start_sources(
        self: &Arc<Self>,
        tasks: &mut JoinSet<()>,
        tx: mpsc::Sender<Broadcast>,
        etx: sources::Events,
    ) -> (HashMap<String, Arc<dyn Reader>>, Vec<sources::watch::Watch>) {
        let mut readers: HashMap<String, Arc<dyn Reader>> = HashMap::new();
        let mut watchers = Vec::new();
        for s in self.cfg.service.iter().filter(|s| s.enabled) {
            let mut keys = vec![s.trigger.clone()];
            keys.extend(s.heartbeat.clone());
            match &s.source {
                Source::Ktl => {
                    let ktl = sources::ktl::Ktl {
                        command: self.cfg.daemon.ktl_command.clone(),
                        service: s.ktl.clone(),
                        timeout: Duration::from_secs(10),
                    };
                    readers.insert(s.name.clone(), Arc::new(ktl.clone()));
                    let interval = Duration::from_secs_f64(self.cfg.daemon.ktl_poll_s.max(0.05));
                    tasks.spawn(ktl.poll(s.name.clone(), keys, interval, tx.clone(), etx.clone()));
                }
                Source::Mktl(m) => {
                    // nothing connects here: the source's own task and reads do, each bounded
                    let mut settings = sources::mktl::Settings::new(m.store.as_deref().unwrap_or(&s.ktl));
                    settings.publish = m.publish.clone();
                    settings.request = m.request.clone();
                    settings.registry = m.registry.clone();
                    let mktl = Arc::new(sources::mktl::Mktl::new(settings));
                    readers.insert(s.name.clone(), mktl.clone());
                    let silence = s.heartbeat.as_ref().and(s.heartbeat_s).map(|h| Duration::from_secs_f64(h.max(1.0)));
                    let (name, tx, etx) = (s.name.clone(), tx.clone(), etx.clone());
                    tasks.spawn(async move { mktl.subscribe(name, keys, silence, tx, etx).await });
                }
                Source::Watch { dir, pattern } => {
                    let started = std::fs::create_dir_all(dir).map_err(|e| e.to_string()).and_then(|_| {
                        sources::watch::start(dir, pattern, &s.name, tx.clone()).map_err(|e| e.to_string())
                    });
                    match started {
                        Ok(w) => {
                            watchers.push(w);
                            sources::tell(&etx, &s.name, SourceState::Up(format!("watching {}", dir.display()))).await;
                        }
                        Err(e) => {
                            let e = SourceError::Start(format!("watch {}: {e}", dir.display()));
                            sources::tell(&etx, &s.name, SourceState::Failed(e)).await;
                            continue;
                        }
                    }
                    // files that arrived while the daemon was down: the database decides
                    for p in sources::watch::existing(dir, pattern) {
                        let b = Broadcast { service: s.name.clone(), keyword: s.trigger.clone(), value: p.display().to_string(), time: sources::now_secs() };
                        let _ = tx.send(b).await;
                    }
                }
                Source::None => {}
            }
        }
        (readers, watchers)
    }

    /// The trigger rules for one broadcast (spec §22.2, with the first
    /// broadcast after start decided by the database).
    async fn on_broadcast(&self, b: Broadcast, readers: &HashMap<String, Arc<dyn Reader>>) {
        Counters::bump(&self.counters.broadcasts);
        let Some(service) = self.service(&b.service).cloned() else {
            tracing::warn!("broadcast for unknown service {}", b.service);
            return;
        };
        if service.heartbeat.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(&b.keyword)) {
            lock(&self.heartbeats).insert(service.name.clone(), Instant::now());
            return;
        }
        // a watched folder's file is its own trigger
        let watched = matches!(service.source, Source::Watch { .. });
        if !watched {
            if let Err(why) = trigger::check_trigger(&service, &b.keyword, &b.value) {
                if why == Ignored::Unpopulated {
                    tracing::warn!("{} KEYWORD_UNPOPULATED: {} has no value", service.name, b.keyword);
                }
                Counters::bump(&self.counters.ignored);
                return;
            }
        }
        let raw = match (&service.path_format, watched) {
            (Some(format), false) => {
                let Some(reader) = readers.get(&service.name) else {
                    tracing::error!("{} KTL_READ_ERROR: no keyword reader for the path format", service.name);
                    return;
                };
                let mut values = BTreeMap::new();
                for k in trigger::format_keywords(format) {
                    match reader.read(&k).await {
                        Ok(v) => {
                            values.insert(k, v);
                        }
                        Err(e) => {
                            // a lost trigger: reported every time, with what it said (reconcile finds the file later)
                            let text = format!("trigger {}={:?} lost: reading {k}: {e}", b.keyword, b.value);
                            self.read_failed(&service, SourceError::Read(text)).await;
                            return;
                        }
                    }
                }
                self.read_worked(&service).await;
                // a blank keyword builds a path that cannot be the file: the trigger is lost, say so
                if let Some((k, _)) = values.iter().find(|(_, v)| v.trim().is_empty()) {
                    let text = format!("{}: trigger {}={:?} lost: {k} is empty", service.name, b.keyword, b.value);
                    self.report(&service.instrument, "KEYWORD_UNPOPULATED", &text).await;
                    Counters::bump(&self.counters.ignored);
                    return;
                }
                match trigger::format_path(format, &values, &service.zfill) {
                    Ok(p) => p,
                    Err(e) => {
                        self.read_failed(&service, SourceError::Read(e)).await;
                        return;
                    }
                }
            }
            _ => b.value.clone(),
        };
        if raw.trim().is_empty() {
            tracing::warn!("{} BLANK_FILE: {} is blank", service.name, b.keyword);
            Counters::bump(&self.counters.ignored);
            return;
        }
        let named = trigger::normalise(&raw);
        let mut roots = self.cfg.daemon.accept_roots.clone();
        if let Source::Watch { dir, .. } = &service.source {
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            roots.push(glob::Pattern::escape(&dir.display().to_string()));
        }
        let path = match trigger::reject(&named, &roots) {
            Ok(resolved) => resolved,
            Err(why) => {
                tracing::info!("{} ignored {named}: {why}", service.name);
                Counters::bump(&self.counters.ignored);
                return;
            }
        };
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let first = {
            let mut seen = lock(&self.seen);
            match seen.get(&service.name) {
                // re-broadcast of the file already accepted (same mtime)
                Some(prev) if !watched && prev.is_some() && *prev == mtime => {
                    Counters::bump(&self.counters.ignored);
                    tracing::debug!("{} re-broadcast of {path} ignored", service.name);
                    return;
                }
                Some(_) => {
                    seen.insert(service.name.clone(), mtime);
                    false
                }
                None => {
                    seen.insert(service.name.clone(), mtime);
                    true
                }
            }
        };
        // the first broadcast after a start (and every watched file): the
        // database decides whether it is new — after the trigger is in the
        // journal, so an outage never slows the triggers down
        if let Err(e) = self.accept(&service, &path, first || watched) {
            self.report(&service.instrument, "JOURNAL_ERROR", &format!("{path}: {e} (kept in memory until the journal's disk takes it)")).await;
        }
    }

    /// Journal a trigger (durably, before any database call) and wake the
    /// replay. A journal whose disk refuses the write keeps it in memory:
    /// the trigger still goes to the queue, and the error is returned.
    fn accept(&self, service: &Service, path: &str, check: bool) -> anyhow::Result<u64> {
        let (seq, written) = lock(&self.journal).append(&service.name, &service.instrument, path, service.transfer, sources::now_secs(), check);
        tracing::info!("{} accepted {path} (journal entry {seq})", service.name);
        lock(&self.accepted_at).insert(path.to_string(), Instant::now());
        lock(&self.last_file).insert(service.name.clone(), Instant::now());
        Counters::bump(&self.counters.accepted);
        self.replay.notify_one();
        written.map_err(|e| anyhow::anyhow!("journal {}: {e}", self.cfg.journal_dir().display()))?;
        Ok(seq)
    }

    /// Move journal entries into the queue; keeps them when the database is
    /// down. Returns whether every entry went in.
    async fn replay_once(&self) -> bool {
        if !self.settle_journalled().await {
            return false;
        }
        let pending = lock(&self.journal).pending();
        for e in pending {
            if e.check {
                match self.archiver.db.known_path(&e.path).await {
                    Ok(true) => {
                        tracing::info!("{} {} is already in the database", e.service, e.path);
                        Counters::bump(&self.counters.duplicates);
                        lock(&self.accepted_at).remove(&e.path);
                        if let Err(err) = lock(&self.journal).ack(e.seq) {
                            tracing::error!("journal ack {}: {err}", e.seq);
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!("database unavailable, {} triggers wait in the journal: {err}", lock(&self.journal).pending().len());
                        return false;
                    }
                }
            }
            let md5 = self.archived_md5(&e.path).await;
            match self.archiver.db.enqueue(&e.instrument, &e.service, &e.path, md5.as_deref(), e.transfer).await {
                Ok(r) => {
                    match r {
                        Enqueued::Queued(_) => Counters::bump(&self.counters.queued),
                        Enqueued::InFlight(id) | Enqueued::SameContent(id) => {
                            tracing::info!("{} {} not queued again: {r:?} (row {id})", e.service, e.path);
                            Counters::bump(&self.counters.duplicates);
                            lock(&self.accepted_at).remove(&e.path);
                        }
                    }
                    if let Err(err) = lock(&self.journal).ack(e.seq) {
                        tracing::error!("journal ack {}: {err}", e.seq);
                    }
                    self.dispatch.notify_one();
                }
                Err(err) => {
                    tracing::warn!("database unavailable, {} triggers wait in the journal: {err}", lock(&self.journal).pending().len());
                    return false;
                }
            }
        }
        true
    }

    /// MD5 of a path when the database already archived a file of that path
    /// (so a re-sent identical file is recognised before it is queued). The
    /// archived row's MD5 is computed from its stage copy when the job did not
    /// need it (jobs compute MD5s only on a KOAID clash) and recorded.
    async fn archived_md5(&self, path: &str) -> Option<String> {
        let row = self.archiver.db.latest_any_by_ofname(path).await.ok()??;
        let archived = matches!(row.status.as_str(), "COMPLETE" | "TRANSFERRED" | "TRANSFERRING");
        if !archived {
            return None;
        }
        let md5_of = |p: String| async move {
            tokio::task::spawn_blocking(move || crate::fits::write::md5_file(Path::new(&p)).ok()).await.ok().flatten()
        };
        if row.md5.is_none() {
            let stage = row.stage_file.clone().filter(|s| Path::new(s).is_file())?;
            let m = md5_of(stage).await?;
            if let Err(e) = self.archiver.db.set_md5(row.id, &m).await {
                tracing::warn!("recording the MD5 of job {}: {e}", row.id);
            }
        }
        md5_of(path.to_string()).await
    }

    async fn replay_loop(&self) {
        self.until_db_ready().await;
        loop {
            let all_in = self.replay_once().await;
            let wait = if all_in { Duration::from_secs(30) } else { Duration::from_secs(2) };
            tokio::select! {
                _ = self.replay.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Every third of the lease: renew the leases held here, and bring back
    /// the jobs of workers whose lease ran out (a crash costs at most a
    /// lease and a third).
    async fn lease_loop(&self) {
        let lease = Duration::from_secs(self.cfg.daemon.lease_s.max(3));
        let mut tick = tokio::time::interval(lease / 3);
        self.until_db_ready().await;
        loop {
            tick.tick().await;
            let held: Vec<i64> = lock(&self.held).iter().copied().collect();
            for id in held {
                if let Err(e) = self.archiver.db.renew(id, &self.owner, lease).await {
                    tracing::warn!("lease renewal of job {id} failed: {e}");
                }
            }
            {
                match self.archiver.db.requeue_expired().await {
                    Ok(n) if n > 0 => {
                        tracing::warn!("{n} jobs of a dead worker back in the queue");
                        self.dispatch.notify_one();
                    }
                    _ => {}
                }
            }
        }
    }

    /// Claim, admit, run; until stopped. Claimed jobs that are still waiting
    /// for room at shutdown are released.
    async fn dispatch_loop(self: Arc<Self>) {
        let lease = Duration::from_secs(self.cfg.daemon.lease_s.max(3));
        let poll = Duration::from_secs_f64(self.cfg.daemon.poll_s.max(0.01));
        let lookahead = self.admission_max().max(2);
        let mut stop = self.stop.subscribe();
        let mut waiting: Vec<(crate::db::StatusRow, u64, Instant)> = Vec::new();
        let mut running = JoinSet::new();
        tokio::select! {
            _ = self.until_db_ready() => {}
            _ = stop.changed() => {}
        }
        loop {
            if stopping(&stop) {
                break;
            }
            // a full archive disk: nothing new starts until there is room
            let short = lock(&self.disk_short).is_some();
            // claim up to the look-ahead
            // level 0 first; DRP rows (levels 1 and 2) when no raw file waits
            let mut level = if short { 3 } else { 0 };
            while waiting.len() < lookahead && level <= 2 {
                match self.archiver.db.claim(&self.owner, level, None, lease).await {
                    Ok(Some(row)) => {
                        // a file that crashed or outlived every attempt (each start is
                        // counted at claim time) ends here: a poison file never loops
                        if row.attempts > self.cfg.daemon.max_attempts {
                            self.give_up(&row, "ATTEMPTS_EXHAUSTED", &format!(
                                "started {} times without finishing (max_attempts = {}): the job crashed or was killed each time",
                                row.attempts, self.cfg.daemon.max_attempts
                            )).await;
                            continue;
                        }
                        lock(&self.held).insert(row.id);
                        // a DRP row copies files; DEIMOS RTI renders from the lev-0 file
                        let p = if row.level == 0 { row.ofname.clone() } else { row.stage_file.clone().unwrap_or_default() };
                        let bytes = tokio::task::spawn_blocking(move || admission::estimate_path(Path::new(&p))).await.unwrap_or(0);
                        // never admitted past the budget
                        if bytes > self.admission.budget() {
                            lock(&self.held).remove(&row.id);
                            self.give_up(&row, "MEMORY_BUDGET_EXCEEDED", &format!(
                                "the file needs an estimated {} MiB, over daemon.memory_budget_mib = {}",
                                bytes >> 20, self.cfg.daemon.memory_budget_mib
                            )).await;
                            continue;
                        }
                        waiting.push((row, bytes, Instant::now()));
                    }
                    Ok(None) => level += 1,
                    Err(e) => {
                        tracing::warn!("queue claim failed: {e}");
                        break;
                    }
                }
            }
            let sizes: Vec<(u64, Instant)> = waiting.iter().map(|(_, b, t)| (*b, *t)).collect();
            let mut picked = self.admission.choose(&sizes);
            picked.sort_unstable_by(|a, b| b.cmp(a));
            for i in picked {
                let (row, bytes, _) = waiting.remove(i);
                let ticket = self.admission.ticket(bytes);
                let me = self.clone();
                Counters::bump(&self.counters.started);
                running.spawn(async move {
                    me.run_one(row).await;
                    drop(ticket);
                    me.dispatch.notify_one();
                });
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                _ = self.dispatch.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
        for (row, _, _) in waiting {
            match self.archiver.db.release(row.id, &self.owner).await {
                Ok(_) => Counters::bump(&self.counters.released),
                Err(e) => tracing::warn!("release of job {} failed (its lease will expire): {e}", row.id),
            }
            lock(&self.held).remove(&row.id);
        }
        while running.join_next().await.is_some() {}
    }

    async fn run_one(&self, row: crate::db::StatusRow) {
        let (id, level) = (row.id, row.level);
        lock(&self.running_since).insert(id, SystemTime::now());
        let a = self.archiver.clone();
        let opts = JobOptions::default();
        let joined = tokio::task::spawn_blocking(move || a.run_job(id, &opts)).await;
        lock(&self.running_since).remove(&id);
        let mut report = match joined {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("job {id} worker failed: {e}");
                lock(&self.held).remove(&id);
                return;
            }
        };
        Counters::bump(&self.counters.finished);
        let since = lock(&self.accepted_at).remove(&row.ofname);
        let latency_s = since.map(|t| t.elapsed().as_secs_f64()).unwrap_or_else(|| {
            let created = row.creation_time.map(|c| (crate::db::now() - c).num_milliseconds() as f64 / 1000.0);
            created.unwrap_or(0.0)
        });
        if report.status_code.as_deref() == Some(crate::pipeline::DISK_FULL) {
            let root = self.cfg.archive.root.clone();
            let free = tokio::task::spawn_blocking(move || crate::faults::free_bytes(&root).unwrap_or(0)).await.unwrap_or(0);
            self.disk_free_at.store(free, Ordering::Relaxed);
            self.disk_full(format!("job {id} ({}) met a full disk ({} MiB free): {}", row.ofname, free >> 20, report.message.as_deref().unwrap_or(""))).await;
        }
        let retry = self.retry_for(&report, &row);
        match report.unrecorded.take() {
            // the database is away: the outcome waits in the journal, the lease stays held
            Some(outcome) => self.keep_settle(Settle { id, owner: self.owner.clone(), outcome, retry }).await,
            None => {
                lock(&self.held).remove(&id);
                self.after_outcome(&report, retry).await;
            }
        }
        lock(&self.finished).push(Finished { report, level, latency_s, done_at: Instant::now() });
    }

    /// How a failed job comes back: transient codes after a backoff (a full
    /// disk's wait uses up no attempt); None when it does not.
    fn retry_for(&self, report: &JobReport, row: &crate::db::StatusRow) -> Option<Retry> {
        let code = report.status_code.as_deref().unwrap_or("");
        if report.status != Status::Error || !TRANSIENT.contains(&code) {
            return None;
        }
        let disk = code == crate::pipeline::DISK_FULL;
        let n = if disk { self.disk_waits.fetch_add(1, Ordering::Relaxed) + 1 } else { row.attempts.max(1) as u64 };
        let factor = 1u64 << (n - 1).min(if disk { 4 } else { 10 });
        Some(Retry { delay_s: self.cfg.daemon.retry_delay_s.saturating_mul(factor) as f64, max_attempts: self.cfg.daemon.max_attempts, counted: !disk })
    }

    /// A job's outcome is recorded: retry it, or say what failed.
    async fn after_outcome(&self, report: &JobReport, retry: Option<Retry>) {
        let id = report.id;
        let code = report.status_code.clone().unwrap_or_default();
        match (report.status, retry) {
            (Status::Error, Some(r)) => {
                let delay = Duration::from_secs_f64(r.delay_s);
                match self.archiver.db.retry_later(id, delay, r.max_attempts, r.counted).await {
                    Ok(true) => {
                        Counters::bump(&self.counters.retried);
                        tracing::warn!("job {id} {code}: back in the queue in {delay:?}");
                    }
                    Ok(false) => self.report(&report.instrument, &code, &describe(report)).await,
                    Err(e) => {
                        // the database went away between the outcome and the retry
                        tracing::warn!("job {id}: retry not recorded ({e}): kept in the journal");
                        let outcome = crate::db::Outcome {
                            status: Some(report.status),
                            status_code: report.status_code.clone(),
                            status_message: report.message.clone(),
                            ..Default::default()
                        };
                        lock(&self.held).insert(id);
                        self.keep_settle(Settle { id, owner: self.owner.clone(), outcome, retry: Some(r) }).await;
                    }
                }
            }
            (Status::Error, None) => self.report(&report.instrument, if code.is_empty() { "ERROR" } else { &code }, &describe(report)).await,
            (Status::Invalid, _) if self.cfg.notify.warnings => self.report(&report.instrument, &code, &describe(report)).await,
            _ => {}
        }
    }

    /// Keep an outcome in the journal until the database takes it; the job
    /// stays held (its lease renewed once the database answers), so it is
    /// not run again.
    async fn keep_settle(&self, s: Settle) {
        let id = s.id;
        tracing::warn!("job {id}: the database did not take its outcome; kept in the journal until it answers");
        if let Err(e) = lock(&self.journal).settle(s) {
            tracing::error!("journal: job {id}'s outcome kept in memory only: {e}");
        }
        self.replay.notify_one();
    }

    /// End a claimed row ERROR without running it, through the one error path.
    async fn give_up(&self, row: &crate::db::StatusRow, code: &str, why: &str) {
        tracing::error!("job {} ({}): {code}: {why}", row.id, row.ofname);
        if let Err(e) = self.archiver.db.fail(row.id, code, why).await {
            tracing::warn!("job {}: {code} not recorded: {e}", row.id);
        }
        self.report(&row.instrument, code, &format!("{}: {why}", row.ofname)).await;
    }

    async fn report(&self, instrument: &str, code: &str, text: &str) {
        self.notifier.report(instrument, code, text).await;
    }

    /// Broadcasts to the trigger rules: heartbeats at once, everything else
    /// in one lane per service, so a service whose path needs slow reads
    /// never delays another service's trigger.
    async fn route_broadcasts(self: &Arc<Self>, rx: &mut mpsc::Receiver<Broadcast>, readers: Arc<HashMap<String, Arc<dyn Reader>>>) {
        let mut lanes: HashMap<String, mpsc::Sender<Broadcast>> = HashMap::new();
        let mut running = JoinSet::new();
        while let Some(b) = rx.recv().await {
            let heartbeat = self.service(&b.service).and_then(|s| s.heartbeat.as_deref()).is_some_and(|h| h.eq_ignore_ascii_case(&b.keyword));
            if heartbeat {
                self.on_broadcast(b, &readers).await;
                continue;
            }
            let lane = lanes.entry(b.service.clone()).or_insert_with(|| {
                let (tx, mut lane_rx) = mpsc::channel::<Broadcast>(1024);
                let (i, r) = (self.clone(), readers.clone());
                running.spawn(async move {
                    while let Some(b) = lane_rx.recv().await {
                        i.on_broadcast(b, &r).await;
                    }
                });
                tx
            });
            let _ = lane.send(b).await;
        }
        drop(lanes);
        while running.join_next().await.is_some() {}
    }

    /// A source's state changed: recorded (status page, `/metrics`,
    /// `source_status`), logged once per change, and reported through the
    /// one error path — a silent source always (a misconfiguration even when
    /// the instrument is not observing), other failures when the instrument
    /// is scheduled tonight.
    async fn source_event(&self, ev: SourceEvent) {
        let Some(service) = self.service(&ev.service).cloned() else { return };
        if !self.apply_source(&service, &ev.state).await {
            return;
        }
        match &ev.state {
            SourceState::Up(at) => tracing::info!("{} source up: {at}", service.name),
            SourceState::Cleared(code) => tracing::info!("{}: {code} is over", service.name),
            SourceState::Failed(e) => {
                let text = format!("{}: {e}", service.name);
                if matches!(e, SourceError::Silent(_)) || self.scheduled(&service.instrument).await {
                    self.report(&service.instrument, e.code(), &text).await;
                } else {
                    tracing::warn!("{} {text} ({} not scheduled: no mail)", e.code(), service.instrument);
                }
            }
        }
    }

    /// A keyword read for a trigger failed: the trigger is lost, so it is
    /// reported every time, and the source's state shows it.
    async fn read_failed(&self, service: &Service, e: SourceError) {
        self.apply_source(service, &SourceState::Failed(e.clone())).await;
        self.report(&service.instrument, e.code(), &format!("{}: {e}", service.name)).await;
    }

    /// The path's reads worked: a failed read on record is over.
    async fn read_worked(&self, service: &Service) {
        if self.apply_source(service, &SourceState::Cleared("KTL_READ_ERROR")).await {
            tracing::info!("{}: keyword reads work again", service.name);
        }
    }

    /// Take a source state in; when it changed, record it in `source_status`.
    /// Returns whether it changed.
    async fn apply_source(&self, service: &Service, state: &SourceState) -> bool {
        let changed = lock(&self.sources).entry(service.name.clone()).or_default().apply(state);
        let Some((state, code, message, since)) = changed else { return false };
        let row = crate::db::sources::SourceRow {
            service: service.name.clone(),
            owner: self.owner.clone(),
            instrument: service.instrument.clone(),
            state: state.into(),
            status_code: code.map(str::to_string),
            message: Some(message),
            since,
            updated: since,
        };
        if let Err(e) = self.archiver.db.record_source(&row).await {
            tracing::debug!("{}: source state not recorded: {e}", service.name);
        }
        true
    }

    /// Whether an instrument is on the telescope schedule for tonight (HST).
    /// Unknown (service down) counts as scheduled: better a mail too many.
    async fn scheduled(&self, instrument: &str) -> bool {
        let services = self.archiver.services.clone();
        let instr = instrument.to_uppercase();
        let hst = (chrono::Utc::now() - chrono::Duration::hours(10)).format("%Y-%m-%d").to_string();
        let telnr = self.cfg.telescope(&instr);
        tokio::task::spawn_blocking(move || match services.schedule(&hst, telnr, &instr) {
            Ok(entries) => !entries.is_empty(),
            Err(_) => true,
        })
        .await
        .unwrap_or(true)
    }

    /// Allowance of a service's heartbeat: three periods (each already the
    /// spec's listed seconds + 2), at least a minute.
    fn heartbeat_limit(s: &Service) -> Option<Duration> {
        s.heartbeat.as_ref()?;
        Some(Duration::from_secs_f64(s.heartbeat_s? * 3.0).max(Duration::from_secs(60)))
    }

    async fn heartbeat_loop(&self) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(self.cfg.daemon.check_s.max(0.05)));
        tick.tick().await;
        loop {
            tick.tick().await;
            for s in self.cfg.service.iter().filter(|s| s.enabled) {
                let mut alive = true;
                if let (Some(kw), Some(limit)) = (&s.heartbeat, Self::heartbeat_limit(s)) {
                    let last = lock(&self.heartbeats).get(&s.name).copied().unwrap_or(self.started);
                    if last.elapsed() > limit {
                        alive = false;
                        let text = format!("{}: heartbeat {kw} silent for {:.0} s", s.name, last.elapsed().as_secs_f64());
                        if self.scheduled(&s.instrument).await {
                            self.report(&s.instrument, "KTL_SERVICE_CHECK_FAIL", &text).await;
                        } else {
                            tracing::info!("{text} ({} offline and not scheduled: no mail)", s.instrument);
                        }
                    }
                }
                // scheduled, alive, and no file for silent_minutes
                let last = lock(&self.last_file).get(&s.name).copied().unwrap_or(self.started);
                let silent = match s.silent_minutes {
                    Some(m) if alive => last.elapsed() > Duration::from_secs_f64(m * 60.0) && self.scheduled(&s.instrument).await,
                    _ => false,
                };
                if silent {
                    let text = format!("{}: no new file for {:.0} min while scheduled and alive", s.name, last.elapsed().as_secs_f64() / 60.0);
                    tracing::warn!("SILENT_INSTRUMENT {text}");
                    self.report(&s.instrument, "SILENT_INSTRUMENT", &text).await;
                    lock(&self.silent).insert(s.name.clone());
                } else {
                    lock(&self.silent).remove(&s.name);
                }
            }
            tracing::info!("alive: {:?}", self.counters.snapshot());
        }
    }

    /// Broadcasts of the trigger keywords since the newest job of each
    /// service, read from the keyword history, go through the trigger rules.
    async fn backfill(&self, readers: &HashMap<String, Arc<dyn Reader>>) {
        let Some(url) = self.cfg.daemon.history_url.clone() else { return };
        let pool = match sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("keyword history {url}: {e}");
                return;
            }
        };
        let until = chrono::Utc::now().naive_utc();
        for s in self.cfg.service.iter().filter(|s| s.enabled) {
            let Some(table) = &s.history_table else { continue };
            let since = match self.archiver.db.last_seen(&s.name).await {
                Ok(Some(t)) => t,
                Ok(None) => until - chrono::Duration::hours(24),
                Err(e) => {
                    tracing::warn!("backfill of {}: {e}", s.name);
                    continue;
                }
            };
            match sources::history::broadcasts(&pool, table, &s.name, &s.trigger, since, until).await {
                Ok(list) => {
                    tracing::info!("backfill {}: {} broadcasts since {since}", s.name, list.len());
                    for b in list {
                        let path = trigger::normalise(&b.value);
                        // the database decides (no mtime memory for old broadcasts)
                        if matches!(self.archiver.db.known_path(&path).await, Ok(true)) {
                            continue;
                        }
                        lock(&self.seen).remove(&s.name);
                        self.on_broadcast(b, readers).await;
                    }
                }
                Err(e) => tracing::warn!("backfill of {}: {e}", s.name),
            }
        }
    }
}

impl crate::http::DaemonView for Inner {
    fn name(&self) -> String {
        self.owner.clone()
    }

    fn services(&self) -> Vec<crate::http::ServiceView> {
        let beats = lock(&self.heartbeats).clone();
        let files = lock(&self.last_file).clone();
        let silent = lock(&self.silent).clone();
        let sources = lock(&self.sources).clone();
        self.cfg
            .service
            .iter()
            .filter(|s| s.enabled)
            .map(|s| {
                let beat = beats.get(&s.name).map(|t| t.elapsed());
                crate::http::ServiceView {
                    name: s.name.clone(),
                    instrument: s.instrument.clone(),
                    heartbeat_age_s: beat.map(|d| d.as_secs_f64()),
                    last_file_age_s: files.get(&s.name).map(|t| t.elapsed().as_secs_f64()),
                    alive: Self::heartbeat_limit(s).map(|limit| beat.unwrap_or_else(|| self.started.elapsed()) <= limit),
                    silent: silent.contains(&s.name),
                    source_state: sources.get(&s.name).filter(|v| v.up.is_some() || v.code.is_some()).map(SourceStatus::state),
                    source_problem: sources.get(&s.name).and_then(|v| Some((v.code?, v.detail.clone()))),
                    source_problems: sources.get(&s.name).map(|v| v.problems.iter().map(|(k, n)| (*k, *n)).collect()).unwrap_or_default(),
                }
            })
            .collect()
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.counters.snapshot()
    }

    fn memory(&self) -> (u64, u64) {
        (self.admission.used(), self.cfg.daemon.memory_budget_mib << 20)
    }

    fn faults(&self) -> crate::http::Faults {
        let j = lock(&self.journal);
        crate::http::Faults {
            disk_short: lock(&self.disk_short).clone(),
            journal_pending: j.pending().len(),
            journal_outcomes: j.settles().len(),
            journal_durable: j.durable(),
            queue_running: *self.db_ready.borrow(),
        }
    }
}

fn describe(r: &JobReport) -> String {
    format!(
        "job {} {} {}: {} {}",
        r.id,
        r.koaid.as_deref().unwrap_or("-"),
        r.ofname,
        r.status_code.as_deref().unwrap_or(""),
        r.message.as_deref().unwrap_or("")
    )
}

/// Resolve on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::previous_incarnation;

    #[test]
    fn earlier_runs_are_recognised_by_name_or_by_a_dead_pid_on_this_host() {
        assert!(previous_incarnation("ops-1", "ops-1", "h", true));
        assert!(!previous_incarnation("ops-2", "ops-1", "h", true), "another daemon's name");
        assert!(previous_incarnation("h-99999999", "h-1", "h", false), "no such process");
        let me = format!("h-{}", std::process::id());
        assert!(!previous_incarnation(&me, &me, "h", false), "this very process");
        assert!(!previous_incarnation("h-1", "h-5", "h", false), "pid 1 is alive");
        assert!(!previous_incarnation("other-99999999", "h-1", "h", false), "another host");
        assert!(!previous_incarnation("h-x", "h-1", "h", false));
    }
}
