//! The fault-injection suite (issue 13): a daemon killed with SIGKILL at
//! every point of the step list (its own process, on PostgreSQL), killed by
//! its rsync in the middle of a transfer, an rsync killed mid-transfer, a
//! daemon started while its database is down, and an archive disk that
//! fills up. Each asserts 0 lost, 0 twice, 0 stranded, published products
//! unchanged, and prints the recovery times.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use koa_dep::config::Config;
use koa_dep::daemon::Daemon;
use koa_dep::db::{Db, Status, StatusRow};
use koa_dep::samples::demo::watch_services;
use koa_dep_tests::*;

use super::fresh;
use super::queue::{PrivatePg, drop_nires};

const CHILD: &str = "KOA_DEP_FAULT_CHILD";

/// The daemon as a process of its own (this test binary run again), so it
/// can be killed with SIGKILL. Does nothing when run as a test.
#[test]
#[ignore = "run by the fault tests as their daemon process"]
fn child_daemon() {
    let Some(path) = std::env::var_os(CHILD) else { return };
    let cfg: Config = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).try_init();
    runtime().block_on(async {
        let d = Daemon::new(cfg).await.unwrap();
        d.run(koa_dep::daemon::shutdown_signal()).await.unwrap();
    });
}

/// A daemon process, killed when the test ends (a failing test leaves none behind).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn_child(cfg_path: &Path, crash_at: Option<&str>, log: &Path) -> Proc {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["faults::child_daemon", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, cfg_path)
        .env_remove(koa_dep::faults::CRASH_AT)
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap());
    if let Some(p) = crash_at {
        c.env(koa_dep::faults::CRASH_AT, p);
    }
    Proc(c.spawn().unwrap())
}

fn wait_exit(child: &mut Child, limit: Duration, what: &str, log: &Path) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: the daemon did not stop within {limit:?}; its log:\n{}", tail(log));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_child(mut child: Proc, log: &Path) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_exit(&mut child, Duration::from_secs(60), "SIGTERM", log);
    assert!(st.success(), "a clean stop: {st:?}\n{}", tail(log));
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn which(prog: &str) -> String {
    let out = Command::new("sh").args(["-c", &format!("command -v {prog}")]).output().unwrap();
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!p.is_empty(), "{prog} is needed by the fault suite");
    p
}

/// IPAC's ingest API: answers COMPLETE, counts calls.
fn ingest_api(rt: &tokio::runtime::Runtime) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/ingest",
        axum::routing::get(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(serde_json::json!({"APIStatus": "COMPLETE"})) }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/ingest?"), calls)
}

/// A daemon configuration for the fault tests: one watched NIRES folder
/// whose products are transferred to a local "IPAC" folder.
fn fault_cfg(s: &Scratch, url: &str, api: &str) -> Config {
    let mut cfg = s.with_services();
    cfg.archive.keyword_tables = Some(repo_keyword_tables());
    cfg.database.url = url.to_string();
    cfg.database.max_connections = 4;
    cfg.daemon.name = Some("faults".into());
    cfg.daemon.journal_dir = Some(s.path("journal"));
    cfg.daemon.poll_s = 0.05;
    cfg.daemon.max_jobs = Some(1);
    cfg.daemon.lease_s = 5;
    cfg.daemon.retry_delay_s = 1;
    cfg.daemon.max_attempts = 10;
    cfg.daemon.sweep_grace_s = 0.0;
    cfg.daemon.min_free_mib = 0;
    cfg.daemon.accept_roots = vec![s.dir.path().display().to_string()];
    cfg.transfer.destination = Some(s.path("ipac").display().to_string());
    cfg.transfer.ingest_api = Some(api.to_string());
    cfg.transfer.ingest_retry_delay_s = 0.05;
    let mut services = watch_services(&s.path("incoming"), ["NIRES"]);
    services[0].transfer = true;
    cfg.service = services;
    std::fs::create_dir_all(s.path("incoming/nires")).unwrap();
    cfg
}

/// MD5 of every file of a published product set, from the files themselves.
fn published(row: &StatusRow, root: &Path) -> Option<BTreeMap<PathBuf, String>> {
    let koaid = row.koaid.as_deref()?;
    let lev0 = root.join("NIRES").join(koaid.split('.').nth(1)?).join("lev0");
    let table = std::fs::read_to_string(lev0.join(format!("{koaid}.md5sum.table"))).ok()?;
    let mut out = BTreeMap::new();
    for line in table.lines() {
        let (_, rel) = line.split_once("  ").unwrap();
        let p = lev0.join(rel);
        out.insert(p.clone(), koa_dep::fits::write::md5_file(&p).unwrap());
    }
    out.insert(lev0.join(format!("{koaid}.md5sum.table")), koa_dep::fits::write::md5_file(&lev0.join(format!("{koaid}.md5sum.table"))).unwrap());
    Some(out)
}

