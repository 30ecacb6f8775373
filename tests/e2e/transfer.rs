//! Transfer and ingest (spec §17) against a local destination folder, a
//! "remote" destination reached through a stand-in ssh, stand-in rsyncs
//! that fail in the ways real ones do, and a real local HTTP server playing
//! the IPAC ingest API.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use koa_dep::db::Status;
use koa_dep::pipeline::{Archiver, JobOptions, JobReport};
use koa_dep::samples::demo::{Obs, nires};
use koa_dep_tests::*;
use serde_json::{Value, json};

/// The fake ingest API: records every query, answers from a plan (COMPLETE
/// when the plan is empty).
#[derive(Clone, Default)]
struct Ingest {
    queries: Arc<Mutex<Vec<String>>>,
    plan: Arc<Mutex<VecDeque<(u16, Value)>>>,
}

impl Ingest {
    fn serve(&self, rt: &tokio::runtime::Runtime) -> String {
        let app = axum::Router::new()
            .route(
                "/ingest",
                get(|State(s): State<Ingest>, RawQuery(q): RawQuery| async move {
                    s.queries.lock().unwrap().push(q.unwrap_or_default());
                    let (code, body) = s.plan.lock().unwrap().pop_front().unwrap_or((200, json!({"APIStatus": "COMPLETE"})));
                    (StatusCode::from_u16(code).unwrap(), Json(body))
                }),
            )
            .with_state(self.clone());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/ingest?")
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }

