//! The daemon on SQLite: a watched folder, the KTL poller with a stand-in
//! `show` executable, the mKTL subscriber against a publisher the test
//! starts, error mail through a local SMTP server the test starts, the
//! journal, and a clean stop.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use koa_dep::config::{Config, MktlSource, Service, Source};
use koa_dep::daemon::Daemon;
use koa_dep::db::Status;
use koa_dep::samples::demo::{Obs, nires_sized, watch_services};
use koa_dep::samples::frames::{self, Size};
use koa_dep_tests::*;

pub(crate) fn base(s: &Scratch) -> Config {
    let mut cfg = s.with_services();
    cfg.daemon.journal_dir = Some(s.path("journal"));
    cfg.daemon.poll_s = 0.05;
    cfg.daemon.accept_roots = vec![s.dir.path().display().to_string()];
    cfg
}

/// [`base`] with watch-source services for `instruments` below `<scratch>/incoming`.
pub(crate) fn watched(s: &Scratch, instruments: &[&str]) -> (Config, std::path::PathBuf) {
    let mut cfg = base(s);
    let incoming = s.path("incoming");
    cfg.service = watch_services(&incoming, instruments.iter().copied());
    (cfg, incoming)
}

pub(crate) fn small_nires(n: u32) -> (String, koa_dep::samples::Frame) {
    frames::frame("NIRES", Size::Small, n).unwrap()
}

/// Start a daemon; returns it, its stop switch and its task.
pub(crate) async fn start(cfg: Config) -> (Arc<Daemon>, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let d = Arc::new(Daemon::new(cfg).await.expect("daemon"));
    let (tx, task) = spawn_daemon(d.clone());
    (d, tx, task)
}

pub(crate) async fn count(d: &Daemon, s: Status) -> i64 {
    d.db().count_status(s).await.unwrap()
}