fn temporaries(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root).into_iter().flatten().filter(|e| e.file_type().is_file() && koa_dep::daemon::sweeper::is_temporary(e.path())).map(|e| e.into_path()).collect()
}

fn rows_of(rt: &tokio::runtime::Runtime, db: &Db, ofname: &str) -> Vec<StatusRow> {
    let all = rt.block_on(db.select(&koa_dep::db::Selection { level: 0, ofname_like: Some(ofname.to_string()), ..Default::default() })).unwrap();
    all.into_iter().filter(|r| r.ofname == ofname).collect()
}

fn settled(r: &StatusRow) -> bool {
    r.lease_owner.is_none() && matches!(r.status.as_str(), "TRANSFERRED" | "COMPLETE" | "ERROR" | "INVALID")
}

/// kill -9 at each of ten points of the step list, twice; the killed
/// daemon's own rsync killing it mid-transfer; an rsync killed mid-transfer.
#[test]
fn kill_9_anywhere_loses_nothing_and_redoes_nothing() {
    let rt = runtime();
    let url = rt.block_on(fresh("postgres", "koa_dep_t_faults"));
    let s = Scratch::new();
    let (api, calls) = ingest_api(&rt);
    let mut cfg = fault_cfg(&s, &url, &api);
    // an rsync that, when told to, kills the daemon that runs it (mid-transfer) or itself
    let rsync = which("rsync");
    let kill_daemon = s.path("kill-daemon-once");
    let kill_rsync = s.path("kill-rsync-once");
    let wrapper = script(
        s.dir.path(),
        "rsync",
        &format!(
            "if [ -f {d} ]; then rm -f {d}; kill -9 $PPID; sleep 1; exit 1; fi\nif [ -f {r} ]; then rm -f {r}; kill -9 $$; fi\nexec {rsync} \"$@\"",
            d = kill_daemon.display(),
            r = kill_rsync.display()
        ),
    );
    cfg.transfer.rsync = wrapper.display().to_string();
    let cfg_path = s.path("daemon.json");
    std::fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();
    let log = s.path("daemon.log");
    let db = rt.block_on(Db::connect(&url, 2)).unwrap();
    let root = cfg.archive.root.clone();
    let points = [
        "before:load",
        "after:identify",
        "after:dedupe",
        "after:write",
        "after:preview",
        "after:tables",
        "publish:renamed",
        "after:publish",
        "transfer:shipped",
        "transfer:ingested",
    ];
    let mut recoveries = Vec::new();
    let mut files = Vec::new();
    for round in 0..22u32 {
        let path = drop_nires(&s.path("incoming/nires"), round);
        files.push(path.clone());
        let (crash_at, label) = match round {
            20 => {
                std::fs::write(&kill_daemon, "").unwrap();
                (None, "rsync kills the daemon mid-transfer")
            }
            21 => {
                std::fs::write(&kill_rsync, "").unwrap();
                (None, "rsync killed mid-transfer")
            }
            n => (Some(points[n as usize % points.len()]), points[n as usize % points.len()]),
        };
        let mut child = spawn_child(&cfg_path, crash_at, &log);
        if round == 21 {
            // the daemon lives on: the transfer fails, is retried, and succeeds
            let t = Instant::now();
            let done = wait_for(&rt, &db, &path, Duration::from_secs(90));
            recoveries.push((label, t.elapsed()));
            assert!(done.is_some(), "{label}: {:?}\n{}", rows_of(&rt, &db, &path.display().to_string()), tail(&log));
            stop_child(child, &log);
        } else {
            let st = wait_exit(&mut child, Duration::from_secs(90), label, &log);
            assert_eq!(st.signal(), Some(libc::SIGKILL), "{label}: killed, not {st:?}\n{}", tail(&log));
            let before = rows_of(&rt, &db, &path.display().to_string());
            assert_eq!(before.len(), 1, "{label}: one row");
            let snapshot = published(&before[0], &root);
            // a new daemon, as an operator (or systemd) starts it
            let child = spawn_child(&cfg_path, None, &log);
            let t = Instant::now();
            let done = wait_for(&rt, &db, &path, Duration::from_secs(60));
            recoveries.push((label, t.elapsed()));
            let row = done.unwrap_or_else(|| panic!("{label}: not recovered: {:?}\n{}", rows_of(&rt, &db, &path.display().to_string()), tail(&log)));
            if let Some(snap) = snapshot {
                assert_eq!(published(&row, &root).as_ref(), Some(&snap), "{label}: published products unchanged");
            }
            stop_child(child, &log);
        }
    }
    // 0 lost, 0 twice, 0 stranded
    for f in &files {
        let rows = rows_of(&rt, &db, &f.display().to_string());
        assert_eq!(rows.len(), 1, "{}: exactly one row", f.display());
        assert_eq!(rows[0].status, "TRANSFERRED", "{}: {:?}", f.display(), rows[0]);
        let koaid = rows[0].koaid.clone().unwrap();
        let lev0 = root.join("NIRES").join(koaid.split('.').nth(1).unwrap()).join("lev0");
        let at_ipac = s.path("ipac").join("NIRES").join(koaid.split('.').nth(1).unwrap()).join("lev0");
        let table = std::fs::read_to_string(lev0.join(format!("{koaid}.md5sum.table"))).unwrap();
        for line in table.lines() {
            let (md5, rel) = line.split_once("  ").unwrap();
            assert_eq!(koa_dep::fits::write::md5_file(&at_ipac.join(rel)).unwrap(), md5, "{rel} at the destination");
        }
    }
    for st in [Status::Queued, Status::Processing, Status::Transferring, Status::Error, Status::Invalid] {
        assert_eq!(rt.block_on(db.count_status(st)).unwrap(), 0, "{st:?}");
    }
    let stage: Vec<PathBuf> = walkdir::WalkDir::new(root.join("NIRES/stage")).into_iter().flatten().filter(|e| e.file_type().is_file()).map(|e| e.into_path()).collect();
    assert_eq!(stage.len(), files.len(), "one stage copy per file, no _verN: {stage:?}");
    assert!(temporaries(&root).is_empty(), "temporaries swept: {:?}", temporaries(&root));
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= files.len(), "every file's ingest called");
    let secs: Vec<f64> = recoveries.iter().map(|(_, d)| d.as_secs_f64()).collect();
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    println!("recovery after kill -9 (s): median {:.2}, max {:.2}", sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    for (label, d) in &recoveries {
        println!("  {label}: {:.2} s", d.as_secs_f64());
        assert!(d.as_secs_f64() < 45.0, "{label}: recovered in {d:?} (bound 45 s)");
    }
}