    fn answer(&self, code: u16, body: Value) {
        self.plan.lock().unwrap().push_back((code, body));
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

struct Setup {
    s: Scratch,
    rt: tokio::runtime::Runtime,
    ingest: Ingest,
    dest: PathBuf,
}

fn setup() -> (Setup, koa_dep::config::Config) {
    let s = Scratch::new();
    let rt = runtime();
    let ingest = Ingest::default();
    let api = ingest.serve(&rt);
    let mut cfg = s.with_services();
    cfg.archive.keyword_tables = Some(repo_keyword_tables());
    let dest = s.path("ipac");
    cfg.transfer.destination = Some(dest.display().to_string());
    cfg.transfer.ingest_api = Some(api);
    cfg.transfer.ingest_retry_delay_s = 0.05;
    (Setup { s, rt, ingest, dest }, cfg)
}

fn frame(s: &Scratch, n: u32) -> PathBuf {
    let (name, f) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", n), n as u64);
    let p = s.path(&format!("sdata1500/nires9/2024mar15/{name}"));
    f.write(&p).unwrap();
    p
}

fn run(a: &Arc<Archiver>, rt: &tokio::runtime::Runtime, p: &Path, opts: JobOptions) -> JobReport {
    archive(rt, a, "NIRES", p, JobOptions { transfer: Some(true), ..opts })
}

/// (relative path, MD5) of the lines of a KOAID's md5 table.
fn md5_lines(lev0: &Path, koaid: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(lev0.join(format!("{koaid}.md5sum.table")))
        .unwrap()
        .lines()
        .map(|l| (l[34..].to_string(), l[..32].to_string()))
        .collect()
}

#[test]
fn products_reach_the_archive_verified_and_are_ingested() {
    let (t, cfg) = setup();
    let a = archiver(&t.rt, cfg);
    let p = frame(&t.s, 17);
    let r = run(&a, &t.rt, &p, JobOptions::default());
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    let koaid = r.koaid.clone().unwrap();
    let lev0 = t.s.cfg.archive.root.join("NIRES/20240315/lev0");
    let remote = t.dest.join("NIRES/20240315/lev0");
    // every product and the md5 table arrived intact; the log, diff and xfr table stayed
    for (rel, md5) in md5_lines(&lev0, &koaid) {
        assert_eq!(koa_dep::fits::write::md5_file(&remote.join(&rel)).unwrap(), md5, "{rel}");
    }
    assert!(remote.join(format!("{koaid}.md5sum.table")).is_file());
    for local_only in ["log", "diff.json", "xfr.table"] {
        assert!(!remote.join(format!("{koaid}.{local_only}")).exists(), "{local_only} is not transferred");
    }
    let xfr = std::fs::read_to_string(lev0.join(format!("{koaid}.xfr.table"))).unwrap();
    assert!(xfr.lines().any(|l| l == format!("{koaid}.fits")) && xfr.lines().any(|l| l == format!("{koaid}.md5sum.table")), "{xfr}");
    assert!(!xfr.contains('/'), "paths relative to the level folder: {xfr}");
    // the row: times and the destination
    let row = t.rt.block_on(a.db.get(r.id)).unwrap().unwrap();
    assert_eq!(row.status, "TRANSFERRED");
    let (start, end) = (row.xfr_start_time.unwrap(), row.xfr_end_time.unwrap());
    assert!(start <= end);
    // notified; the response time is IPAC's callback's, which has not come
    assert!(row.ipac_notify_time.is_some() && row.ipac_response_time.is_none());
    assert_eq!(row.archive_dir.as_deref(), Some(format!("{}/", remote.display()).as_str()));
    // the ingest call, once, as the reference builds it
    assert_eq!(t.ingest.queries(), vec![format!("instrument=NIRES&ingesttype=lev0&koaid={koaid}")]);
    // reprocessing (at once: same size, same second) transfers the new
    // products and asks for a re-ingest
    let r2 = run(&a, &t.rt, &p, JobOptions { reprocess: true, ..Default::default() });
    assert_eq!(r2.status, Status::Transferred, "{:?}", r2.diagnostics);
    for (rel, md5) in md5_lines(&lev0, &koaid) {
        assert_eq!(koa_dep::fits::write::md5_file(&remote.join(&rel)).unwrap(), md5, "{rel} after reprocessing");
    }
    assert_eq!(t.ingest.queries().last().unwrap(), &format!("instrument=NIRES&ingesttype=lev0&koaid={koaid}&reingest=true"));
    // --notransfer: archived locally only
    let q = frame(&t.s, 18);
    let r3 = archive(&t.rt, &a, "NIRES", &q, JobOptions { transfer: Some(false), ..Default::default() });
    assert_eq!(r3.status, Status::Complete);
    assert!(!remote.join(format!("{}.fits", r3.koaid.unwrap())).exists());
    assert_eq!(t.ingest.queries().len(), 2);
}

#[test]
fn a_remote_destination_through_ssh() {
    // ssh stand-in: skip ssh's options (rsync passes `-l user`), drop the
    // host, run the command here as the remote shell would
    let (t, mut cfg) = setup();
    let ssh = script(
        t.s.dir.path(),
        "fake-ssh",
        r#"while [ $# -gt 0 ]; do case "$1" in -l|-p|-o) shift 2;; -*) shift;; *) break;; esac; done; shift; exec sh -c "$*""#,
    );
    cfg.transfer.ssh = ssh.display().to_string();
    let remote_root = t.s.path("far/koadata");
    cfg.transfer.destination = Some(format!("koaxfr@ipac.example:{}", remote_root.display()));
    let a = archiver(&t.rt, cfg);
    let p = frame(&t.s, 19);
    let r = run(&a, &t.rt, &p, JobOptions::default());
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    let koaid = r.koaid.unwrap();
    let lev0 = t.s.cfg.archive.root.join("NIRES/20240315/lev0");
    for (rel, md5) in md5_lines(&lev0, &koaid) {
        assert_eq!(koa_dep::fits::write::md5_file(&remote_root.join("NIRES/20240315/lev0").join(&rel)).unwrap(), md5, "{rel}");
    }
    let row = t.rt.block_on(a.db.get(r.id)).unwrap().unwrap();
    assert!(row.archive_dir.unwrap().starts_with("koaxfr@ipac.example:"));
}

#[test]
fn rsync_is_judged_by_its_exit_status() {
    let (t, mut cfg) = setup();
    // chatty but successful (reference defect #27: any stderr text was fatal)
    let real = which("rsync");
    let chatty = script(t.s.dir.path(), "chatty-rsync", &format!(r#"echo "rsync: some warning" >&2; exec {real} "$@""#));
    cfg.transfer.rsync = chatty.display().to_string();
    let a = archiver(&t.rt, cfg.clone());
    let r = run(&a, &t.rt, &frame(&t.s, 20), JobOptions::default());
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    // a real failure: ERROR TRANSFER_ERROR with rsync's words, xfr_start_time cleared for a retry
    let failing = script(t.s.dir.path(), "failing-rsync", r#"echo "rsync: connection unexpectedly closed" >&2; exit 12"#);
    cfg.transfer.rsync = failing.display().to_string();
    let a = archiver(&t.rt, cfg);
    let r = run(&a, &t.rt, &frame(&t.s, 21), JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("TRANSFER_ERROR")), "{:?}", r.message);
    assert!(r.message.as_deref().unwrap().contains("connection unexpectedly closed"));
    let row = t.rt.block_on(a.db.get(r.id)).unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.xfr_start_time), ("ERROR", None));
    assert!(t.ingest.queries().len() == 1, "no ingest call after a failed transfer");
}

#[test]
fn a_corrupted_copy_at_the_destination_is_caught() {
    let (t, mut cfg) = setup();
    // an rsync that "succeeds" but leaves a damaged FITS file behind
    let real = which("rsync");
    let damaging = script(
        t.s.dir.path(),
        "damaging-rsync",
        &format!(r#"{real} "$@" || exit $?; for a in "$@"; do last="$a"; done; for f in "$last"*.fits; do printf X | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null; done"#),
    );
    cfg.transfer.rsync = damaging.display().to_string();
    let a = archiver(&t.rt, cfg);
    let r = run(&a, &t.rt, &frame(&t.s, 22), JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("TRANSFER_VERIFY_ERROR")), "{:?}", r.message);
    assert!(r.message.as_deref().unwrap().contains(".fits: MD5"), "{:?}", r.message);
    assert!(t.ingest.queries().is_empty(), "nothing ingested that was not verified");
}

#[test]
fn ingest_answers_retries_and_refusals() {
    let (t, cfg) = setup();
    let a = archiver(&t.rt, cfg.clone());
    // two server errors, then COMPLETE: retried
    t.ingest.answer(503, json!({}));
    t.ingest.answer(502, json!({}));
    let r = run(&a, &t.rt, &frame(&t.s, 23), JobOptions::default());
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    assert_eq!(t.ingest.queries().len(), 3);
    // "already ingested with the same md5" is success
    t.ingest.answer(200, json!({"APIStatus": "ERROR", "Message": "NR.20240315 already ingested with the same md5"}));
    let r = run(&a, &t.rt, &frame(&t.s, 24), JobOptions::default());
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    // a refusal is an error with the URL; the row keeps the IPAC code
    t.ingest.answer(200, json!({"APIStatus": "ERROR", "Message": "no such instrument"}));
    let r = run(&a, &t.rt, &frame(&t.s, 25), JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("IPAC_NOTIFY_ERROR")), "{:?}", r.message);
    assert!(r.message.as_deref().unwrap().contains("no such instrument"));
    let row = t.rt.block_on(a.db.get(r.id)).unwrap().unwrap();
    assert_eq!(row.status_code_ipac.as_deref(), Some("IPAC_NOTIFY_ERROR"));
    // the API down for good: INGEST_ERROR (retried later by the daemon)
    for _ in 0..3 {
        t.ingest.answer(503, json!({}));
    }
    let r = run(&a, &t.rt, &frame(&t.s, 26), JobOptions::default());
    assert_eq!(r.status_code.as_deref(), Some("INGEST_ERROR"), "{:?}", r.message);
    // no ingest API configured (not DEV): IPAC_API_UNDEFINED after the transfer
    let mut no_api = cfg;
    no_api.transfer.ingest_api = None;
    no_api.archive.root = t.s.path("archive2");
    no_api.database.url = format!("sqlite://{}", t.s.path("koa2.db").display());
    let a = archiver(&t.rt, no_api);
    let r = run(&a, &t.rt, &frame(&t.s, 27), JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("IPAC_API_UNDEFINED")), "{:?}", r.message);
    // asked for a transfer without a destination: an error, never a COMPLETE row
    let mut none = t.s.with_services();
    none.archive.keyword_tables = Some(repo_keyword_tables());
    none.archive.root = t.s.path("archive3");
    none.database.url = format!("sqlite://{}", t.s.path("koa3.db").display());
    let a = archiver(&t.rt, none);
    let r = run(&a, &t.rt, &frame(&t.s, 28), JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("TRANSFER_NOT_CONFIGURED")), "{:?}", codes(&r));
    // and a daemon whose service would transfer refuses to start, naming the setting
    let mut d = t.s.with_services();
    d.archive.keyword_tables = Some(repo_keyword_tables());
    d.archive.root = t.s.path("archive4");
    d.database.url = format!("sqlite://{}", t.s.path("koa4.db").display());
    d.daemon.journal_dir = Some(t.s.path("journal4"));
    d.service = koa_dep::samples::demo::watch_services(&t.s.path("incoming4"), ["NIRES"]);
    d.service[0].transfer = true;
    let err = t.rt.block_on(koa_dep::daemon::Daemon::new(d)).err().expect("refused");
    assert!(err.to_string().contains("transfer.destination"), "{err}");
}

