//! KOA's production database as the reference defines it
//! (`data_dir()/reference-schema/koa-mariadb.sql`, with rows years of runs
//! leave), adopted in place on MariaDB and PostgreSQL: refused before the
//! upgrade, every original row and value unchanged after it, new frames
//! archived, an old row reprocessed, the reference's PROCESSING leftover
//! taken over by the same file, the reports, a second upgrade that changes
//! nothing, and an upgrade while a daemon runs on the database.

use std::process::Command;

use koa_dep::db::schema::State;
use koa_dep::db::{Db, Status};
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires};
use koa_dep_tests::*;

use super::{fresh, maria_admin, pg_admin};

/// The tables the fixture fills, with the column that orders their rows.
const TABLES: [(&str, &str); 7] = [
    ("koa_status", "id"),
    ("koa_status_history", "id"),
    ("headers", "koaid"),
    ("dep_error_notify", "id"),
    ("koa_pi_notify", "id"),
    ("koa_summary", "id"),
    ("koa_storage", "id"),
];

/// The fixture as PostgreSQL reads it: the same tables, columns and rows,
/// MariaDB's types written the PostgreSQL way (integers as BIGINT).
fn postgres_fixture(sql: &str) -> String {
    let mut out = String::new();
    for line in sql.lines() {
        if line.starts_with("ALTER TABLE koa_status_history") {
            continue; // MariaDB's LIKE copies keys; PostgreSQL's below copies none
        }
        let l = line
            .replace("CREATE TABLE koa_status_history LIKE koa_status;", "CREATE TABLE koa_status_history (LIKE koa_status INCLUDING DEFAULTS);")
            .replace("INT(11)      NOT NULL AUTO_INCREMENT PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
            .replace("INT(11) NOT NULL AUTO_INCREMENT PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
            .replace(" ON UPDATE CURRENT_TIMESTAMP", "")
            .replace(" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", "")
            .replace("UNIQUE uidx (", "CONSTRAINT uidx_KEY UNIQUE (")
            .replace("INT(11)", "BIGINT")
            .replace("TINYINT(1)", "SMALLINT")
            .replace("INTEGER", "BIGINT")
            .replace("DOUBLE", "DOUBLE PRECISION")
            .replace("DATETIME", "TIMESTAMP");
        out.push_str(&l);
        out.push('\n');
    }
    // one unique key name per table, as PostgreSQL wants
    let out = out.replacen("uidx_KEY", "uidx", 1).replacen("uidx_KEY", "odap_queue_uidx", 1);
    out + "SELECT setval(pg_get_serial_sequence('koa_status', 'id'), 1000);\n"
}

/// Every row of a table as the server's own client prints it (tab-separated
/// text), the first `columns` fields of each line.
fn dump(kind: &str, url: &str, table: &str, order: &str, columns: usize) -> Vec<String> {
    let sql = format!("SELECT * FROM {table} ORDER BY {order}");
    let out = match kind {
        "postgres" => Command::new("psql").args([url, "-X", "-A", "-t", "-F", "\t", "-c", &sql]).output(),
        _ => {
            // mysql://user@host:port/db
            let rest = url.trim_start_matches("mysql://");
            let (user, rest) = rest.split_once('@').unwrap();
            let (hostport, db) = rest.split_once('/').unwrap();
            let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
            Command::new("mariadb").args(["-h", host, "-P", port, "-u", user, "--batch", "--skip-column-names", "-e", &sql, db]).output()
        }
    }
    .unwrap_or_else(|e| panic!("{kind} client: {e}"));
    assert!(out.status.success(), "{kind} {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.split('\t').take(columns).collect::<Vec<_>>().join("\t")).collect()
}

fn column_count(kind: &str, url: &str, table: &str) -> usize {
    dump(kind, url, table, "1", usize::MAX).first().map(|l| l.split('\t').count()).unwrap_or(0)
}

async fn load(kind: &str, url: &str) {
    let sql = std::fs::read_to_string(data_dir().join("reference-schema/koa-mariadb.sql")).unwrap();
    let sql = if kind == "postgres" { postgres_fixture(&sql) } else { sql };
    // the statements one at a time (comments and blank lines dropped)
    let text: String = sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    for stmt in text.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        let r = match kind {
            "postgres" => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.to_string())).execute(&mut c).await.map(|_| ())
            }
            _ => {
                use sqlx::Connection;
                let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt.to_string())).execute(&mut c).await.map(|_| ())
            }
        };
        r.unwrap_or_else(|e| panic!("{kind} fixture statement failed: {e}\n{stmt}"));
    }
}

