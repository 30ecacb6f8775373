//! A file's whole life on SQLite: trigger → archived → rsync to a local
//! destination → DEP's ingest call reaches a stand-in IPAC the test starts →
//! the stand-in calls `/ingest_api` back with its token → the row is
//! COMPLETE with IPAC's ingest times and the PI notice arrives once at the
//! test's SMTP server; IPAC's ERROR for another file → ERROR with
//! `status_code_ipac` and one admin mail; callers without the token and
//! malformed calls → 4xx, nothing changed. Run by the e2e suite on SQLite
//! and by the databases suite on MariaDB.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use koa_dep::config::Config;
use koa_dep::samples::demo::{Obs, nires};
use serde_json::json;

use crate::{Scratch, drop_frame, repo_keyword_tables, runtime, smtp_server, spawn_daemon, wait_until};

/// What the stand-in IPAC does with DEP's ingest call.
#[derive(Clone, Default)]
pub struct Ipac {
    /// Calls from this one on (0-based) end ERROR at IPAC.
    pub fail_from: Arc<Mutex<usize>>,
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Where to call back, and with which token.
    pub back: Arc<Mutex<Option<(String, String)>>>,
}

async fn ipac_notified(State(ipac): State<Ipac>, Query(q): Query<Vec<(String, String)>>) -> axum::Json<serde_json::Value> {
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let (koaid, instrument, level) = (get("koaid"), get("instrument"), get("ingesttype"));
    let n = {
        let mut calls = ipac.calls.lock().unwrap();
        calls.push(koaid.clone());
        calls.len() - 1
    };
    let status = if n >= *ipac.fail_from.lock().unwrap() { "ERROR" } else { "COMPLETE" };
    let back = ipac.back.lock().unwrap().clone();
    // IPAC calls Keck back before it even answers DEP's call: the callback
    // finds the row TRANSFERRED while DEP's job is still finishing (the race
    // of reference defect 38), and IPAC's word must stand
    let Some((url, token)) = back else { return axum::Json(json!({"APIStatus": "COMPLETE"})) };
    let metrics = json!({"ingest_start_time": "2026-01-02 03:04:05", "ingest_copy_start_time": "2026-01-02 03:04:06",
                         "ingest_copy_end_time": "2026-01-02 03:04:07", "ingest_end_time": "2026-01-02 03:04:08"});
    let mut query = vec![
        ("instrument", instrument),
        ("ingesttype", level),
        ("koaid", format!("{koaid}.fits")),
        ("status", status.to_string()),
        ("metrics", metrics.to_string()),
    ];
    if status == "ERROR" {
        query.push(("ingest_error", "MD5_MISMATCH at IPAC".into()));
    }
    let r = reqwest::Client::new().get(format!("{url}/ingest_api")).query(&query).bearer_auth(token).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).ok(), Some(200), "the callback is accepted");
    axum::Json(json!({"APIStatus": "COMPLETE"}))
}