/// Files below a folder.
fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir).into_iter().flatten().filter(|e| e.file_type().is_file()).map(|e| e.into_path()).collect()
}

/// Products never leave without a metadata table (issue 16 §2): a job that
/// would transfer without a readable keyword table ends ERROR
/// METADATA_SCHEMA_MISSING with nothing shipped; metadata turned off on
/// purpose is said once, plainly; a daemon whose services transfer refuses
/// to start without the tables.
#[test]
fn no_metadata_table_means_nothing_is_shipped() {
    let (t, cfg) = setup();
    for (n, (tables, metadata)) in [(Some(t.s.path("no-tables-here")), true), (None, true), (Some(repo_keyword_tables()), false)].into_iter().enumerate() {
        let mut c = cfg.clone();
        c.archive.keyword_tables = tables;
        c.archive.metadata = metadata;
        c.archive.root = t.s.path(&format!("archive-m{n}"));
        c.database.url = format!("sqlite://{}", t.s.path(&format!("m{n}.db")).display());
        let a = archiver(&t.rt, c.clone());
        let r = run(&a, &t.rt, &frame(&t.s, 40 + n as u32), JobOptions::default());
        assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("METADATA_SCHEMA_MISSING")), "case {n}: {:?}", r.message);
        assert!(!t.dest.exists() || walk(&t.dest).is_empty(), "case {n}: nothing shipped");
        assert!(t.ingest.queries().is_empty(), "case {n}: no ingest call");
        // a local run is archived: a warning, or (metadata off) one plain log line
        let r = archive(&t.rt, &a, "NIRES", &frame(&t.s, 50 + n as u32), JobOptions { transfer: Some(false), ..Default::default() });
        assert_eq!(r.status, Status::Complete, "case {n}: {:?}", r.diagnostics);
        let log = std::fs::read_to_string(c.archive.root.join(format!("NIRES/20240315/lev0/{}.log", r.koaid.clone().unwrap()))).unwrap();
        if metadata {
            assert!(codes(&r).contains(&"METADATA_SCHEMA_MISSING".to_string()), "case {n}: {:?}", codes(&r));
        } else {
            assert!(!codes(&r).iter().any(|c| c.starts_with("METADATA")), "case {n}: {:?}", codes(&r));
            assert_eq!(log.matches("metadata tables are off").count(), 1, "said once: {log}");
        }
        // the daemon: a transferring service without tables refuses to start
        let mut d = c.clone();
        d.daemon.journal_dir = Some(t.s.path(&format!("journal-m{n}")));
        d.service = koa_dep::samples::demo::watch_services(&t.s.path("incoming"), ["NIRES"]);
        d.service[0].transfer = true;
        let err = t.rt.block_on(koa_dep::daemon::Daemon::new(d.clone())).err().expect("refused");
        assert!(err.to_string().contains("keyword table"), "{err}");
        d.service[0].transfer = false;
        assert!(t.rt.block_on(koa_dep::daemon::Daemon::new(d)).is_ok(), "no transfer: starts");
    }
}

