//! The job store on live PostgreSQL and MariaDB servers (and SQLite): the same
//! code path, migrations, status CHECK, unique KOAIDs, history, headers JSON,
//! and a full pipeline run. Servers come from KOA_DEP_TEST_POSTGRES /
//! KOA_DEP_TEST_MARIADB (admin URLs), defaulting to this machine's
//! 127.0.0.1:5432 (trust) and 127.0.0.1:3306 (root). Fails when unreachable.

use koa_dep::db::{Db, NewJob, Outcome, Selection, Status};
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires};
use koa_dep_tests::*;

#[path = "databases/adopt.rs"]
mod adopt;
#[path = "databases/faults.rs"]
mod faults;
#[path = "databases/queue.rs"]
mod queue;
use sqlx::Connection;

fn pg_admin() -> String {
    std::env::var("KOA_DEP_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn maria_admin() -> String {
    std::env::var("KOA_DEP_TEST_MARIADB").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into())
}

/// A fresh, empty database for one test (dropped and re-created).
/// The names are fixed per test; no SQL carries a value.
async fn fresh(kind: &str, name: &'static str) -> String {
    match kind {
        "postgres" => {
            let admin = pg_admin();
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
            let (drop, create) = match name {
                "koa_dep_t_store" => ("DROP DATABASE IF EXISTS koa_dep_t_store WITH (FORCE)", "CREATE DATABASE koa_dep_t_store"),
                "koa_dep_t_pipeline" => ("DROP DATABASE IF EXISTS koa_dep_t_pipeline WITH (FORCE)", "CREATE DATABASE koa_dep_t_pipeline"),
                "koa_dep_t_queue" => ("DROP DATABASE IF EXISTS koa_dep_t_queue WITH (FORCE)", "CREATE DATABASE koa_dep_t_queue"),
                "koa_dep_t_scale" => ("DROP DATABASE IF EXISTS koa_dep_t_scale WITH (FORCE)", "CREATE DATABASE koa_dep_t_scale"),
                "koa_dep_t_history" => ("DROP DATABASE IF EXISTS koa_dep_t_history WITH (FORCE)", "CREATE DATABASE koa_dep_t_history"),
                "koa_dep_t_adopt" => ("DROP DATABASE IF EXISTS koa_dep_t_adopt WITH (FORCE)", "CREATE DATABASE koa_dep_t_adopt"),
                "koa_dep_t_faults" => ("DROP DATABASE IF EXISTS koa_dep_t_faults WITH (FORCE)", "CREATE DATABASE koa_dep_t_faults"),
                _ => unreachable!(),
            };
            sqlx::raw_sql(drop).execute(&mut c).await.unwrap();
            sqlx::raw_sql(create).execute(&mut c).await.unwrap();
            let base = admin.rsplit_once('/').unwrap().0;
            format!("{base}/{name}")
        }
        "mysql" => {
            let admin = maria_admin();
            let mut c = sqlx::MySqlConnection::connect(&admin).await.unwrap_or_else(|e| panic!("MariaDB at {admin}: {e}"));
            let (drop, create) = match name {
                "koa_dep_t_store" => ("DROP DATABASE IF EXISTS koa_dep_t_store", "CREATE DATABASE koa_dep_t_store CHARACTER SET utf8mb4"),
                "koa_dep_t_pipeline" => ("DROP DATABASE IF EXISTS koa_dep_t_pipeline", "CREATE DATABASE koa_dep_t_pipeline CHARACTER SET utf8mb4"),
                "koa_dep_t_queue" => ("DROP DATABASE IF EXISTS koa_dep_t_queue", "CREATE DATABASE koa_dep_t_queue CHARACTER SET utf8mb4"),
                "koa_dep_t_adopt" => ("DROP DATABASE IF EXISTS koa_dep_t_adopt", "CREATE DATABASE koa_dep_t_adopt CHARACTER SET utf8mb4"),
                "koa_dep_t_ingest" => ("DROP DATABASE IF EXISTS koa_dep_t_ingest", "CREATE DATABASE koa_dep_t_ingest CHARACTER SET utf8mb4"),
                _ => unreachable!(),
            };
            sqlx::raw_sql(drop).execute(&mut c).await.unwrap();
            sqlx::raw_sql(create).execute(&mut c).await.unwrap();
            let base = admin.rsplit_once('/').unwrap().0;
            format!("{base}/{name}")
        }
        _ => unreachable!(),
    }
}