#[test]
fn koas_reference_database_is_adopted_in_place() {
    let rt = runtime();
    let _ = (pg_admin, maria_admin);
    for kind in ["mysql", "postgres"] {
        let url = rt.block_on(fresh(kind, "koa_dep_t_adopt"));
        rt.block_on(load(kind, &url));
        // a status the reference's callback wrote and koa-dep's CHECK would refuse
        rt.block_on(raw(kind, &url, "INSERT INTO koa_status (id, level, koaid, instrument, status, ofname) VALUES (110, 2, 'KB.20190509.07554.58', 'KCWI', 'WAITING', '/s/x.fits')"));
        let widths: Vec<usize> = TABLES.iter().map(|(t, _)| column_count(kind, &url, t)).collect();
        let before: Vec<Vec<String>> = TABLES.iter().zip(&widths).map(|((t, o), w)| dump(kind, &url, t, o, *w)).collect();
        assert_eq!(before[0].len(), 7, "{kind}: the fixture's koa_status rows");

        // refused until adopted, with the command to run
        let refused = rt.block_on(Db::connect(&url, 2)).map(|_| ()).unwrap_err().to_string();
        assert!(refused.contains("koa-dep db upgrade"), "{kind}: {refused}");
        let db = rt.block_on(Db::open(&url, 2)).unwrap();
        let report = rt.block_on(db.schema_report()).unwrap();
        assert_eq!(report.state, State::Reference, "{kind}");
        assert!(report.upgrade.iter().any(|s| s.contains("ADD COLUMN lease_owner")), "{kind}: {:?}", report.upgrade);
        assert!(report.rows.contains(&("koa_status".to_string(), 7)), "{kind}: {:?}", report.rows);
        let note = report.status_check.clone().unwrap_or_default();
        assert!(note.contains("1 koa_status rows have a status outside"), "{kind}: {note}");
        assert!(!report.upgrade.iter().any(|s| s.contains("CHECK")), "{kind}: no CHECK while a row violates it");
        let dry = rt.block_on(db.upgrade(true)).unwrap();
        assert_eq!(dry, report.upgrade, "{kind}: a dry run prints the statements");
        assert_eq!(rt.block_on(db.schema_state()).unwrap(), State::Reference, "{kind}: and changes nothing");

        // the upgrade: every original row and value is still there, byte for byte
        rt.block_on(db.upgrade(false)).unwrap();
        for (((t, o), w), rows) in TABLES.iter().zip(&widths).zip(&before) {
            assert!(&dump(kind, &url, t, o, *w) == rows, "{kind}: {t} changed by the upgrade");
        }
        assert!(matches!(rt.block_on(db.schema_state()).unwrap(), State::KoaDep { pending: 0, .. }), "{kind}");
        assert!(rt.block_on(db.schema_report()).unwrap().upgrade.is_empty(), "{kind}: nothing left to do");
        assert!(rt.block_on(db.upgrade(false)).unwrap().is_empty(), "{kind}: a second upgrade changes nothing");

        // old rows read (NULL levels and statuses, DATETIME utdatetime, the reference's widths)
        let db = rt.block_on(Db::connect(&url, 2)).unwrap();
        let old = rt.block_on(db.get(101)).unwrap().unwrap();
        assert_eq!((old.status.as_str(), old.utdatetime.as_deref()), ("COMPLETE", Some("2019-06-15 03:29:31")), "{kind}");
        assert!(rt.block_on(db.get(104)).unwrap().unwrap().koaid.is_none(), "{kind}");

        // new frames archive on it
        let s = Scratch::new();
        let mut cfg = s.with_services();
        cfg.database.url = url.clone();
        let a = archiver(&rt, cfg.clone());
        let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
        let p = s.path(&format!("sdata/{name}"));
        frame.write(&p).unwrap();
        let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!(r.status, Status::Complete, "{kind}: {:?}", r.diagnostics);
        let row = rt.block_on(a.db.get(r.id)).unwrap().unwrap();
        assert_eq!(row.utdatetime.as_deref(), Some("2024-03-15 08:21:14"), "{kind}: written into the reference's DATETIME");

        // the reference's PROCESSING leftover holding a file's KOAID: the same file takes it over
        let koaid = r.koaid.clone().unwrap();
        rt.block_on(leave_as_reference_did(kind, &url, r.id));
        let again = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!((again.status, again.koaid.as_deref()), (Status::Complete, Some(koaid.as_str())), "{kind}: {:?}", again.diagnostics);
        let left = rt.block_on(a.db.get(r.id)).unwrap().unwrap();
        assert_eq!((left.status.as_str(), left.status_code.as_deref()), ("INVALID", Some("DUPLICATE_FILE")), "{kind}");

        // an old row reprocessed by its id: history kept
        let rp = {
            let a = a.clone();
            let id = again.id;
            rt.block_on(async { tokio::task::spawn_blocking(move || a.run_job(id, &JobOptions { reprocess: true, ..Default::default() })).await }).unwrap()
        };
        assert_eq!((rp.status, rp.id), (Status::Complete, again.id), "{kind}: {:?}", rp.diagnostics);
        assert!(!rt.block_on(a.db.history(again.id)).unwrap().is_empty(), "{kind}");
        assert!(!rt.block_on(a.db.history(101)).unwrap().is_empty(), "{kind}: the reference's history reads");
        // an old archived row whose file is gone is not re-run: it stays as IPAC left it
        let old_row = rt.block_on(a.db.get(101)).unwrap().unwrap();
        let args = koa_dep::cli::ArchiveArgs { instrument: "NIRES".into(), dbid: Some(101), json: true, ..Default::default() };
        assert_eq!(rt.block_on(koa_dep::cli::archive(cfg.clone(), args)).unwrap(), 1, "{kind}: refused");
        assert_eq!(rt.block_on(a.db.get(101)).unwrap().unwrap(), old_row, "{kind}: row 101 untouched");

        // the reports read old and new rows alike
        let errors = rt.block_on(koa_dep::report::errors(&a.db, false, None)).unwrap();
        assert!(errors.groups.iter().any(|g| g.instrument == "HIRES" && g.status_code.as_deref() == Some("TRANSFER_ERROR")), "{kind}");
        assert!(errors.stuck.iter().any(|s| s.id == 105), "{kind}: the reference's PROCESSING row is stuck");
        let night = rt.block_on(koa_dep::report::night(&cfg, &a.db, a.services.clone(), chrono::NaiveDate::from_ymd_opt(2019, 6, 15).unwrap())).unwrap();
        assert_eq!(night.instruments.iter().map(|i| i.files).sum::<usize>(), 1, "{kind}: {}", night.text());

        // an upgrade while a daemon runs on the database: nothing to do, the daemon goes on
        let mut dcfg = cfg.clone();
        dcfg.daemon.journal_dir = Some(s.path("journal"));
        dcfg.daemon.accept_roots = vec![s.dir.path().display().to_string()];
        let incoming = s.path("incoming");
        dcfg.service = koa_dep::samples::demo::watch_services(&incoming, ["NIRES"]);
        let d = std::sync::Arc::new(koa_dep::daemon::Daemon::with_archiver(dcfg, a.clone()).unwrap());
        let (stop, task) = rt.block_on(async { spawn_daemon(d.clone()) });
        assert!(rt.block_on(db.upgrade(false)).unwrap().is_empty(), "{kind}");
        let (name2, frame2) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:31:14.52", 18), 2);
        std::fs::create_dir_all(incoming.join("nires")).unwrap();
        drop_frame(&frame2, &incoming.join("nires").join(&name2));
        let done = rt.block_on(wait_until(60, || async {
            a.db.latest_any_by_ofname(&incoming.join("nires").join(&name2).display().to_string()).await.ok().flatten().is_some_and(|r| r.status == "COMPLETE")
        }));
        assert!(done, "{kind}: the daemon archives after the upgrade");
        stop.send(()).unwrap();
        rt.block_on(task).unwrap().unwrap();
        // and the original rows are still as they were (new ones beside them)
        for (((t, o), w), rows) in TABLES.iter().zip(&widths).zip(&before) {
            let now = dump(kind, &url, t, o, *w);
            let changed = rows.iter().filter(|r| !now.contains(r)).count();
            assert_eq!(changed, 0, "{kind}: {changed} original rows of {t} changed or gone");
        }
        rt.block_on(a.db.close());
        rt.block_on(db.close());
    }
}

/// One statement of the test's own (no values from outside).
async fn raw(kind: &str, url: &str, sql: &'static str) {
    use sqlx::Connection;
    if kind == "postgres" {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

/// Make a row look like the reference's leftover: PROCESSING, no lease, no MD5.
async fn leave_as_reference_did(kind: &str, url: &str, id: i64) {
    use sqlx::Connection;
    if kind == "postgres" {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("UPDATE koa_status SET status = 'PROCESSING', lease_owner = NULL, md5 = NULL WHERE id = $1").bind(id).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::query("UPDATE koa_status SET status = 'PROCESSING', lease_owner = NULL, md5 = NULL WHERE id = ?").bind(id).execute(&mut c).await.unwrap();
    }
}