fn which(prog: &str) -> String {
    let out = std::process::Command::new("sh").args(["-c", &format!("command -v {prog}")]).output().unwrap();
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!p.is_empty(), "{prog} is needed for the transfer tests");
    p
}

/// A level-1/2 row as the DRP side queues it.
fn drp_row(a: &Archiver, rt: &tokio::runtime::Runtime, instrument: &str, level: i64, koaid: &str, stage: &Path, service: &str) -> i64 {
    let stage = stage.display().to_string();
    rt.block_on(a.db.insert_job(&koa_dep::db::NewJob {
        level,
        instrument,
        service: Some(service),
        ofname: &stage,
        status: Status::Queued,
        reprocess: false,
        transfer: true,
        stage_file: Some(&stage),
        koaid: Some(koaid),
    }))
    .unwrap()
}

fn touch(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A minimal KCWI cube header with its frame number.
fn kcwi_cube(p: &Path, frameno: i64) {
    let mut cards = koa_dep::samples::image_cards(true, 16, &[]);
    cards.push(koa_dep::samples::int("FRAMENO", frameno));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    koa_dep::samples::Frame { hdus: vec![koa_dep::samples::FrameHdu { cards, data: koa_dep::samples::Data::None }] }.write(p).unwrap();
}

#[test]
fn kcwi_level_2_ships_a_night_and_the_last_row_calls_ingest() {
    let (t, mut cfg) = setup();
    let conf = t.s.path("drpconf/kcwi_koarti_lev2.cfg");
    touch(&conf, "[KCWI]\n");
    cfg.archive.kcwi_lev2_config = Some(conf);
    let a = archiver(&t.rt, cfg);
    let data = t.s.path("kcwi/2024mar15");
    let (k1, k2) = ("KB.20240315.30001.00", "KB.20240315.30500.00");
    kcwi_cube(&data.join(format!("redux/{k1}_icubed.fits")), 20);
    kcwi_cube(&data.join(format!("redux/{k2}_icubes.fits")), 21);
    touch(&data.join("plots/arc_00010_a.png"), "arc");
    touch(&data.join("plots/sky_00020_b.png"), "sky of 20");
    touch(&data.join("plots/sky_00021_c.png"), "sky of 21");
    touch(&data.join("logs/kcwi.log"), "log");
    touch(&data.join("kcwi.proc"), "proc");
    let r1 = drp_row(&a, &t.rt, "KCWI", 2, k1, &data.join(format!("{k1}.fits")), "DRP");
    let r2 = drp_row(&a, &t.rt, "KCWI", 2, k2, &data.join(format!("{k2}.fits")), "DRP");
    let first = a.run_job(r1, &JobOptions::default());
    assert_eq!(first.status, Status::Transferred, "{:?}", first.diagnostics);
    assert!(t.ingest.queries().is_empty(), "the night's other level-2 row has not arrived: no ingest yet");
    let lev2 = t.s.cfg.archive.root.join("KCWI/20240315/lev2");
    let remote = t.dest.join("KCWI/20240315/lev2");
    for rel in [format!("redux/{k1}_icubed.fits"), "plots/arc_00010_a.png".into(), "plots/sky_00020_b.png".into(), "logs/kcwi.log".into(), "kcwi.proc".into(), "kcwi_koarti_lev2.cfg".into(), format!("{k1}.md5sum.table")] {
        assert!(lev2.join(&rel).is_file(), "{rel} in the level folder");
        assert!(remote.join(&rel).is_file(), "{rel} at the archive");
    }
    assert!(!remote.join("plots/sky_00021_c.png").exists(), "another frame's sky plot is not this KOAID's");
    assert!(lev2.join("20240315.xfr.table").is_file(), "KCWI level 2: one transfer list per night");
    let md5 = std::fs::read_to_string(lev2.join(format!("{k1}.md5sum.table"))).unwrap();
    assert!(md5.lines().any(|l| l.ends_with(&format!("  redux/{k1}_icubed.fits"))), "{md5}");
    let row = t.rt.block_on(a.db.get(r1)).unwrap().unwrap();
    assert!(row.archsize_mb.unwrap() > 0.0);
    let second = a.run_job(r2, &JobOptions::default());
    assert_eq!(second.status, Status::Transferred, "{:?}", second.diagnostics);
    assert_eq!(t.ingest.queries(), vec!["instrument=KCWI&ingesttype=lev2&utdate=20240315".to_string()], "one ingest for the night");
}

#[test]
fn kpf_level_1_products_and_a_missing_list() {
    let (t, cfg) = setup();
    let a = archiver(&t.rt, cfg);
    let l1 = t.s.path("kpf/L1/20240315");
    let k = "KP.20240315.12345.67";
    touch(&l1.join(format!("{k}_L1.fits")), "L1 product");
    touch(&l1.join("KP.20240315.99999.99_L1.fits"), "another frame");
    // KPF rows are DRP rows whatever their service says
    let id = drp_row(&a, &t.rt, "KPF", 1, k, &l1, "kpfdrp");
    let r = a.run_job(id, &JobOptions::default());
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    let remote = t.dest.join("KPF/20240315/lev1");
    assert_eq!(std::fs::read_to_string(remote.join(format!("{k}/{k}_L1.fits"))).unwrap(), "L1 product");
    assert!(!remote.join("KP.20240315.99999.99").exists());
    assert_eq!(t.ingest.queries(), vec![format!("instrument=KPF&ingesttype=lev1&koaid={k}")]);
    // a KOAID the DRP wrote nothing for
    let none = drp_row(&a, &t.rt, "KPF", 1, "KP.20240315.55555.55", &l1, "DRP");
    let r = a.run_job(none, &JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("FILE_NOT_FOUND")), "{:?}", r.diagnostics);
    // a relative stage_file is the row's fault, not the component's
    let relative = drp_row(&a, &t.rt, "KPF", 1, "KP.20240315.44444.44", Path::new("kpf/L1/20240315"), "DRP");
    let r = a.run_job(relative, &JobOptions::default());
    assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some("FILE_NOT_FOUND")), "{:?}", r.diagnostics);
    assert!(r.diagnostics.iter().any(|d| d.message.contains("not an absolute path")), "{:?}", r.diagnostics);
    // re-running the first row copies nothing new and transfers again (reprocess)
    let again = a.run_job(id, &JobOptions { reprocess: true, ..Default::default() });
    assert_eq!(again.status, Status::Transferred, "{:?}", again.diagnostics);
    assert_eq!(t.ingest.queries().last().unwrap(), &format!("instrument=KPF&ingesttype=lev1&koaid={k}&reingest=true"));
}

