//! The daemon's queue on the three databases: duplicate rules, exclusive
//! claims under concurrency, leases, release, retries; three daemons sharing
//! one PostgreSQL queue; and a PostgreSQL outage in the middle of a burst
//! (a private server the test starts and stops), with nothing lost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use koa_dep::config::Config;
use koa_dep::daemon::Daemon;
use koa_dep::db::queue::Enqueued;
use koa_dep::db::{Db, Outcome, Status};
use koa_dep::samples::demo::watch_services;
use koa_dep::samples::frames::{self, Size};
use koa_dep_tests::*;

use super::fresh;

async fn queue_semantics(kind: &str, db: &Db) {
    let lease = Duration::from_secs(60);
    let Enqueued::Queued(a) = db.enqueue("NIRES", "nsds", "/s/sdata/a.fits", None, true).await.unwrap() else { panic!("{kind}: queued") };
    // a back-to-back broadcast of a path in flight
    assert_eq!(db.enqueue("NIRES", "nsds", "/s/sdata/a.fits", None, true).await.unwrap(), Enqueued::InFlight(a), "{kind}");
    for i in 1..40 {
        assert!(matches!(db.enqueue("NIRES", "nsds", &format!("/s/sdata/f{i:02}.fits"), None, true).await.unwrap(), Enqueued::Queued(_)));
    }
    // eight workers claim concurrently: every job exactly once
    let mut tasks = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(row) = db.claim(&format!("w{w}"), 0, None, lease).await.unwrap() {
                assert_eq!(row.status, "PROCESSING");
                assert_eq!(row.lease_owner.as_deref(), Some(format!("w{w}").as_str()));
                got.push(row.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (40, 40), "{kind}: each job claimed once");
    assert_eq!(db.count_status(Status::Processing).await.unwrap(), 40, "{kind}");
    // release (shutdown) gives a job back without counting the attempt
    let row = db.get(a).await.unwrap().unwrap();
    let owner = row.lease_owner.clone().unwrap();
    assert!(!db.release(a, "someone-else").await.unwrap(), "{kind}: only the owner releases");
    assert!(db.release(a, &owner).await.unwrap());
    let row = db.get(a).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts, row.lease_owner.clone()), ("QUEUED", 0, None), "{kind}");
    // a dead worker: its lease runs out and the job comes back
    let c = db.claim("dead", 0, None, Duration::from_millis(1)).await.unwrap().unwrap();
    assert_eq!(c.id, a);
    assert!(db.renew(a, "dead", Duration::from_millis(1)).await.unwrap());
    assert!(!db.renew(a, "other", lease).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(db.requeue_expired().await.unwrap() >= 1, "{kind}");
    assert_eq!(db.get(a).await.unwrap().unwrap().status, "QUEUED");
    // transient failure: back in the queue after a delay, not claimable before
    let c = db.claim("w", 0, None, lease).await.unwrap().unwrap();
    assert_eq!(c.attempts, 2, "{kind}: attempts count claims");
    assert!(db.retry_later(c.id, Duration::from_secs(3600), 4, true).await.unwrap());
    assert_eq!(db.get(c.id).await.unwrap().unwrap().status, "QUEUED");
    assert!(db.claim("w", 0, None, lease).await.unwrap().is_none(), "{kind}: not due yet");
    // the attempt limit: no retry past max_attempts
    assert!(!db.retry_later(c.id, Duration::ZERO, 2, true).await.unwrap(), "{kind}");
    // the same content already archived is not queued again
    let done = all[5];
    db.set_identity(done, "NR.20240315.30074.52", "2024-03-15 08:21:14.52", Some("0123456789abcdef0123456789abcdef")).await.unwrap();
    db.finish(done, &Outcome { status: Some(Status::Complete), ..Default::default() }).await.unwrap();
    let again = db.enqueue("NIRES", "nsds", "/s/sdata/copy-of-f05.fits", Some("0123456789abcdef0123456789abcdef"), true).await.unwrap();
    assert_eq!(again, Enqueued::SameContent(done), "{kind}");
    // the instrument filter of claims
    assert!(matches!(db.enqueue("KCWI", "kbds", "/s/sdata/k.fits", None, true).await.unwrap(), Enqueued::Queued(_)));
    assert!(db.claim("w", 0, Some("DEIMOS"), lease).await.unwrap().is_none(), "{kind}");
    assert_eq!(db.claim("w", 0, Some("KCWI"), lease).await.unwrap().unwrap().instrument, "KCWI", "{kind}");
    assert!(db.last_seen("nsds").await.unwrap().is_some());
    in_flight_semantics(kind, db, lease).await;
    assert!(db.known_path("/s/sdata/f07.fits").await.unwrap());
    assert!(!db.known_path("/s/sdata/never.fits").await.unwrap());
}

