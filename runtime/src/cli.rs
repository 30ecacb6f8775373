//! The command line (clap): `archive`, `demo`, `component list|run|drp`, `sample`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::pipeline::{Archiver, JobOptions, JobReport};

#[derive(Parser, Debug)]
#[command(name = "koa-dep", version, about = "Keck Observatory Archive data evaluation and processing")]
pub struct Cli {
    /// Configuration file (TOML); KOA_DEP__SECTION__KEY variables override it.
    #[arg(long, global = true, env = "KOA_DEP_CONFIG")]
    pub config: Option<PathBuf>,
    /// More log output (repeat for debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Archive files of one instrument (level 0).
    Archive(ArchiveArgs),
    /// Generate example frames and archive them on SQLite.
    Demo(DemoArgs),
    /// Inspect or run WebAssembly components.
    #[command(subcommand)]
    Component(ComponentCmd),
    /// Write a generated sample frame.
    Sample(SampleArgs),
    /// Run the real-time daemon: keyword sources, queue, workers (`--config FILE`).
    Daemon,
    /// List files in the services' output folders that the database does not know.
    Reconcile(ReconcileArgs),
    /// Operators' reports: errors, a night, PI notifications.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Acknowledge (mark reviewed) errors and warnings by row id or by code.
    Ack(AckArgs),
    /// Queue a DRP product row (level 1 or 2) for a KOAID; the daemon (or `archive --dbid`) runs it.
    QueueDrp(QueueDrpArgs),
    /// The job store's schema: what it holds, and bringing it to what koa-dep needs.
    #[command(subcommand)]
    Db(DbCmd),
}

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// Schema version (or "KOA reference schema, not adopted"), what an upgrade would change, row counts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Migrate an empty or koa-dep database; adopt KOA's reference database in place (adds only, keeps every row).
    Upgrade {
        /// Print the statements instead of running them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args, Debug)]
pub struct QueueDrpArgs {
    pub instrument: String,
    #[arg(long)]
    pub koaid: String,
    /// 1 or 2.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=2))]
    pub level: i64,
    /// The DRP output folder (stored as stage_file).
    #[arg(long)]
    pub datadir: PathBuf,
    /// Service recorded on the row (DRP; DEIMOS real-time JPEGs use RTI).
    #[arg(long, default_value = "DRP")]
    pub service: String,
    /// Do not transfer the products when the row is run.
    #[arg(long)]
    pub notransfer: bool,
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Outstanding ERROR and WARN rows by instrument and code (unacknowledged unless --all), and stuck jobs.
    Errors {
        #[arg(long)]
        instrument: Option<String>,
        /// Include acknowledged rows.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// One UT night: files, science vs calibration, exposure, sizes, step timings, missing files, schedule.
    Night {
        /// UT date `YYYY-MM-DD` (default: today, UT).
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Keyword sources as the daemons last recorded them (source_status): up, down, or failing reads.
    Sources {
        #[arg(long)]
        json: bool,
    },
    /// The PI-notification table (koapi_send): programs waiting for a data notification (--all: every row).
    Pi {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct AckArgs {
    /// koa_status row ids.
    #[arg(required_unless_present = "code", conflicts_with = "code")]
    pub ids: Vec<i64>,
    /// Every unacknowledged row with this status code.
    #[arg(long)]
    pub code: Option<String>,
    /// With --code: only this instrument.
    #[arg(long, requires = "code")]
    pub instrument: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    /// Files modified at or after this UTC time (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`).
    #[arg(long)]
    pub since: String,
    /// Queue the missing files.
    #[arg(long)]
    pub enqueue: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Default)]
pub struct ArchiveArgs {
    /// Instrument (NIRES, DEIMOS, …).
    pub instrument: String,
    /// One file.
    #[arg(long, conflicts_with_all = ["files", "dbid"])]
    pub filepath: Option<PathBuf>,
    /// A glob (a trailing `/` means every file in the folder); lists matches unless --confirm.
    #[arg(long, conflicts_with = "dbid")]
    pub files: Option<String>,
    /// The job of one koa_status row.
    #[arg(long)]
    pub dbid: Option<i64>,
    /// Re-run rows by query: rows of this instrument and --level whose utdatetime is at or
    /// after this time (`yyyy-mm-ddTHH:MM:SS`); lists them unless --confirm.
    #[arg(long)]
    pub starttime: Option<String>,
    /// … at or before this time.
    #[arg(long)]
    pub endtime: Option<String>,
    /// … with this status (QUEUED, ERROR, …).
    #[arg(long)]
    pub status: Option<String>,
    /// … with this status code (exact).
    #[arg(long)]
    pub statuscode: Option<String>,
    /// … whose original path contains this text (literally: `%` and `_` are plain characters).
    #[arg(long, conflicts_with = "ofname_like")]
    pub ofname: Option<String>,
    /// … whose original path matches this SQL LIKE pattern (`%` any text, `_` one character,
    /// `!` escapes).
    #[arg(long)]
    pub ofname_like: Option<String>,
    /// Data level of the query (default 0).
    #[arg(long, default_value_t = 0)]
    pub level: i64,
    /// Act on the --files or query matches.
    #[arg(long)]
    pub confirm: bool,
    /// Re-run an archived file under the same KOAID (history kept, old products replaced).
    #[arg(long)]
    pub reprocess: bool,
    /// Program ID to use instead of the header's.
    #[arg(long)]
    pub progid: Option<String>,
    /// Do not transfer the products (they are transferred when `transfer.destination` is configured).
    #[arg(long)]
    pub notransfer: bool,
    /// Run every step up to the header changes and print them; write nothing (no products,
    /// no change in the job store).
    #[arg(long)]
    pub dry_run: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

impl ArchiveArgs {
    /// Whether the query mode (re-run rows by query) was asked for.
    fn query(&self) -> bool {
        self.starttime.is_some()
            || self.endtime.is_some()
            || self.status.is_some()
            || self.statuscode.is_some()
            || self.ofname.is_some()
            || self.ofname_like.is_some()
    }
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Working folder (created; default ./koa-demo).
    #[arg(long, default_value = "koa-demo")]
    pub dir: PathBuf,
    /// Folder with KOA keyword tables (metadata tables are skipped without it).
    #[arg(long)]
    pub keyword_tables: Option<PathBuf>,
    /// Small frames (unit-test sizes) instead of the instruments' real sizes.
    #[arg(long)]
    pub small: bool,
}

#[derive(Subcommand, Debug)]
pub enum ComponentCmd {
    /// The registered components with WIT version, size, sha256 and limits.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run one component in isolation on a FITS file (same sandbox limits).
    Run(RunArgs),
    /// Run a component's DRP rules (levels 1/2) on a DRP output folder:
    /// what it asks to list and the products it chooses.
    Drp(DrpArgs),
}

/// Which component, with what context (`component run` and `component drp`).
#[derive(Args, Debug)]
pub struct ComponentTarget {
    /// Instrument name or a path to a component `.wasm`.
    pub component: String,
    /// Extra context options (`key=value`), repeatable.
    #[arg(long = "context", value_parser = parse_kv)]
    pub context: Vec<(String, String)>,
    /// Instrument name when running a `.wasm` file (default: its file stem).
    #[arg(long)]
    pub instrument: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DrpArgs {
    #[command(flatten)]
    pub target: ComponentTarget,
    /// The row's stage_file: the DRP output folder (KCWI: a file in it).
    #[arg(long)]
    pub stage: PathBuf,
    #[arg(long)]
    pub koaid: String,
    #[arg(long, default_value_t = 1)]
    pub level: u8,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: ComponentTarget,
    /// The FITS file.
    pub file: PathBuf,
    /// Services fixture (JSON); default: no services.
    #[arg(long)]
    pub services: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// An instrument (`deimos`, `kcwi`, …), `<instrument>-small`, `lris-red`,
    /// `nires-imag`, `scales-ifs`, `scales-im`, `scales-qramp` (`scales` is the
    /// IFS cube), or `nires-gold` (synthesised from the gold outputs in --data).
    pub kind: String,
    #[arg(long)]
    pub out: PathBuf,
    /// Shared data folder (gold inputs).
    #[arg(long, env = "KOA_DEP_SHARED_DATA", default_value = "../shared/data")]
    pub data: PathBuf,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expected key=value, got {s:?}"))
}

/// Expand `--files`: a trailing `/` means every file inside.
pub fn expand_files(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let pattern = if pattern.ends_with('/') { format!("{pattern}*") } else { pattern.to_string() };
    let mut out: Vec<PathBuf> = glob::glob(&pattern)?.filter_map(Result::ok).filter(|p| p.is_file()).collect();
    out.sort();
    Ok(out)
}

/// One line per job.
pub fn print_reports(reports: &[JobReport], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(reports).unwrap_or_default());
        return;
    }
    println!("{:<6} {:<34} {:<12} {:<24} {:>8}  {}", "ID", "KOAID", "STATUS", "CODE", "SECONDS", "PRODUCTS");
    for r in reports {
        let secs: f64 = r.timings.iter().map(|t| t.1).sum();
        let products: Vec<String> =
            r.products.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string())).collect();
        println!(
            "{:<6} {:<34} {:<12} {:<24} {:>8.3}  {}",
            r.id,
            r.koaid.as_deref().unwrap_or("-"),
            r.status.as_str(),
            r.status_code.as_deref().unwrap_or(""),
            secs,
            products.join(" ")
        );
    }
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// A query time (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` or with a blank) as
/// the store writes `utdatetime`, or a message naming the option.
fn query_time(text: &str, option: &str) -> anyhow::Result<String> {
    let t = text.trim();
    let parsed = chrono::NaiveDateTime::parse_from_str(&t.replace('T', " "), "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).expect("midnight")));
    match parsed {
        Ok(dt) => Ok(dt.format("%Y-%m-%d %H:%M:%S").to_string()),
        Err(_) => anyhow::bail!("{option} {text:?}: not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS)"),
    }
}

/// What `koa-dep archive` will run: files, or rows of the job store.
enum Work {
    Files(Vec<PathBuf>),
    Rows(Vec<crate::db::StatusRow>),
}

/// `koa-dep archive`: one file, a glob, a row (`--dbid`) or rows by query;
/// globs and queries list what they match unless `--confirm`.
pub async fn archive(cfg: Config, args: ArchiveArgs) -> anyhow::Result<i32> {
    let instrument = args.instrument.to_uppercase();
    let transfer = !args.notransfer && cfg.transfer.destination.is_some();
    // every argument is checked before any row is written
    let start = args.starttime.as_deref().map(|t| query_time(t, "--starttime")).transpose()?;
    let end = args.endtime.as_deref().map(|t| query_time(t, "--endtime")).transpose()?;
    if let Some(s) = &args.status {
        s.parse::<crate::db::Status>().map_err(|e| anyhow::anyhow!("--status: {e}"))?;
    }
    let a = Arc::new(crate::app::archiver(cfg).await?);
    anyhow::ensure!(
        a.sandbox.registry().contains(&instrument.to_lowercase()),
        "unknown instrument {instrument}: the components are {}",
        a.sandbox.registry().names().join(", ")
    );
    let work = if let Some(id) = args.dbid {
        match a.db.get(id).await? {
            Some(r) => Work::Rows(vec![r]),
            None => anyhow::bail!("no koa_status row {id}"),
        }
    } else if args.query() {
        let rows = a
            .db
            .select(&crate::db::Selection {
                level: args.level,
                instrument: Some(instrument.clone()),
                start,
                end,
                status: args.status.clone().map(|s| s.to_uppercase()),
                status_code: args.statuscode.clone(),
                ofname_like: match (&args.ofname, &args.ofname_like) {
                    (Some(o), _) => Some(crate::db::Selection::ofname_contains(o)),
                    // the operator's own pattern: `%`, `_` wildcards, `!` escapes
                    (None, Some(p)) => Some(p.clone()),
                    (None, None) => None,
                },
            })
            .await?;
        if !args.confirm {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:<6} {:<12} {:<24} {:<20} {:<34} {}", "ID", "STATUS", "CODE", "UTDATETIME", "KOAID", "OFNAME");
                for r in &rows {
                    println!(
                        "{:<6} {:<12} {:<24} {:<20} {:<34} {}",
                        r.id,
                        r.status,
                        r.status_code.as_deref().unwrap_or(""),
                        r.utdatetime.as_deref().unwrap_or(""),
                        r.koaid.as_deref().unwrap_or("-"),
                        r.ofname
                    );
                }
                println!("{} row(s); add --confirm to run them", rows.len());
            }
            return Ok(0);
        }
        Work::Rows(rows)
    } else {
        match (&args.filepath, &args.files) {
            (Some(f), _) => Work::Files(vec![f.clone()]),
            (None, Some(g)) => {
                let files = expand_files(g)?;
                if !args.confirm {
                    for f in &files {
                        println!("{}", f.display());
                    }
                    println!("{} file(s); add --confirm to archive them", files.len());
                    return Ok(0);
                }
                Work::Files(files)
            }
            (None, None) => anyhow::bail!("give --filepath FILE, --files GLOB, --dbid N or a query (--starttime, --status, …)"),
        }
    };
    let opts = JobOptions {
        reprocess: args.reprocess,
        progid: args.progid.clone(),
        transfer: Some(transfer),
        dry_run: args.dry_run,
        ..Default::default()
    };
    let mut skipped = 0usize;
    let total = match &work {
        Work::Files(f) => f.len(),
        Work::Rows(r) => r.len(),
    };
    let bar = progress(total, args.json);
    let started = std::time::Instant::now();
    let mut reports = Vec::new();
    match work {
        Work::Files(files) => {
            for f in files {
                bar.set_message(f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
                let (a2, instr, o) = (a.clone(), instrument.clone(), opts.clone());
                reports.push(run_blocking(move || a2.archive_file(&instr, &f, &o)).await??);
                bar.inc(1);
            }
        }
        Work::Rows(rows) => {
            for r in rows {
                // an archived row whose file is gone (and has no stage copy) is left as it is:
                // re-running it could only turn what IPAC holds into an ERROR row
                let present = |p: &Option<String>| p.as_deref().is_some_and(|p| !p.is_empty() && std::path::Path::new(p).is_file());
                if r.is_archived() && !present(&r.stage_file) && !present(&Some(r.ofname.clone())) {
                    eprintln!("row {}: {} is gone and has no stage copy: not re-run, nothing changed", r.id, r.ofname);
                    skipped += 1;
                    continue;
                }
                bar.set_message(r.koaid.clone().unwrap_or_else(|| r.ofname.clone()));
                // a row that ran before keeps its KOAID and history: a re-run
                let o = JobOptions { reprocess: opts.reprocess || r.status != "QUEUED", ..opts.clone() };
                let a2 = a.clone();
                reports.push(run_blocking(move || a2.run_job(r.id, &o)).await?);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    if args.dry_run {
        print_changes(&reports, args.json);
    } else {
        print_reports(&reports, args.json);
    }
    if !args.json && reports.len() > 1 {
        print_summary(&reports, started.elapsed());
    }
    let failed = reports.iter().any(|r| matches!(r.status, crate::db::Status::Error)) || skipped > 0;
    Ok(if failed { 1 } else { 0 })
}

/// A progress bar on the terminal for batches (hidden for one file, JSON or no terminal).
fn progress(total: usize, json: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || total < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} eta {eta} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Counts by status and the time taken, after a batch.
pub fn print_summary(reports: &[JobReport], took: std::time::Duration) {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in reports {
        *by.entry(r.status.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = by.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let codes: std::collections::BTreeSet<&str> = reports.iter().filter_map(|r| r.status_code.as_deref()).collect();
    println!(
        "\n{} job(s) in {:.1} s: {}{}",
        reports.len(),
        took.as_secs_f64(),
        counts.join(", "),
        if codes.is_empty() { String::new() } else { format!("; codes: {}", codes.into_iter().collect::<Vec<_>>().join(" ")) }
    );
}

/// The header changes of dry runs.
pub fn print_changes(reports: &[JobReport], json: bool) {
    if json {
        let out: Vec<_> = reports
            .iter()
            .map(|r| serde_json::json!({"id": r.id, "ofname": r.ofname, "koaid": r.koaid, "status": r.status, "status_code": r.status_code, "changes": r.changes, "diagnostics": r.diagnostics}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return;
    }
    for r in reports {
        println!("{}  KOAID {}  (dry run: {}{})", r.ofname, r.koaid.as_deref().unwrap_or("-"), r.status.as_str(), r.status_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default());
        println!("  {:<4} {:<9} {:<8} {:<40} {:<40} {}", "HDU", "KEYWORD", "ACTION", "OLD", "NEW", "STEP");
        for c in &r.changes {
            let short = |v: &Option<String>| {
                let t = v.clone().unwrap_or_default();
                if t.chars().count() > 40 { format!("{}…", t.chars().take(39).collect::<String>()) } else { t }
            };
            println!("  {:<4} {:<9} {:<8} {:<40} {:<40} {}", c.hdu, c.key, c.action, short(&c.old), short(&c.new), c.step);
        }
        for d in r.diagnostics.iter() {
            println!("  {:?} {} ({}): {}", d.severity, d.code, d.step, d.message);
        }
    }
}

/// Archive a list of files with a ready archiver.
pub async fn archive_all(a: Arc<Archiver>, instrument_files: Vec<(String, PathBuf)>) -> anyhow::Result<Vec<JobReport>> {
    let mut reports = Vec::new();
    for (instr, f) in instrument_files {
        let a2 = a.clone();
        reports.push(run_blocking(move || a2.archive_file(&instr, &f, &JobOptions::default())).await??);
    }
    Ok(reports)
}

/// `koa-dep demo`: the daemon on SQLite with one directory-watch service per
/// instrument; generated frames are dropped into the watched folders and the
/// demo waits until every one is archived.
pub async fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    let dir = std::path::absolute(&args.dir)?;
    std::fs::create_dir_all(&dir)?;
    let staging = dir.join("generated");
    let size = if args.small { crate::samples::frames::Size::Small } else { crate::samples::frames::Size::Full };
    let frames = crate::samples::demo::write_demo_inputs(&staging, size)?;
    let fixture = dir.join("services.json");
    std::fs::write(&fixture, serde_json::to_string_pretty(&crate::samples::demo::services())?)?;
    let incoming = dir.join("incoming");
    let mut cfg = Config::default();
    cfg.archive.root = dir.join("archive");
    cfg.archive.keyword_tables = args.keyword_tables.clone();
    // a fresh clone has no KOA keyword tables: metadata is off, and each job says so
    cfg.archive.metadata = args.keyword_tables.is_some();
    cfg.database.url = format!("sqlite://{}", dir.join("koa-dep.db").display());
    cfg.services.fixture = Some(fixture);
    cfg.daemon.journal_dir = Some(dir.join("journal"));
    cfg.daemon.poll_s = 0.2;
    cfg.service = crate::samples::demo::watch_services(&incoming, frames.iter().map(|(i, _)| i.as_str()));
    let d = crate::daemon::Daemon::new(cfg).await?;
    println!("koa-dep demo: daemon {} watching {} (SQLite {})", d.owner(), incoming.display(), dir.join("koa-dep.db").display());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let total = frames.len();
    let deliver = async {
        // let the watchers start, then move each frame in whole (rename)
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for (instrument, p) in &frames {
            let day = p.parent().and_then(|d| d.parent()).and_then(|d| d.file_name()).map(|n| n.to_os_string()).unwrap_or_default();
            let dest = incoming.join(instrument.to_lowercase()).join(day).join(p.file_name().unwrap_or_default());
            std::fs::create_dir_all(dest.parent().unwrap_or(&incoming))?;
            std::fs::rename(p, &dest)?;
        }
        println!("dropped {total} frames; waiting for the daemon");
        let mut reports = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        // every frame, then what they queued (the DEIMOS level-1 mosaic)
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            reports.extend(d.take_finished());
            let frames_done = reports.iter().filter(|f| f.level == 0).count() >= total;
            let queued = d.db().count_status(crate::db::Status::Queued).await.unwrap_or(0)
                + d.db().count_status(crate::db::Status::Processing).await.unwrap_or(0);
            if (frames_done && queued == 0) || std::time::Instant::now() >= deadline {
                break;
            }
        }
        let frames = reports.iter().filter(|f| f.level == 0).count();
        let reports: Vec<JobReport> = reports.into_iter().map(|f| f.report).collect();
        let _ = stop_tx.send(());
        anyhow::Ok((frames, reports))
    };
    let (ran, reports) = tokio::join!(d.run(async { let _ = stop_rx.await; }), deliver);
    ran?;
    let (frames, mut reports) = reports?;
    reports.sort_by_key(|r| r.id);
    print_reports(&reports, false);
    println!("\narchive: {}   database: {}", dir.join("archive").display(), dir.join("koa-dep.db").display());
    // the frames themselves (level 0): a level-1 row they queued does not stand in for one
    let complete = frames >= total && reports.iter().all(|r| r.status != crate::db::Status::Error);
    if frames < total {
        eprintln!("koa-dep demo: only {frames} of {total} frames were archived");
    }
    Ok(if complete { 0 } else { 1 })
}

/// `koa-dep daemon`.
pub async fn daemon(cfg: Config) -> anyhow::Result<i32> {
    let d = crate::daemon::Daemon::new(cfg).await?;
    d.run(crate::daemon::shutdown_signal()).await?;
    Ok(0)
}

/// `koa-dep reconcile`.
pub async fn reconcile(cfg: Config, args: ReconcileArgs) -> anyhow::Result<i32> {
    let since = parse_since(&args.since)?;
    let db = crate::db::Db::connect(&cfg.database.url, cfg.database.max_connections).await?;
    let missing = crate::daemon::reconcile::reconcile(&cfg, &db, since, args.enqueue).await?;
    // a service without `files` globs is invisible here: say so rather than "0 files"
    let blind: Vec<&str> = cfg.service.iter().filter(|s| s.enabled && s.files.is_empty()).map(|s| s.name.as_str()).collect();
    if !blind.is_empty() {
        eprintln!("koa-dep reconcile: services without `files` globs are not looked at: {}", blind.join(", "));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&missing)?);
    } else {
        for m in &missing {
            let q = m.queued.map(|id| format!("queued as {id}")).unwrap_or_default();
            println!("{:<10} {:<16} {}  {q}", m.instrument, m.service, m.path.display());
        }
        println!("{} files not in the database{}", missing.len(), if args.enqueue { "" } else { " (use --enqueue to queue them)" });
    }
    Ok(0)
}

/// `koa-dep report …`.
pub async fn report(cfg: Config, cmd: ReportCmd) -> anyhow::Result<i32> {
    let db = crate::db::Db::connect(&cfg.database.url, cfg.database.max_connections).await?;
    match cmd {
        ReportCmd::Errors { instrument, all, json } => {
            let r = crate::report::errors(&db, all, instrument.as_deref()).await?;
            print_report(json, &r, r.text())?;
            // a script can tell "something to look at" from "all clear"
            Ok(if r.groups.is_empty() && r.stuck.is_empty() && r.sources.is_empty() { 0 } else { 3 })
        }
        ReportCmd::Sources { json } => {
            let rows = db.sources().await?;
            print_report(json, &rows, crate::report::sources_text(&rows))?;
            Ok(if rows.iter().all(|r| r.state == "UP") { 0 } else { 3 })
        }
        ReportCmd::Night { date, json } => {
            let utdate = match date {
                Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| anyhow::anyhow!("--date {d:?}: expected YYYY-MM-DD"))?,
                None => chrono::Utc::now().date_naive(),
            };
            let services = crate::services::from_config(&cfg, tokio::runtime::Handle::current())?;
            let r = crate::report::night(&cfg, &db, services, utdate).await?;
            print_report(json, &r, r.text())?;
            Ok(0)
        }
        ReportCmd::Pi { all, json } => {
            let rows = db.koapi_rows(all).await?;
            print_report(json, &rows, crate::report::koapi_text(&rows))?;
            Ok(0)
        }
    }
}

/// A report as JSON (`--json`) or as text.
fn print_report<T: serde::Serialize>(json: bool, v: &T, text: String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// `koa-dep db …` (connects without the schema check the other commands make).
pub async fn db(cfg: Config, cmd: DbCmd) -> anyhow::Result<i32> {
    let db = crate::db::Db::open(&cfg.database.url, cfg.database.max_connections).await?;
    match cmd {
        DbCmd::Status { json } => {
            let r = db.schema_report().await?;
            print_report(json, &r, r.text())?;
            Ok(if r.upgrade.is_empty() { 0 } else { 3 })
        }
        DbCmd::Upgrade { dry_run } => {
            let done = db.upgrade(dry_run).await?;
            if done.is_empty() {
                println!("nothing to do: the schema is current");
            }
            for d in &done {
                println!("{}{d}", if dry_run { "" } else { "done: " });
            }
            Ok(0)
        }
    }
}

/// `koa-dep queue-drp`.
pub async fn queue_drp(cfg: Config, args: QueueDrpArgs) -> anyhow::Result<i32> {
    let db = crate::db::Db::connect(&cfg.database.url, cfg.database.max_connections).await?;
    let instrument = args.instrument.to_uppercase();
    // stored absolute: the daemon that runs the row has another working folder
    let datadir = std::path::absolute(&args.datadir)?.display().to_string();
    let id = db
        .insert_job(&crate::db::NewJob {
            level: args.level,
            instrument: &instrument,
            service: Some(&args.service),
            ofname: &datadir,
            status: crate::db::Status::Queued,
            reprocess: false,
            transfer: !args.notransfer,
            stage_file: Some(&datadir),
            koaid: Some(&args.koaid),
        })
        .await?;
    println!("queued level-{} row {id} for {} ({instrument})", args.level, args.koaid);
    Ok(0)
}

/// `koa-dep ack`.
pub async fn ack(cfg: Config, args: AckArgs) -> anyhow::Result<i32> {
    let db = crate::db::Db::connect(&cfg.database.url, cfg.database.max_connections).await?;
    let n = match &args.code {
        Some(code) => db.acknowledge_code(code, args.instrument.as_deref().map(str::to_uppercase).as_deref()).await?,
        None => db.acknowledge(&args.ids).await?,
    };
    println!("{n} rows acknowledged");
    Ok(0)
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (UTC).
pub fn parse_since(s: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
        .map_err(|_| anyhow::anyhow!("--since {s:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"))
}

/// `koa-dep component list`.
pub fn component_list(cfg: &Config, json: bool) -> anyhow::Result<i32> {
    let sb = crate::app::sandbox(cfg)?;
    let info = sb.registry().info();
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{:<10} {:<14} {:>9} {:>8} {:>9}  {:<64}  {}", "NAME", "WIT", "BYTES", "MEM MiB", "DEADLINE", "SHA256", "SOURCE");
        for i in info {
            println!(
                "{:<10} {:<14} {:>9} {:>8} {:>8.1}s  {:<64}  {}",
                i.name, i.wit, i.size, i.memory_mib, i.deadline_s, i.sha256, i.source
            );
        }
    }
    Ok(0)
}

/// (component name, instrument) of `INSTR` or `path/to/x.wasm` (registered in `cfg`).
fn component_and_instrument(cfg: &mut Config, component: &str, instrument: Option<&String>) -> (String, String) {
    if component.ends_with(".wasm") {
        let stem = Path::new(component).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        cfg.components.files.insert(stem.clone(), PathBuf::from(component));
        (stem.clone(), instrument.cloned().unwrap_or(stem).to_uppercase())
    } else {
        (component.to_lowercase(), instrument.cloned().unwrap_or(component.to_string()).to_uppercase())
    }
}

/// `koa-dep component drp`: prints the folders asked for and the products
/// chosen (source → destination); exit 2 when there are none.
pub fn component_drp(mut cfg: Config, args: DrpArgs) -> anyhow::Result<i32> {
    let (name, instrument) = component_and_instrument(&mut cfg, &args.target.component, args.target.instrument.as_ref());
    let sb = crate::app::sandbox(&cfg)?;
    let stage = std::path::absolute(&args.stage)?.display().to_string();
    let opts = crate::pipeline::JobOptions { context: args.target.context.clone(), ..Default::default() };
    let ctx = crate::pipeline::identify::make_context(&cfg, &instrument, args.level, Path::new(&stage), &stage, "", &opts);
    let config = crate::drp::config_files(&cfg, &instrument);
    let out = crate::drp::select(&sb, &name, &ctx, &stage, &args.koaid, &config);
    let (code, text) = match &out {
        Ok(_) => (None, None),
        Err(e) => (Some(e.code()), Some(e.to_string())),
    };
    if args.target.json {
        let (folders, products) = match &out {
            Ok((req, p)) => (
                req.folders.iter().map(|f| serde_json::json!({"path": f.path, "recursive": f.recursive})).collect::<Vec<_>>(),
                p.iter().map(|p| serde_json::json!({"src": p.src, "rel": p.rel})).collect::<Vec<_>>(),
            ),
            Err(_) => (vec![], vec![]),
        };
        let v = serde_json::json!({"component": name, "instrument": instrument, "level": args.level, "koaid": args.koaid,
            "stage": stage, "folders": folders, "products": products, "status_code": code, "message": text});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("component {name}  instrument {instrument}  level {}  koaid {}  stage {stage}", args.level, args.koaid);
        match &out {
            Ok((req, products)) => {
                for f in &req.folders {
                    println!("listed  {}{}", f.path, if f.recursive { " (recursive)" } else { "" });
                }
                for p in products {
                    println!("product {} -> {}", p.src.display(), p.rel.display());
                }
            }
            Err(e) => println!("{}: {e}", e.code()),
        }
    }
    Ok(if out.is_ok() { 0 } else { 2 })
}

/// `koa-dep component run`.
pub async fn component_run(mut cfg: Config, args: RunArgs) -> anyhow::Result<i32> {
    let (name, instrument) = component_and_instrument(&mut cfg, &args.target.component, args.target.instrument.as_ref());
    cfg.services.fixture = args.services.clone();
    if args.services.is_none() {
        cfg.services.api_url = None;
        cfg.services.weather_url = None;
    }
    let services = crate::services::from_config(&cfg, tokio::runtime::Handle::current())?;
    let file = args.file.clone();
    let context = args.target.context.clone();
    let out = run_blocking(move || -> anyhow::Result<crate::pipeline::inspect::Inspection> {
        let sb = crate::app::sandbox(&cfg)?;
        crate::pipeline::inspect::inspect(&sb, services, &cfg, &name, &instrument, &file, context)
    })
    .await??;
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        out.print_table();
    }
    Ok(if out.failure.is_some() { 2 } else { 0 })
}

/// `koa-dep sample`.
pub fn sample(args: SampleArgs) -> anyhow::Result<i32> {
    match args.kind.as_str() {
        "nires-gold" => crate::samples::gold::write_gold_input(&args.data, &args.out)?,
        other => {
            let (_, f) = crate::samples::demo::frame(other, 0).ok_or_else(|| anyhow::anyhow!("no sample generator for {other:?}"))?;
            f.write(&args.out)?;
        }
    }
    println!("{}", args.out.display());
    Ok(0)
}