#[test]
fn the_component_runner_shows_a_components_drp_products() {
    let s = Scratch::new();
    let data = s.path("k2drp/KCWI/2024mar15");
    let k = "KB.20240315.30001.00";
    kcwi_cube(&data.join(format!("redux/{k}_icubed.fits")), 20);
    touch(&data.join("plots/bars_00019_a.png"), "bars");
    touch(&data.join("plots/bars_00021_b.png"), "a later frame's bars");
    let stage = data.join(format!("{k}.fits"));
    // the exchange the runner and the pipeline share
    let sb = koa_dep::app::sandbox(&s.cfg).unwrap();
    let opts = JobOptions::default();
    let ctx = koa_dep::pipeline::identify::make_context(&s.cfg, "KCWI", 1, &stage, "", "", &opts);
    let (request, products) = koa_dep::drp::select(&sb, "kcwi", &ctx, &stage.display().to_string(), k, &[]).unwrap();
    assert_eq!(request.headers.len(), 2, "the cubes' headers (FRAMENO)");
    let rels: Vec<String> = products.iter().map(|p| p.rel.display().to_string()).collect();
    assert_eq!(rels, ["plots/bars_00019_a.png".to_string(), format!("redux/{k}_icubed.fits")]);
    let args = |koaid: &str, json: bool| koa_dep::cli::DrpArgs {
        target: koa_dep::cli::ComponentTarget { component: "KCWI".into(), context: vec![], instrument: None, json },
        stage: stage.clone(),
        koaid: koaid.into(),
        level: 1,
    };
    assert_eq!(koa_dep::cli::component_drp(s.cfg.clone(), args(k, true)).unwrap(), 0);
    assert_eq!(koa_dep::cli::component_drp(s.cfg.clone(), args("KB.20240315.99999.99", false)).unwrap(), 2, "no products: exit 2");
}