impl Ipac {
    pub async fn serve(&self) -> String {
        let app = axum::Router::new().route("/ingest", axum::routing::get(ipac_notified)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/ingest?")
    }
}

/// The UT date of today and its semester (`2026B`).
fn today() -> (chrono::NaiveDate, String) {
    use chrono::Datelike;
    let d = chrono::Utc::now().date_naive();
    let sem = match d.month() {
        1 => format!("{}B", d.year() - 1),
        2..=7 => format!("{}A", d.year()),
        _ => format!("{}B", d.year()),
    };
    (d, sem)
}

/// The services fixture, answering for tonight too: program C272 scheduled, its PI's address.
pub fn tonight_services(s: &Scratch, cfg: &mut Config) {
    let (d, sem) = today();
    let hst = (d - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let mut f = serde_json::to_value(koa_dep::samples::demo::services()).unwrap();
    let semid = format!("{sem}_C272");
    f["programs"][&semid] = f["programs"]["2024A_C272"].clone();
    f["night_staff"][&hst] = f["night_staff"]["2024-03-14"].clone();
    f["twilight"][d.format("%Y-%m-%d").to_string()] = f["twilight"]["2024-03-15"].clone();
    let mut entry = f["schedule"]["2024-03-14"][0].clone();
    entry["date"] = json!(hst);
    f["schedule"][&hst] = json!([entry]);
    f["pi_emails"] = json!({ semid: "pi@example.org" });
    let p = s.path("services-tonight.json");
    std::fs::write(&p, f.to_string()).unwrap();
    cfg.services.fixture = Some(p);
}

/// Wait for the row of `path` to reach `status`.
async fn row_reaches(d: &koa_dep::daemon::Daemon, path: &std::path::Path, status: &str) -> Option<koa_dep::db::StatusRow> {
    let p = path.display().to_string();
    for _ in 0..900 {
        if let Some(r) = d.db().latest_any_by_ofname(&p).await.ok().flatten().filter(|r| r.status == status) {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The whole loop on the database at `url` (None: the scratch SQLite).
pub fn whole_life(url: Option<String>) {
    let rt = runtime();
    let s = Scratch::new();
    let mut cfg = s.with_services();
    if let Some(url) = url {
        cfg.database.url = url;
    }
    cfg.daemon.journal_dir = Some(s.path("journal"));
    cfg.daemon.poll_s = 0.05;
    cfg.daemon.accept_roots = vec![s.dir.path().display().to_string()];
    let incoming = s.path("incoming");
    cfg.service = koa_dep::samples::demo::watch_services(&incoming, ["NIRES"]);
    tonight_services(&s, &mut cfg);
    cfg.archive.keyword_tables = Some(repo_keyword_tables());
    cfg.service[0].transfer = true;
    cfg.transfer.destination = Some(s.path("ipac").display().to_string());
    cfg.daemon.http_listen = Some("127.0.0.1:0".into());
    cfg.daemon.ingest_tokens = [("ipac".to_string(), "s3cret-ipac-token".to_string())].into_iter().collect();
    cfg.notify.to = vec!["koaadmin@example.org".into()];
    cfg.notify.pi_mail = true;
    rt.block_on(async {
        let ipac = Ipac::default();
        *ipac.fail_from.lock().unwrap() = 1;
        cfg.transfer.ingest_api = Some(ipac.serve().await);
        let (tx, mut mails) = tokio::sync::mpsc::unbounded_channel();
        cfg.notify.smtp_host = Some("127.0.0.1".into());
        cfg.notify.smtp_port = smtp_server(tx).await;
        let d = Arc::new(koa_dep::daemon::Daemon::new(cfg.clone()).await.expect("daemon"));
        let (stop, task) = spawn_daemon(d.clone());
        assert!(wait_until(10, || async { d.http_addr().is_some() }).await);
        let url = format!("http://{}", d.http_addr().unwrap());
        *ipac.back.lock().unwrap() = Some((url.clone(), "s3cret-ipac-token".into()));

        // one file IPAC ingests
        let (date, _) = today();
        let dir = incoming.join("nires");
        std::fs::create_dir_all(&dir).unwrap();
        let (name, f) = nires("spec", "object", "C272", &Obs::new(&date.format("%Y-%m-%d").to_string(), "08:21:14.52", 17), 1);
        let good = dir.join(&name);
        drop_frame(&f, &good);
        let row = row_reaches(&d, &good, "COMPLETE").await.expect("COMPLETE through IPAC's callback");
        let koaid = row.koaid.clone().unwrap();
        let times = d.db().ingest_times(row.id).await.unwrap().unwrap();
        assert_eq!(times.3.map(|t| t.to_string()).as_deref(), Some("2026-01-02 03:04:08"), "IPAC's times");
        assert_eq!(times.0.map(|t| t.to_string()).as_deref(), Some("2026-01-02 03:04:05"));
        assert!(row.ipac_response_time.is_some() && row.status_code_ipac.as_deref() == Some(""), "{row:?}");
        let pi = tokio::time::timeout(Duration::from_secs(30), mails.recv()).await.expect("the PI notice").unwrap();
        assert!(pi.contains("To: pi@example.org") && pi.contains("The archiving and future release of your NIRES data"), "{pi}");
        assert_eq!(ipac.calls.lock().unwrap().clone(), vec![koaid.clone()], "DEP called IPAC once");

        // the same callback again: harmless, no second notice
        let replay = [
            ("instrument", "NIRES".to_string()),
            ("ingesttype", "lev0".into()),
            ("koaid", format!("{koaid}.fits")),
            ("status", "COMPLETE".into()),
            ("metrics", json!({"ingest_start_time": "2026-01-02 03:04:05", "ingest_end_time": "2026-01-02 03:04:08"}).to_string()),
        ];
        let client = reqwest::Client::new();
        let r = client.get(format!("{url}/ingest_api")).query(&replay).bearer_auth("s3cret-ipac-token").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["result"], "already recorded: nothing changed");

        // unauthenticated, wrong token, HEAD, malformed: 4xx, the row untouched
        let before = d.db().get(row.id).await.unwrap().unwrap();
        let mut refused = Vec::new();
        let err_call = [("instrument", "NIRES".to_string()), ("ingesttype", "lev0".into()), ("koaid", format!("{koaid}.fits")), ("status", "ERROR".into()), ("ingest_error", "forged".into()), ("metrics", replay[4].1.clone()), ("reingest", "true".into())];
        refused.push(client.get(format!("{url}/ingest_api")).query(&err_call).send().await.unwrap().status().as_u16());
        refused.push(client.get(format!("{url}/ingest_api")).query(&err_call).bearer_auth("guess").send().await.unwrap().status().as_u16());
        refused.push(client.head(format!("{url}/ingest_api")).query(&err_call).bearer_auth("s3cret-ipac-token").send().await.unwrap().status().as_u16());
        let bad = [("instrument", "NIRES".to_string()), ("ingesttype", "lev0".into()), ("koaid", "HI.20240115.99999.00.fits".into())];
        let r = client.get(format!("{url}/ingest_api")).query(&bad).bearer_auth("s3cret-ipac-token").send().await.unwrap();
        refused.push(r.status().as_u16());
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["apiStatus"], "ERROR");
        assert!(body["ingestErrors"].to_string().contains("KOAID seconds exceed day"), "{body}");
        let unknown = [("instrument", "NIRES".to_string()), ("ingesttype", "lev0".into()), ("koaid", "NR.20240101.00001.00.fits".into()), ("status", "COMPLETE".into()), ("metrics", replay[4].1.clone())];
        refused.push(client.get(format!("{url}/ingest_api")).query(&unknown).bearer_auth("s3cret-ipac-token").send().await.unwrap().status().as_u16());
        let other = [("instrument", "KCWI".to_string()), ("ingesttype", "lev0".into()), ("koaid", format!("{koaid}.fits")), ("status", "COMPLETE".into()), ("metrics", replay[4].1.clone())];
        refused.push(client.get(format!("{url}/ingest_api")).query(&other).bearer_auth("s3cret-ipac-token").send().await.unwrap().status().as_u16());
        let long = [("ingest_error", "x".repeat(9000))];
        refused.push(client.get(format!("{url}/ingest_api")).query(&long).bearer_auth("s3cret-ipac-token").send().await.unwrap().status().as_u16());
        assert_eq!(refused, vec![401, 401, 405, 400, 404, 400, 414], "each refused with its own code");
        assert_eq!(d.db().get(row.id).await.unwrap().unwrap(), before, "nothing changed");
        // the refusals reached the administrators through the one error path (throttled per code)
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut subjects = Vec::new();
        while let Ok(m) = mails.try_recv() {
            subjects.extend(m.lines().filter(|l| l.starts_with("Subject:")).map(str::to_string));
        }
        assert!(subjects.iter().any(|s| s.contains("API_STATUS_ERROR")), "{subjects:?}");
        assert!(subjects.iter().all(|s| s.contains("API_STATUS_ERROR") || s.contains("DATABASE_ERROR")), "{subjects:?}");

        // IPAC reports an error for another file: ERROR with IPAC's code, one admin mail
        let (name2, f2) = nires("spec", "object", "C272", &Obs::new(&date.format("%Y-%m-%d").to_string(), "08:31:14.52", 18), 2);
        let bad_file = dir.join(&name2);
        drop_frame(&f2, &bad_file);
        let row2 = row_reaches(&d, &bad_file, "ERROR").await.expect("ERROR through IPAC's callback");
        assert_eq!(row2.status_code_ipac.as_deref(), Some("MD5_MISMATCH at IPAC"), "{row2:?}");
        let admin = tokio::time::timeout(Duration::from_secs(30), mails.recv()).await.expect("the admin mail").unwrap();
        assert!(admin.contains("[NIRES] IPAC_STATUS_ERROR") && admin.contains("To: koaadmin@example.org"), "{admin}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(mails.try_recv().is_err(), "one notice and one admin mail, nothing more");
        // the metrics say how long IPAC took
        let m = client.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(m.contains("koa_dep_ingest_latency_seconds_count{instrument=\"NIRES\"} 2"), "{}", m.lines().filter(|l| l.contains("ingest")).collect::<Vec<_>>().join("\n"));
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}