async fn store_semantics(db: &Db) {
    let job = |ofname: &'static str| NewJob {
        level: 0,
        instrument: "NIRES",
        service: Some("nsds"),
        ofname,
        status: Status::Queued,
        reprocess: false,
        transfer: true,
        stage_file: None,
        koaid: None,
    };
    let a = db.insert_job(&job("/s/a.fits")).await.unwrap();
    let b = db.insert_job(&job("/s/b.fits")).await.unwrap();
    assert!(b > a);
    db.start_processing(a, Some(("t-1", std::time::Duration::from_secs(60)))).await.unwrap();
    let row = db.get(a).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts, row.transfer), ("PROCESSING", 1, 1));
    // identity and the unique KOAID
    db.set_identity(a, "NR.20240315.30074.52", "2024-03-15 08:21:14", Some("0123456789abcdef0123456789abcdef")).await.unwrap();
    let clash = db.set_identity(b, "NR.20240315.30074.52", "2024-03-15 08:21:14", Some("ffff")).await.unwrap_err();
    assert!(clash.is_unique_violation(), "{clash}");
    assert_eq!(db.by_koaid(0, "NR.20240315.30074.52").await.unwrap().unwrap().id, a);
    assert_eq!(db.by_md5(0, "0123456789abcdef0123456789abcdef").await.unwrap().len(), 1);
    assert_eq!(db.koaids_like(0, "NR.20240315.30074.").await.unwrap(), vec!["NR.20240315.30074.52".to_string()]);
    assert!(db.koaids_like(0, "NR_20240315%").await.unwrap().is_empty(), "LIKE wildcards in the prefix are literal");
    // the status CHECK
    let bad = sqlx_check(db).await;
    assert!(bad, "a status outside the enum is rejected");
    // finish, history, reset
    db.finish(a, &Outcome { status: Some(Status::Complete), status_code: Some("MD_TRUNCATE".into()), propint: Some(12), semid: Some("2024A_C272".into()), filesize_mb: Some(8.4), ..Default::default() }).await.unwrap();
    let row = db.get(a).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.status_code.as_deref(), row.propint), ("COMPLETE", Some("MD_TRUNCATE"), Some(12)));
    assert!(row.process_end_time.is_some());
    db.archive_and_reset(a).await.unwrap();
    let hist = db.history(a).await.unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].status_code.as_deref(), Some("MD_TRUNCATE"));
    let row = db.get(a).await.unwrap().unwrap();
    assert_eq!((row.status_code, row.semid, row.koaid.as_deref(), row.reprocess), (None, None, Some("NR.20240315.30074.52"), 1));
    // headers JSON round trip and upsert
    let h = serde_json::json!({"KOAID": {"value": "NR.20240315.30074.52.fits", "comment": "KOA: Data file name"}});
    db.upsert_header("NR.20240315.30074.52", &h).await.unwrap();
    let h2 = serde_json::json!({"KOAID": {"value": "x", "comment": ""}, "HISTORY": {"value": ["a", "b"], "comment": ""}});
    db.upsert_header("NR.20240315.30074.52", &h2).await.unwrap();
    assert_eq!(db.header("NR.20240315.30074.52").await.unwrap().unwrap(), h2);
    // selection with bound filters (an injection attempt is just a string)
    let sel = |ofname: &str| Selection { level: 0, instrument: Some("NIRES".into()), ofname_like: Some(format!("%{ofname}%")), ..Default::default() };
    assert_eq!(db.select(&sel("b.fits")).await.unwrap().len(), 1);
    assert!(db.select(&sel("' OR '1'='1")).await.unwrap().is_empty());
    assert_eq!(db.latest_by_ofname(0, "NIRES", "/s/b.fits").await.unwrap().unwrap().id, b);
}