#[test]
fn drp_rules_cannot_reach_outside_the_drp_tree() {
    let (t, mut cfg) = setup();
    cfg.components.files.insert("misbehave".into(), std::path::PathBuf::from(koa_dep::sandbox::registry::artifact_dir()).join("misbehave.wasm"));
    let a = archiver(&t.rt, cfg);
    let data = t.s.path("drp/misbehave/2024mar15");
    touch(&data.join("MB.20240315.00001.00_drp.fits"), "product");
    let lev1 = t.s.cfg.archive.root.join("MISBEHAVE/20240315/lev1");
    let id = drp_row(&a, &t.rt, "MISBEHAVE", 1, "MB.20240315.00001.00", &data, "DRP");
    for (mode, code) in [("drp-wide", "COMPONENT_CONTRACT"), ("drp-escape", "COMPONENT_CONTRACT"), ("drp-climb", "COMPONENT_CONTRACT")] {
        let r = a.run_job(id, &JobOptions { context: vec![("misbehave".into(), mode.into())], reprocess: true, ..Default::default() });
        assert_eq!((r.status, r.status_code.as_deref()), (Status::Error, Some(code)), "{mode}: {:?}", r.diagnostics);
        assert!(!lev1.join("hostname").exists() && !t.s.cfg.archive.root.join("MISBEHAVE/escaped").exists(), "{mode}: nothing copied");
        assert!(t.ingest.queries().is_empty(), "{mode}: nothing shipped");
    }
    // the same component, well-behaved: the listed product is archived
    let r = a.run_job(id, &JobOptions { reprocess: true, ..Default::default() });
    assert_eq!(r.status, Status::Transferred, "{:?}", r.diagnostics);
    assert_eq!(std::fs::read_to_string(lev1.join("MB.20240315.00001.00_drp.fits")).unwrap(), "product");
}