#[test]
fn watched_folder_frames_are_archived_exactly_once() {
    let rt = runtime();
    let s = Scratch::new();
    let (cfg, incoming) = watched(&s, &["NIRES"]);
    let dir = incoming.join("nires");
    std::fs::create_dir_all(&dir).unwrap();
    // a frame written while the daemon was down
    let (name, f) = small_nires(40);
    drop_frame(&f, &dir.join(name));
    rt.block_on(async {
        let (d, stop, task) = start(cfg).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for n in 0..6 {
            let (name, f) = small_nires(n);
            drop_frame(&f, &dir.join(name));
        }
        assert!(wait_until(120, || async { count(&d, Status::Complete).await == 7 }).await, "7 frames archived");
        // the same file written again is recognised, not archived twice
        let (name, f) = small_nires(0);
        drop_frame(&f, &dir.join(name));
        assert!(wait_until(10, || async { d.counters().duplicates.load(Ordering::Relaxed) >= 1 }).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(count(&d, Status::Complete).await, 7);
        assert_eq!(count(&d, Status::Queued).await + count(&d, Status::Processing).await, 0);
        let done = d.take_finished();
        assert_eq!(done.len(), 7);
        assert!(done.iter().all(|f| f.report.status == Status::Complete), "{:?}", done.iter().map(|f| &f.report.diagnostics).collect::<Vec<_>>());
        let mut koaids: Vec<_> = done.iter().filter_map(|f| f.report.koaid.clone()).collect();
        koaids.sort();
        koaids.dedup();
        assert_eq!(koaids.len(), 7);
        assert_eq!(d.journal_pending(), 0);
    });
}

/// Write a keyword value the stand-in `show` prints (atomically).
fn set_kw(dir: &Path, service: &str, key: &str, value: &str) {
    let tmp = dir.join(format!(".{service}.{key}.tmp"));
    std::fs::write(&tmp, format!("{value}\n")).unwrap();
    std::fs::rename(tmp, dir.join(format!("{service}.{key}"))).unwrap();
}

#[test]
fn ktl_poller_formats_paths_and_does_not_skip_the_first_broadcast() {
    let rt = runtime();
    let s = Scratch::new();
    let mut cfg = base(&s);
    let kw = s.path("keywords");
    std::fs::create_dir_all(&kw).unwrap();
    // stand-in for the KTL tool: `show -s SERVICE -terse KEYWORD`
    let show = s.path("show");
    std::fs::write(
        &show,
        format!("#!/bin/sh\nf=\"{}/$2.$4\"\n[ -f \"$f\" ] || {{ echo \"show: no keyword $4\" >&2; exit 1; }}\ncat \"$f\"\n", kw.display()),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&show).status().unwrap();
    cfg.daemon.ktl_command = show.display().to_string();
    cfg.daemon.ktl_poll_s = 0.05;
    cfg.service = vec![Service {
        name: "nires_ktl".into(),
        ktl: "nsds".into(),
        instrument: "NIRES".into(),
        trigger: "WDISK".into(),
        required_value: Some("false".into()),
        path_format: Some("{OUTDIR}/{OUTFILE}{LFRAMENO}.fits".into()),
        zfill: [("LFRAMENO".to_string(), 4usize)].into_iter().collect(),
        heartbeat: Some("ITERATION".into()),
        heartbeat_s: Some(1.0),
        transfer: false,
        source: Source::Ktl,
        history_table: None,
        files: vec![],
        enabled: true,
        silent_minutes: None,
    }];
    let out = s.path("sdata/nires/2024mar15");
    std::fs::create_dir_all(&out).unwrap();
    let obs = |n: u32, t: &str| Obs::new("2024-03-15", t, n);
    // the file the keywords name when the daemon starts (frame 17)
    let (n17, f17) = nires_sized("spec", "object", "C272", &obs(17, "08:21:14.52"), 1, (128, 64));
    assert_eq!(n17, "s240315_0017.fits");
    drop_frame(&f17, &out.join(&n17));
    set_kw(&kw, "nsds", "OUTDIR", &format!("{}/", out.display()));
    set_kw(&kw, "nsds", "OUTFILE", "s240315_");
    set_kw(&kw, "nsds", "LFRAMENO", "17");
    set_kw(&kw, "nsds", "ITERATION", "1");
    set_kw(&kw, "nsds", "WDISK", "false");
    rt.block_on(async {
        let (d, stop, task) = start(cfg).await;
        // the first broadcast after start is decided by the database: queued
        assert!(wait_until(60, || async { count(&d, Status::Complete).await == 1 }).await, "first broadcast archived");
        // next exposure: WDISK true while writing, then false with frame 18
        set_kw(&kw, "nsds", "WDISK", "true");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (n18, f18) = nires_sized("spec", "object", "C272", &obs(18, "08:25:01.07"), 2, (128, 64));
        drop_frame(&f18, &out.join(&n18));
        set_kw(&kw, "nsds", "LFRAMENO", "18");
        set_kw(&kw, "nsds", "WDISK", "false");
        assert!(wait_until(60, || async { count(&d, Status::Complete).await == 2 }).await, "second frame archived");
        // a re-broadcast of the same file (same mtime) is ignored
        let ignored = d.counters().ignored.load(Ordering::Relaxed);
        set_kw(&kw, "nsds", "WDISK", "true");
        tokio::time::sleep(Duration::from_millis(300)).await;
        set_kw(&kw, "nsds", "WDISK", "false");
        assert!(wait_until(10, || async { d.counters().ignored.load(Ordering::Relaxed) >= ignored + 2 }).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        let rows = d.db().by_status(Status::Complete).await.unwrap();
        assert_eq!(rows.len(), 2);
        let paths: Vec<_> = rows.iter().map(|r| r.ofname.clone()).collect();
        assert_eq!(paths, [out.join(&n17).display().to_string(), out.join(&n18).display().to_string()]);
        assert!(rows.iter().all(|r| r.service.as_deref() == Some("nires_ktl")));
    });
}

#[test]
fn mktl_subscriber_queues_published_files() {
    use zeromq::{Socket, SocketSend};
    let rt = runtime();
    let s = Scratch::new();
    let mut cfg = base(&s);
    let out = s.path("sdata/nires/2024mar15");
    std::fs::create_dir_all(&out).unwrap();
    rt.block_on(async {
        let mut publisher = zeromq::PubSocket::new();
        let ep = publisher.bind("tcp://127.0.0.1:0").await.unwrap();
        cfg.service = vec![crate::mktl::mktl_service("nsds", "NIRES", MktlSource { publish: Some(ep.to_string()), ..Default::default() })];
        let (d, stop, task) = start(cfg).await;
        let mut names = Vec::new();
        for n in 0..3u32 {
            let (name, f) = small_nires(n);
            drop_frame(&f, &out.join(&name));
            names.push(out.join(&name).display().to_string());
        }
        // publish each file until it is archived (a subscriber joins late:
        // repeated broadcasts of one file are filtered by its mtime)
        for (i, path) in names.iter().enumerate() {
            let want = i as i64 + 1;
            let mut archived = false;
            for _ in 0..600 {
                // mKTL's topics are lower case whatever case the configuration writes
                for (key, value) in [("iteration", serde_json::json!(i)), ("lastfile", serde_json::json!(path))] {
                    let mut m = zeromq::ZmqMessage::from(format!("nsds.{key}."));
                    m.push_back(bytes::Bytes::from_static(b"a"));
                    m.push_back(bytes::Bytes::from(serde_json::json!({"value": value, "time": 1.71e9}).to_string()));
                    publisher.send(m).await.unwrap();
                }
                if count(&d, Status::Complete).await >= want {
                    archived = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(archived, "{path} archived");
        }
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        let rows = d.db().by_status(Status::Complete).await.unwrap();
        let mut got: Vec<_> = rows.iter().map(|r| r.ofname.clone()).collect();
        got.sort();
        assert_eq!(got, names);
        assert_eq!(d.db().count_status(Status::Invalid).await.unwrap(), 0, "no file queued twice");
    });
}

pub(crate) use koa_dep_tests::smtp_server;

#[test]
fn errors_are_mailed_once_per_instrument_and_code() {
    let rt = runtime();
    let s = Scratch::new();
    let (mut cfg, incoming) = watched(&s, &["NIRES"]);
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let port = smtp_server(tx).await;
        cfg.notify.smtp_host = Some("127.0.0.1".into());
        cfg.notify.smtp_port = port;
        cfg.notify.to = vec!["koaadmin@example.org".into()];
        cfg.notify.throttle_min = 60;
        let (d, stop, task) = start(cfg.clone()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // two frames whose KOAID cannot be made (INSTR neither imag nor spec)
        for n in 0..2u32 {
            let (name, f) = nires_sized("both", "object", "C272", &Obs::new("2024-03-15", &format!("09:00:0{n}.50"), 90 + n), 5, (64, 32));
            drop_frame(&f, &incoming.join("nires").join(name));
        }
        assert!(wait_until(60, || async { count(&d, Status::Error).await == 2 }).await, "both frames end ERROR");
        let mail = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a mail").unwrap();
        assert!(mail.contains("Subject: KOA DEP ERROR: [NIRES] KOAID_CREATE_FAIL"), "{mail}");
        assert!(mail.contains("To: koaadmin@example.org"), "{mail}");
        // the second failure with the same code is throttled
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(rx.try_recv().is_err(), "only one mail per instrument and code");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        // the throttle is in the database: a new notifier (another daemon, a restart) also holds back
        let n = koa_dep::notify::Notifier::new(cfg.notify.clone(), d.db().clone());
        assert_eq!(n.report("NIRES", "KOAID_CREATE_FAIL", "again").await, koa_dep::notify::Outcome::Throttled);
        assert_eq!(n.report("NIRES", "KTL_SERVICE_CHECK_FAIL", "heartbeat").await, koa_dep::notify::Outcome::Mailed);
        let mail = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        assert!(mail.contains("[NIRES] KTL_SERVICE_CHECK_FAIL"), "{mail}");
    });
}

#[test]
fn reconcile_lists_and_queues_files_the_database_lacks() {
    let rt = runtime();
    let s = Scratch::new();
    let (cfg, incoming) = watched(&s, &["NIRES"]);
    let dir = incoming.join("nires").join("2024mar15");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..3 {
        let (name, f) = small_nires(n);
        drop_frame(&f, &dir.join(name));
    }
    rt.block_on(async {
        let db = koa_dep::db::Db::connect(&cfg.database.url, 2).await.unwrap();
        let since = koa_dep::cli::parse_since("2000-01-01").unwrap();
        let missing = koa_dep::daemon::reconcile::reconcile(&cfg, &db, since, false).await.unwrap();
        assert_eq!(missing.len(), 3);
        assert!(missing.iter().all(|m| m.queued.is_none() && m.instrument == "NIRES"));
        // future --since: nothing
        let later = koa_dep::cli::parse_since("2999-01-01T00:00:00").unwrap();
        assert!(koa_dep::daemon::reconcile::reconcile(&cfg, &db, later, false).await.unwrap().is_empty());
        let queued = koa_dep::daemon::reconcile::reconcile(&cfg, &db, since, true).await.unwrap();
        assert!(queued.iter().all(|m| m.queued.is_some()));
        assert_eq!(db.count_status(Status::Queued).await.unwrap(), 3);
        assert!(koa_dep::daemon::reconcile::reconcile(&cfg, &db, since, false).await.unwrap().is_empty());
        assert!(koa_dep::cli::parse_since("yesterday").is_err());
    });
}

/// The README's first command, `koa-dep demo` (here with small frames): the
/// daemon on SQLite archives one generated frame of every instrument.
#[test]
fn the_demo_archives_a_frame_of_every_instrument() {
    let s = Scratch::new();
    let rt = runtime();
    let dir = s.path("demo");
    let args = koa_dep::cli::DemoArgs { dir: dir.clone(), keyword_tables: None, small: true };
    let code = rt.block_on(koa_dep::cli::demo(args)).expect("demo runs");
    assert_eq!(code, 0, "every frame archived without error");
    let mut md5_tables = Vec::new();
    for entry in glob_md5(&dir.join("archive")) {
        md5_tables.push(entry.file_name().unwrap().to_string_lossy().to_string());
    }
    md5_tables.sort();
    let prefixes: Vec<&str> = md5_tables.iter().map(|n| &n[..2]).collect();
    // every instrument at level 0, and DEIMOS's real-time mosaic at level 1
    assert_eq!(prefixes, ["DE", "DE", "ES", "GR", "HI", "KB", "KP", "LB", "MF", "N2", "NR", "NS", "OI", "SS"], "{md5_tables:?}");
    let lev1 = glob_md5(&dir.join("archive")).into_iter().filter(|p| p.to_string_lossy().contains("/lev1/")).count();
    assert_eq!(lev1, 1, "the DEIMOS level-1 row ran");
    assert!(dir.join("koa-dep.db").is_file());
}

fn glob_md5(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".md5sum.table") {
                out.push(p);
            }
        }
    }
    out
}