fn wait_for(rt: &tokio::runtime::Runtime, db: &Db, path: &Path, limit: Duration) -> Option<StatusRow> {
    let t = Instant::now();
    while t.elapsed() < limit {
        let rows = rows_of(rt, db, &path.display().to_string());
        if rows.len() == 1 && settled(&rows[0]) {
            return Some(rows[0].clone());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The daemon starts while its database is down: triggers go to the
/// journal, `/healthz` says unhealthy, `/metrics` answers; when the
/// database starts, everything is archived once.
#[test]
fn a_daemon_starts_without_its_database() {
    let pg = PrivatePg::new();
    pg.stop();
    let rt = runtime();
    let s = Scratch::new();
    let (api, _) = ingest_api(&rt);
    let mut cfg = fault_cfg(&s, &pg.url(), &api);
    cfg.service[0].transfer = false;
    cfg.daemon.http_listen = Some("127.0.0.1:0".into());
    rt.block_on(async {
        let t = Instant::now();
        let d = Arc::new(Daemon::new(cfg).await.expect("starts without the database"));
        let (tx, task) = spawn_daemon(d.clone());
        assert!(wait_until(20, || async { d.http_addr().is_some() }).await);
        let base = format!("http://{}", d.http_addr().unwrap());
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(health.status(), 503);
        let body: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
        assert_eq!(body["queue_running"], false, "{body}");
        let mut paths = Vec::new();
        for n in 0..8 {
            paths.push(drop_nires(&s.path("incoming/nires"), n));
        }
        // the journal takes them at once, without waiting for the database
        assert!(wait_until(5, || async { d.journal_pending() == 8 }).await, "journalled: {}", d.journal_pending());
        println!("8 triggers journalled {:.2} s after start, database down", t.elapsed().as_secs_f64());
        let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
        assert!(metrics.contains("koa_dep_database_up 0") && metrics.contains("koa_dep_journal_pending 8"), "{metrics}");
        pg.start();
        let t = Instant::now();
        let db = d.db().clone();
        let done = wait_until(120, || async { db.count_status(Status::Complete).await.unwrap_or(0) == 8 }).await;
        println!("database back: 8 archived in {:.2} s", t.elapsed().as_secs_f64());
        assert!(d.database_ready());
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(done, "{}", db.count_status(Status::Complete).await.unwrap());
        assert_eq!(db.by_status(Status::Complete).await.unwrap().len(), 8, "once each");
        assert_eq!(d.journal_pending(), 0);
    });
}

/// The archive disk fills up (a small tmpfs): jobs wait with DISK_FULL
/// and are retried without using up attempts, `/healthz` says why, the
/// journal (elsewhere) keeps taking triggers; when space returns every file
/// is archived once and no temporary is left.
#[test]
fn a_full_archive_disk_is_a_wait() {
    let rt = runtime();
    let s = Scratch::new();
    let mnt = s.path("small-disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=256m", "tmpfs"]).arg(&mnt).status().unwrap();
    assert!(st.success(), "mounting a tmpfs for the full-disk test needs root (CAP_SYS_ADMIN)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let (api, _) = ingest_api(&rt);
    let mut cfg = fault_cfg(&s, &format!("sqlite://{}", s.path("koa.db").display()), &api);
    cfg.service[0].transfer = false;
    cfg.archive.root = mnt.join("archive");
    cfg.daemon.max_attempts = 2;
    cfg.daemon.min_free_mib = 3;
    cfg.daemon.http_listen = Some("127.0.0.1:0".into());
    // the disk is nearly full: 4 MiB free, over min_free_mib, under what a file needs
    std::fs::create_dir_all(&cfg.archive.root).unwrap();
    let filler = mnt.join("filler");
    let free = koa_dep::faults::free_bytes(&mnt).unwrap();
    std::fs::write(&filler, vec![1u8; (free - (4 << 20)) as usize]).unwrap();
    rt.block_on(async {
        let d = Arc::new(Daemon::new(cfg.clone()).await.unwrap());
        let (tx, task) = spawn_daemon(d.clone());
        assert!(wait_until(20, || async { d.http_addr().is_some() }).await);
        let base = format!("http://{}", d.http_addr().unwrap());
        let mut paths = Vec::new();
        for n in 0..6 {
            let (name, f) = koa_dep::samples::frames::frame("NIRES", koa_dep::samples::frames::Size::Full, n).unwrap();
            let p = s.path("incoming/nires").join(name);
            drop_frame(&f, &p);
            paths.push(p);
        }
        // jobs meet the full disk: DISK_FULL, the queue pauses, /healthz says so
        assert!(wait_until(60, || async { d.disk_short().is_some() }).await, "the daemon saw the full disk");
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(health.status(), 503);
        let body: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
        assert!(body["disk"].as_str().unwrap().contains("min_free_mib") || body["disk"].as_str().unwrap().contains("job"), "{body}");
        let db = d.db().clone();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(db.count_status(Status::Complete).await.unwrap() < 6, "not everything fits");
        assert_eq!(db.count_status(Status::Error).await.unwrap(), 0, "a full disk fails no job for good");
        // space returns
        std::fs::remove_file(&filler).unwrap();
        let t = Instant::now();
        let done = wait_until(120, || async { db.count_status(Status::Complete).await.unwrap_or(0) == 6 }).await;
        println!("disk space back: 6 archived in {:.2} s", t.elapsed().as_secs_f64());
        assert!(d.disk_short().is_none());
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(done, "all archived once space returned: {:?}", db.by_status(Status::Queued).await.unwrap().iter().map(|r| r.status_code.clone()).collect::<Vec<_>>());
        let rows = db.by_status(Status::Complete).await.unwrap();
        assert_eq!(rows.len(), 6);
        let retried = d.counters().retried.load(std::sync::atomic::Ordering::Relaxed);
        assert!(retried >= 1, "jobs met the full disk and were retried");
        assert!(rows.iter().all(|r| r.attempts <= 2), "waits for space used up no attempt (max_attempts = 2, {retried} retries)");
        assert!(temporaries(&cfg.archive.root).is_empty(), "no temporary left: {:?}", temporaries(&cfg.archive.root));
        let _ = paths;
    });
}