#[test]
fn deimos_level_0_queues_the_real_time_mosaic_at_level_1() {
    let (t, cfg) = setup();
    let a = archiver(&t.rt, cfg);
    let (name, f) = koa_dep::samples::frames::frame("DEIMOS", koa_dep::samples::frames::Size::Small, 3).unwrap();
    let p = t.s.path(&format!("sdata1000/deimos/{name}"));
    f.write(&p).unwrap();
    let r0 = archive(&t.rt, &a, "DEIMOS", &p, JobOptions { transfer: Some(true), ..Default::default() });
    assert_eq!(r0.status, Status::Transferred, "{:?}", r0.diagnostics);
    let koaid = r0.koaid.clone().unwrap();
    let lev1_rows = t.rt.block_on(a.db.select(&koa_dep::db::Selection { level: 1, instrument: Some("DEIMOS".into()), ..Default::default() })).unwrap();
    assert_eq!(lev1_rows.len(), 1);
    let row = &lev1_rows[0];
    assert_eq!((row.status.as_str(), row.service.as_deref(), row.koaid.as_deref(), row.transfer), ("QUEUED", Some("RTI"), Some(koaid.as_str()), 1));
    let r1 = a.run_job(row.id, &JobOptions::default());
    assert_eq!(r1.status, Status::Transferred, "{:?}", r1.diagnostics);
    let date = koaid.split('.').nth(1).unwrap();
    let jpg = t.dest.join(format!("DEIMOS/{date}/lev1/{koaid}.jpg"));
    let bytes = std::fs::read(&jpg).expect("level-1 JPEG at the archive");
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
    assert!(t.ingest.queries().contains(&format!("instrument=DEIMOS&ingesttype=lev1&koaid={koaid}")), "{:?}", t.ingest.queries());
}