/// One in-flight row per file, enforced by the database; TRANSFERRING rows
/// of a dead worker come back; a disk-full wait uses up no attempt.
async fn in_flight_semantics(kind: &str, db: &Db, lease: Duration) {
    // sixteen concurrent enqueues of one new path make one row
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move { db.enqueue("NIRES", "nsds", "/s/sdata/race.fits", None, true).await.unwrap() }));
    }
    let mut queued = Vec::new();
    let mut in_flight = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Enqueued::Queued(id) => queued.push(id),
            Enqueued::InFlight(id) => in_flight.push(id),
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert_eq!(queued.len(), 1, "{kind}: one row for one file, {in_flight:?}");
    assert!(in_flight.iter().all(|id| *id == queued[0]), "{kind}");
    // the key itself refuses a second in-flight row, whoever inserts it
    let second = db
        .insert_job(&koa_dep::db::NewJob {
            level: 0,
            instrument: "NIRES",
            service: None,
            ofname: "/s/sdata/race.fits",
            status: Status::Queued,
            reprocess: false,
            transfer: false,
            stage_file: None,
            koaid: None,
        })
        .await;
    assert!(second.is_err_and(|e| e.is_unique_violation()), "{kind}");
    // a worker dies while transferring: the row comes back with its transfer start cleared
    let row = loop {
        let r = db.claim("dies", 0, None, Duration::from_millis(1)).await.unwrap().unwrap();
        if r.id == queued[0] {
            break r;
        }
        db.finish(r.id, &Outcome { status: Some(Status::Complete), ..Default::default() }).await.unwrap();
    };
    assert!(db.transfer_started(row.id).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(db.requeue_expired().await.unwrap() >= 1, "{kind}");
    let back = db.get(row.id).await.unwrap().unwrap();
    assert_eq!((back.status.as_str(), back.xfr_start_time, back.lease_owner), ("QUEUED", None, None), "{kind}");
    // a wait for disk space does not count as an attempt
    let again = db.claim("w", 0, None, lease).await.unwrap().unwrap();
    assert_eq!(again.id, row.id);
    assert!(db.retry_later(again.id, Duration::ZERO, 1, false).await.unwrap(), "{kind}: not limited by attempts");
    assert_eq!(db.get(again.id).await.unwrap().unwrap().attempts, again.attempts - 1, "{kind}");
    let done = db.claim("w", 0, None, lease).await.unwrap().unwrap();
    db.finish(done.id, &Outcome { status: Some(Status::Complete), ..Default::default() }).await.unwrap();
    // a finished file may be queued again (a new version of it)
    assert!(matches!(db.enqueue("NIRES", "nsds", "/s/sdata/race.fits", None, true).await.unwrap(), Enqueued::Queued(_)), "{kind}");
}

#[test]
fn the_queue_on_sqlite_postgres_and_mariadb() {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Db::connect(&format!("sqlite://{}", dir.path().join("q.db").display()), 4).await.unwrap();
        queue_semantics("sqlite", &sqlite).await;
        for kind in ["postgres", "mysql"] {
            let url = fresh(kind, "koa_dep_t_queue").await;
            let db = Db::connect(&url, 8).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
            queue_semantics(kind, &db).await;
            db.close().await;
        }
    });
}

fn daemon_cfg(s: &Scratch, url: &str, name: &str) -> Config {
    let mut cfg = s.with_services();
    cfg.database.url = url.to_string();
    cfg.database.max_connections = 4;
    cfg.daemon.name = Some(name.to_string());
    cfg.daemon.journal_dir = Some(s.path(&format!("journal-{name}")));
    cfg.daemon.poll_s = 0.05;
    cfg.daemon.max_jobs = Some(1);
    cfg.daemon.accept_roots = vec![s.dir.path().display().to_string()];
    cfg
}