/// Admission by memory: a burst of full-size DEIMOS mosaics (147 MB each)
/// and a stream of small NIRES frames at the same time. The budget holds
/// one mosaic at a time; the small frames keep flowing past the mosaics
/// waiting for room, and the reserved memory never exceeds the budget.
#[test]
fn a_deimos_burst_does_not_hold_up_small_frames() {
    let rt = runtime();
    let s = Scratch::new();
    let (mut cfg, incoming) = watched(&s, &["DEIMOS", "NIRES"]);
    let staging = s.path("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let mut deimos = Vec::new();
    for n in 0..3 {
        let (name, f) = frames::frame("DEIMOS", Size::Full, n).unwrap();
        let p = staging.join(&name);
        f.write(&p).unwrap();
        deimos.push(p);
    }
    let nires: Vec<_> = (0..12)
        .map(|n| {
            let (name, f) = small_nires(100 + n);
            let p = staging.join(name);
            f.write(&p).unwrap();
            p
        })
        .collect();
    let big = koa_dep::daemon::admission::estimate_path(&deimos[0]);
    let small = koa_dep::daemon::admission::estimate_path(&nires[0]);
    assert!(big > 3 * small, "a mosaic needs far more than a small frame ({big} vs {small})");
    // room for one mosaic and two small frames, not for two mosaics
    cfg.daemon.memory_budget_mib = (big + 2 * small) >> 20;
    cfg.daemon.max_jobs = Some(2);
    rt.block_on(async {
        let (d, stop, task) = start(cfg).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let into = |p: &Path, instr: &str| {
            let dest = incoming.join(instr).join(p.file_name().unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::rename(p, dest).unwrap();
        };
        for p in &deimos {
            into(p, "deimos");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        for p in &nires {
            into(p, "nires");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        // 15 frames and the 3 DEIMOS level-1 mosaics they queue
        assert!(wait_until(300, || async { count(&d, Status::Complete).await == 18 }).await, "everything archived");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        let done = d.take_finished();
        assert!(done.iter().all(|f| f.report.status == Status::Complete));
        let last_mosaic = done.iter().filter(|f| f.level == 0 && f.report.instrument == "DEIMOS").map(|f| f.done_at).max().unwrap();
        let small_before = done.iter().filter(|f| f.report.instrument == "NIRES" && f.done_at < last_mosaic).count();
        assert!(small_before >= 8, "only {small_before} of 12 small frames finished while the mosaics were queued");
        let (peak, budget) = d.admission_peak();
        assert!(peak <= budget, "reserved {peak} of a {budget}-byte budget");
        assert!(peak > big, "a mosaic and small frames ran side by side ({peak} reserved, mosaic {big})");
    });
}

/// A queued row of a real frame, as if it had been started `attempts` times.
async fn row_started(cfg: &Config, s: &Scratch, attempts: i64) -> (i64, std::path::PathBuf) {
    let db = koa_dep::db::Db::connect(&cfg.database.url, 1).await.unwrap();
    let (name, f) = small_nires(7);
    let path = s.path("raw").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop_frame(&f, &path);
    let r = db.enqueue("NIRES", "test", &path.display().to_string(), None, false).await.unwrap();
    let koa_dep::db::queue::Enqueued::Queued(id) = r else { panic!("{r:?}") };
    let pool = sqlx::sqlite::SqlitePool::connect(&cfg.database.url).await.unwrap();
    sqlx::query("UPDATE koa_status SET attempts = ? WHERE id = ?").bind(attempts).bind(id).execute(&pool).await.unwrap();
    (id, path)
}

/// Start a daemon on one queued row; the row must end ERROR with `code`
/// without ever running (no KOAID), and nothing may be admitted.
fn ends_before_running(cfg: Config, s: &Scratch, attempts: i64, code: &str) {
    runtime().block_on(async {
        let (id, _) = row_started(&cfg, s, attempts).await;
        let (d, stop, task) = start(cfg).await;
        assert!(wait_until(60, || async { count(&d, Status::Error).await == 1 }).await);
        let row = d.db().get(id).await.unwrap().unwrap();
        assert_eq!(row.status_code.as_deref(), Some(code), "{row:?}");
        assert!(row.koaid.is_none(), "it never ran");
        assert_eq!(d.admission_peak().0, 0, "nothing was admitted");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}

#[test]
fn a_file_that_crashed_every_attempt_ends_attempts_exhausted_not_in_a_loop() {
    let s = Scratch::new();
    let mut cfg = base(&s);
    cfg.daemon.max_attempts = 3;
    // started 3 times, each ended by a crash (the lease ran out and requeued it)
    ends_before_running(cfg, &s, 3, "ATTEMPTS_EXHAUSTED");
}

#[test]
fn a_job_over_the_memory_budget_is_refused_not_admitted() {
    let s = Scratch::new();
    let mut cfg = base(&s);
    // every job's estimate has a 48 MiB base
    cfg.daemon.memory_budget_mib = 16;
    ends_before_running(cfg, &s, 0, "MEMORY_BUDGET_EXCEEDED");
}

#[test]
fn a_restarted_daemon_takes_back_its_dead_predecessors_jobs_at_once() {
    let rt = runtime();
    let s = Scratch::new();
    let (cfg, incoming) = watched(&s, &["NIRES"]);
    let dir = incoming.join("nires");
    std::fs::create_dir_all(&dir).unwrap();
    let (name, f) = small_nires(41);
    let path = dir.join(&name);
    drop_frame(&f, &path);
    rt.block_on(async {
        // the predecessor (this host, a pid that no process has) claimed the file and died
        let db = koa_dep::db::Db::connect(&cfg.database.url, 2).await.unwrap();
        db.enqueue("NIRES", "nires_watch", &path.canonicalize().unwrap().display().to_string(), None, false).await.unwrap();
        let dead = format!("{}-99999999", koa_dep::daemon::host_name());
        let row = db.claim(&dead, 0, None, Duration::from_secs(3600)).await.unwrap().expect("claimed");
        // another host's job, whose lease has not expired, is left alone
        db.enqueue("NIRES", "nires_watch", "/elsewhere/s240315_0099.fits", None, false).await.unwrap();
        let other = db.claim("otherhost-1", 0, None, Duration::from_secs(3600)).await.unwrap().expect("claimed");
        // and another host's job, whose lease has not expired, is left alone
        db.close().await;
        let t = std::time::Instant::now();
        let (d, stop, task) = start(cfg).await;
        assert!(wait_until(30, || async { d.db().get(row.id).await.unwrap().is_some_and(|r| r.status == "COMPLETE") }).await, "taken back and archived");
        eprintln!("taken back and archived in {:.1} s (the lease had an hour left)", t.elapsed().as_secs_f64());
        let o = d.db().get(other.id).await.unwrap().unwrap();
        assert_eq!((o.status.as_str(), o.lease_owner.as_deref()), ("PROCESSING", Some("otherhost-1")), "not ours to take");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}