/// One exposure never holds two KOAIDs (issue 16 §1): a row that failed
/// after it took its KOAID (here: a transfer refused for want of a
/// metadata table) gives it up to a new row with the same content; a
/// different file still gets the next free hundredth.
#[test]
fn the_same_file_run_again_takes_over_the_failed_rows_koaid() {
    let (t, cfg) = setup();
    let mut bare = cfg.clone();
    bare.archive.keyword_tables = None;
    let a = archiver(&t.rt, bare);
    let p = frame(&t.s, 60);
    let r1 = run(&a, &t.rt, &p, JobOptions::default());
    assert_eq!((r1.status, r1.status_code.as_deref()), (Status::Error, Some("METADATA_SCHEMA_MISSING")));
    let koaid = r1.koaid.clone().unwrap();
    // the same file again, as a new row (no --reprocess), with the tables
    let a = archiver(&t.rt, cfg);
    let r2 = run(&a, &t.rt, &p, JobOptions::default());
    assert_eq!(r2.status, Status::Transferred, "{:?}", r2.diagnostics);
    assert_ne!(r2.id, r1.id);
    assert_eq!(r2.koaid.as_deref(), Some(koaid.as_str()), "the same KOAID, not +0.01 s");
    assert!(!codes(&r2).contains(&"DUPLICATE_KOAID".to_string()), "{:?}", codes(&r2));
    let old = t.rt.block_on(a.db.get(r1.id)).unwrap().unwrap();
    assert_eq!(old.koaid, None, "the failed row gave its KOAID up");
    assert_eq!((old.status.as_str(), old.status_code.as_deref()), ("INVALID", Some("DUPLICATE_FILE")), "its file is archived by the other job");
    assert!(old.status_message.as_deref().unwrap_or("").contains(&format!("taken over by job {}", r2.id)), "{:?}", old.status_message);
    // re-running the ERROR rows (as `archive --status ERROR` does, with
    // --reprocess) leaves the released row alone: it is no longer ERROR, and a
    // reprocess of a row that never kept a KOAID is still a duplicate
    let (a2, id) = (a.clone(), r1.id);
    let r1b = t.rt.block_on(t.rt.spawn_blocking(move || a2.run_job(id, &JobOptions { reprocess: true, transfer: Some(true), ..Default::default() }))).unwrap();
    assert_eq!((r1b.status, r1b.status_code.as_deref()), (Status::Invalid, Some("DUPLICATE_FILE")), "{:?}", r1b.message);
    assert_eq!(t.rt.block_on(a.db.by_koaid(0, &koaid)).unwrap().map(|r| r.id), Some(r2.id), "the KOAID stays with the archived row");
    // a different file at the same time still moves on to the next hundredth
    let (name, mut f) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 60), 61);
    f.hdus[0].cards.push(koa_dep::samples::text("XTRA", "different content"));
    let q = t.s.path(&format!("sdata1500/nires9/other/{name}"));
    f.write(&q).unwrap();
    let r3 = run(&a, &t.rt, &q, JobOptions::default());
    assert_eq!(r3.status, Status::Transferred, "{:?}", r3.diagnostics);
    assert_ne!(r3.koaid.as_deref(), Some(koaid.as_str()));
    assert!(codes(&r3).contains(&"DUPLICATE_KOAID".to_string()), "{:?}", codes(&r3));
}