#[test]
fn three_daemons_share_one_postgres_queue() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let s = Scratch::new();
    let url = rt.block_on(fresh("postgres", "koa_dep_t_scale"));
    let dir = s.path("sdata/nires/2024mar15");
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for n in 0..300 {
        let (name, f) = frames::frame("NIRES", Size::Small, n).unwrap();
        let p = dir.join(name);
        f.write(&p).unwrap();
        paths.push(p.display().to_string());
    }
    rt.block_on(async {
        let daemons: Vec<Arc<Daemon>> = {
            let mut v = Vec::new();
            for name in ["d1", "d2", "d3"] {
                v.push(Arc::new(Daemon::new(daemon_cfg(&s, &url, name)).await.unwrap()));
            }
            v
        };
        let mut stops = Vec::new();
        let mut tasks = Vec::new();
        for d in &daemons {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                d.run(async {
                    let _ = rx.await;
                })
                .await
            }));
            stops.push(tx);
        }
        // the burst: 300 triggers while the three daemons run
        let db = daemons[0].db().clone();
        for p in &paths {
            assert!(matches!(db.enqueue("NIRES", "nsds", p, None, false).await.unwrap(), Enqueued::Queued(_)));
        }
        let all_done = wait_until(900, || async { db.count_status(Status::Complete).await.unwrap() == 300 }).await;
        for tx in stops {
            let _ = tx.send(());
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(all_done, "300 archived; complete = {}", db.count_status(Status::Complete).await.unwrap());
        let per: Vec<usize> = daemons.iter().map(|d| d.take_finished().len()).collect();
        assert_eq!(per.iter().sum::<usize>(), 300, "no job processed twice: {per:?}");
        assert!(per.iter().all(|n| *n > 0), "every daemon took jobs: {per:?}");
        let rows = db.by_status(Status::Complete).await.unwrap();
        assert!(rows.iter().all(|r| r.attempts == 1), "one attempt each");
        let koaids: BTreeSet<_> = rows.iter().filter_map(|r| r.koaid.clone()).collect();
        assert_eq!(koaids.len(), 300);
        let ofnames: BTreeSet<_> = rows.iter().map(|r| r.ofname.clone()).collect();
        assert_eq!(ofnames, paths.iter().cloned().collect::<BTreeSet<_>>(), "none lost");
        for st in [Status::Invalid, Status::Error, Status::Queued, Status::Processing] {
            assert_eq!(db.count_status(st).await.unwrap(), 0, "{st:?}");
        }
    });
}