/// The reports' queries and the PI-notification table (dates, grouping,
/// acknowledgement) behave the same on every database.
async fn report_semantics(db: &Db) {
    let id = db.insert_job(&NewJob { level: 0, instrument: "KPF", service: None, ofname: "/r/k.fits", status: Status::Processing, reprocess: false, transfer: false, stage_file: None, koaid: None }).await.unwrap();
    db.set_identity(id, "KP.20240316.00001.00", "2024-03-16 00:00:01", None).await.unwrap();
    let out = Outcome {
        status: Some(Status::Error),
        status_code: Some("INGEST_ERROR".into()),
        exptime: Some(12.5),
        timings: Some(r#"{"dqa":0.25}"#.into()),
        koaimtyp: Some("object".into()),
        ..Default::default()
    };
    db.finish(id, &out).await.unwrap();
    let groups = db.code_groups(false, Some("KPF")).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].count, groups[0].newest_id, groups[0].status_code.as_deref()), (1, id, Some("INGEST_ERROR")));
    let night = db.night_rows(chrono::NaiveDate::from_ymd_opt(2024, 3, 16).unwrap()).await.unwrap();
    assert_eq!(night.len(), 1);
    assert_eq!((night[0].exptime, night[0].timings.as_deref()), (Some(12.5), Some(r#"{"dqa":0.25}"#)));
    assert_eq!(db.acknowledge_code("INGEST_ERROR", Some("KPF")).await.unwrap(), 1);
    assert!(db.code_groups(false, Some("KPF")).await.unwrap().is_empty());
    assert_eq!(db.code_groups(true, Some("KPF")).await.unwrap().len(), 1);
    assert_eq!(db.acknowledge(&[id]).await.unwrap(), 0, "already acknowledged");
    db.archive_and_reset(id).await.unwrap();
    assert_eq!(db.history(id).await.unwrap().last().unwrap().exptime, Some(12.5), "history keeps the exposure time");
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert!(db.newest_koapi("2024A_K001", "KPF").await.unwrap().is_none());
    db.insert_koapi("2024A_K001", "KPF", d("2024-03-15")).await.unwrap();
    db.insert_koapi("2024A_K001", "KPF", d("2024-03-20")).await.unwrap();
    let newest = db.newest_koapi("2024A_K001", "KPF").await.unwrap().unwrap();
    assert_eq!(newest.utdate_beg, d("2024-03-20"));
    db.extend_koapi(newest.id, d("2024-03-21")).await.unwrap();
    let rows = db.koapi_rows(false).await.unwrap();
    assert_eq!(rows.iter().map(|r| (r.utdate_beg, r.utdate_end)).collect::<Vec<_>>(), [(d("2024-03-15"), d("2024-03-15")), (d("2024-03-20"), d("2024-03-21"))]);
}

/// Writing a status outside the enum fails.
async fn sqlx_check(db: &Db) -> bool {
    let id = db.insert_job(&NewJob { level: 0, instrument: "NIRES", service: None, ofname: "/x", status: Status::Queued, reprocess: false, transfer: false, stage_file: None, koaid: None }).await.unwrap();
    db.set_status_text_for_test(id, "DONE").await.is_err()
}

#[test]
fn store_on_sqlite_postgres_and_mariadb() {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Db::connect(&format!("sqlite://{}", dir.path().join("s.db").display()), 2).await.unwrap();
        store_semantics(&sqlite).await;
        report_semantics(&sqlite).await;
        for kind in ["postgres", "mysql"] {
            let url = fresh(kind, "koa_dep_t_store").await;
            let db = Db::connect(&url, 4).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
            store_semantics(&db).await;
            report_semantics(&db).await;
            // migrations are idempotent
            Db::connect(&url, 1).await.unwrap();
            db.close().await;
        }
    });
}

#[test]
fn the_pipeline_on_postgres_and_mariadb() {
    let rt = runtime();
    for kind in ["postgres", "mysql"] {
        let url = rt.block_on(fresh(kind, "koa_dep_t_pipeline"));
        let s = Scratch::new();
        let mut cfg = s.with_services();
        cfg.database.url = url;
        let a = archiver(&rt, cfg);
        let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 17), 1);
        let p = s.path(&format!("sdata/{name}"));
        frame.write(&p).unwrap();
        let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!(r.status, Status::Complete, "{kind}: {:?}", r.diagnostics);
        let again = archive(&rt, &a, "NIRES", &p, JobOptions::default());
        assert_eq!(again.status_code.as_deref(), Some("DUPLICATE_FILE"), "{kind}");
        let r2 = archive(&rt, &a, "NIRES", &p, JobOptions { reprocess: true, ..Default::default() });
        assert_eq!((r2.status, r2.id), (Status::Complete, r.id), "{kind}: {:?}", r2.diagnostics);
        let h = rt.block_on(a.db.header(r.koaid.as_deref().unwrap())).unwrap().unwrap();
        assert_eq!(h["INSTRUME"]["value"], "NIRES", "{kind}");
        rt.block_on(a.db.close());
    }
}

#[test]
fn a_files_whole_life_with_ipacs_callback_on_mariadb() {
    let url = runtime().block_on(fresh("mysql", "koa_dep_t_ingest"));
    koa_dep_tests::ingest_loop::whole_life(Some(url));
}