/// A PostgreSQL server of the test's own (so stopping it disturbs nothing
/// else): initdb in a temporary folder, started and stopped with pg_ctl.
pub(crate) struct PrivatePg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePg {
    fn bin_dir() -> PathBuf {
        let out = std::process::Command::new("pg_config").arg("--bindir").output();
        if let Ok(o) = out {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            if p.join("initdb").exists() {
                return p;
            }
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .collect();
        found.sort();
        found.pop().expect("initdb")
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let root = unsafe { libc_geteuid() } == 0;
        let mut cmd = if root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let st = cmd.args(args).status().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(st.success(), "{program} {args:?} failed");
    }

    pub(crate) fn new() -> PrivatePg {
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new("chmod").arg("755").arg(dir.path()).status().unwrap();
        if unsafe { libc_geteuid() } == 0 {
            std::process::Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePg { dir, bin: Self::bin_dir(), port };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.start();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub(crate) fn start(&self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"]);
    }

    pub(crate) fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if unsafe { libc_geteuid() } == 0 {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl);
            c
        } else {
            std::process::Command::new(pg_ctl)
        };
        let _ = cmd.args(["-D", &self.data(), "-m", "immediate", "stop"]).stderr(std::process::Stdio::null()).status();
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

pub(crate) fn drop_nires(dir: &Path, n: u32) -> PathBuf {
    let (name, f) = frames::frame("NIRES", Size::Small, n).unwrap();
    let p = dir.join(name);
    drop_frame(&f, &p);
    p
}

#[test]
fn a_database_outage_mid_burst_loses_nothing() {
    let pg = PrivatePg::new();
    let rt = runtime();
    let s = Scratch::new();
    let mut cfg = daemon_cfg(&s, &pg.url(), "outage");
    cfg.daemon.lease_s = 6;
    cfg.daemon.retry_delay_s = 1;
    cfg.daemon.max_attempts = 10;
    let incoming = s.path("incoming");
    cfg.service = watch_services(&incoming, ["NIRES"]);
    let dir = incoming.join("nires");
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let d = Arc::new(Daemon::new(cfg).await.unwrap());
        let (tx, task) = spawn_daemon(d.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut paths = BTreeSet::new();
        for n in 0..10 {
            paths.insert(drop_nires(&dir, n).display().to_string());
        }
        let db = d.db().clone();
        assert!(wait_until(60, || async { db.count_status(Status::Complete).await.unwrap_or(0) >= 2 }).await);
        // the database goes away in the middle of the burst
        pg.stop();
        for n in 10..25 {
            paths.insert(drop_nires(&dir, n).display().to_string());
        }
        assert!(wait_until(20, || async { d.journal_pending() > 0 }).await, "triggers wait in the journal");
        tokio::time::sleep(Duration::from_secs(2)).await;
        pg.start();
        let done = wait_until(240, || async { db.count_status(Status::Complete).await.unwrap_or(0) == 25 }).await;
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(done, "all 25 archived after the outage: {}", db.count_status(Status::Complete).await.unwrap());
        let rows = db.by_status(Status::Complete).await.unwrap();
        let got: BTreeSet<_> = rows.iter().map(|r| r.ofname.clone()).collect();
        assert_eq!(got, paths, "every file archived");
        assert_eq!(rows.len(), 25, "exactly once");
        for st in [Status::Invalid, Status::Error, Status::Queued, Status::Processing] {
            assert_eq!(db.count_status(st).await.unwrap(), 0, "{st:?}");
        }
        assert_eq!(d.journal_pending(), 0);
    });
}

/// After downtime the daemon reads the trigger broadcasts since the
/// service's newest job from a PostgreSQL keyword history (`kbds`-shaped:
/// time, keyword, ascvalue) and queues what the database does not have.
#[test]
fn keyword_history_backfill_after_downtime() {
    use sqlx::Connection;
    let rt = runtime();
    let s = Scratch::new();
    let history = rt.block_on(fresh("postgres", "koa_dep_t_history"));
    let dir = s.path("sdata/nires/2024mar15");
    std::fs::create_dir_all(&dir).unwrap();
    let nires = |n| drop_nires(&dir, n).display().to_string();
    let (old, seen, missed1, missed2, earlier) = (nires(1), nires(2), nires(3), nires(4), nires(5));
    let mut cfg = daemon_cfg(&s, &s.cfg.database.url, "backfill");
    cfg.daemon.history_url = Some(history.clone());
    let service: koa_dep::config::Service = serde_json::from_value(serde_json::json!({
        "name": "nids", "ktl": "nids", "instrument": "NIRES", "trigger": "LASTFILE", "source": "none",
        "history_table": "kbds_nids",
    }))
    .unwrap();
    cfg.service = vec![service.clone()];
    let now = chrono::Utc::now().naive_utc();
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&history).await.unwrap();
        sqlx::raw_sql("CREATE TABLE kbds_nids (time TIMESTAMP NOT NULL, keyword TEXT NOT NULL, ascvalue TEXT)").execute(&mut c).await.unwrap();
        let rows = [
            (now - chrono::Duration::hours(30), "LASTFILE", old.as_str()),   // before the window
            (now - chrono::Duration::hours(5), "LASTFILE", earlier.as_str()), // before the newest job: handled then
            (now - chrono::Duration::hours(3), "LASTFILE", seen.as_str()),   // archived before the stop
            (now - chrono::Duration::hours(2), "LASTFILE", missed1.as_str()),
            (now - chrono::Duration::hours(2), "ITERATION", "41"),          // another keyword
            (now - chrono::Duration::hours(1), "LASTFILE", missed2.as_str()),
            (now - chrono::Duration::minutes(30), "LASTFILE", ""),           // unpopulated
        ];
        for (t, k, v) in rows {
            sqlx::query("INSERT INTO kbds_nids (time, keyword, ascvalue) VALUES ($1, $2, $3)").bind(t).bind(k).bind(v).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    });
    // the file seen before the downtime is in the store, archived 4 hours ago
    let a = archiver(&rt, cfg.clone());
    let r = archive(&rt, &a, "NIRES", Path::new(&seen), koa_dep::pipeline::JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    rt.block_on(async {
        let db = &a.db;
        db.set_service_for_test(r.id, "nids", now - chrono::Duration::hours(4)).await.unwrap();
        let d = Arc::new(Daemon::with_archiver(cfg, a.clone()).unwrap());
        let (tx, task) = spawn_daemon(d.clone());
        assert!(wait_until(60, || async { d.db().count_status(Status::Complete).await.unwrap() == 3 }).await, "the two missed files archived");
        tokio::time::sleep(Duration::from_millis(500)).await;
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        let done: BTreeSet<String> = d.db().by_status(Status::Complete).await.unwrap().into_iter().map(|r| r.ofname).collect();
        assert_eq!(done, [seen.clone(), missed1.clone(), missed2.clone()].into_iter().collect::<BTreeSet<_>>());
        assert!(!d.db().known_path(&old).await.unwrap(), "a broadcast before the window is not replayed");
        assert!(!d.db().known_path(&earlier).await.unwrap(), "the window starts at the service's newest job");
    });
}
