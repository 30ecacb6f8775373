//! The daemon's status server over real HTTP: the page (read-only without
//! the token; the token exchanged for an HttpOnly cookie, then acknowledge
//! buttons), sign-in/out, preview thumbnails, the token-protected
//! acknowledgement, `/metrics` and `/healthz`; and the
//! silent-instrument alert (mailed through a local SMTP server).

use std::time::Duration;

use koa_dep::db::{Outcome, Status};
use koa_dep_tests::*;

use crate::daemon::{count, small_nires, smtp_server, start, watched};

#[test]
fn status_page_metrics_health_and_acknowledgement() {
    let rt = runtime();
    let s = Scratch::new();
    let (mut cfg, incoming) = watched(&s, &["NIRES"]);
    cfg.daemon.http_listen = Some("127.0.0.1:0".into());
    cfg.daemon.http_token = Some("s3cret-token".into());
    cfg.archive.keyword_tables = Some(repo_keyword_tables());
    let dir = incoming.join("nires");
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let (d, stop, task) = start(cfg).await;
        assert!(wait_until(20, || async { d.http_addr().is_some() }).await, "status page listening");
        let base_url = format!("http://{}", d.http_addr().unwrap());
        for n in 0..3 {
            let (name, f) = small_nires(n);
            drop_frame(&f, &dir.join(name));
        }
        assert!(wait_until(120, || async { count(&d, Status::Complete).await == 3 }).await, "3 frames archived");
        let rows = d.db().by_status(Status::Complete).await.unwrap();
        let failed = rows[0].id;
        d.db().finish(failed, &Outcome { status: Some(Status::Error), status_code: Some("TRANSFER_ERROR".into()), ..Default::default() }).await.unwrap();

        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{base_url}{path}");
            async move { http.get(url).send().await.unwrap() }
        };
        // health
        let h = get("/healthz".into()).await;
        assert_eq!(h.status(), 200);
        let body: serde_json::Value = serde_json::from_str(&h.text().await.unwrap()).unwrap();
        assert_eq!(body["status"], "ok");
        // the page, read-only
        let page = get("/".into()).await.text().await.unwrap();
        assert!(page.contains("read-only"), "{page}");
        assert!(page.contains("<td>NIRES</td>"), "instruments table: {page}");
        assert!(page.contains("TRANSFER_ERROR"), "errors table");
        assert!(!page.contains("Acknowledge</button>"), "no buttons without the token");
        assert_eq!(page.matches("<tr class=file>").count(), 3);
        for r in &rows {
            assert!(page.contains(&format!("<img src=/preview/{}", r.id)), "thumbnail of {}", r.id);
        }
        // a wrong token is read-only too; the right one is exchanged for the
        // operator cookie and leaves the URL
        assert!(!get("/?token=guess".into()).await.text().await.unwrap().contains("Acknowledge</button>"));
        assert!(page.contains("action=/login"), "the sign-in form");
        assert!(page.contains("location.reload") && !page.contains("http-equiv=refresh"), "the reload spares a half-typed token");
        let bookmarked = get("/?token=s3cret-token".into()).await;
        assert_eq!((bookmarked.status().as_u16(), bookmarked.headers()["location"].to_str().unwrap()), (303, "/"));
        let cookie = bookmarked.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.starts_with("koa_dep_token=s3cret-token;") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        let signed_in = |path: &str| http.get(format!("{base_url}{path}")).header("cookie", "koa_dep_token=s3cret-token").send();
        let operator = signed_in("/").await.unwrap().text().await.unwrap();
        assert!(operator.contains("Acknowledge</button>") && operator.contains("acknowledge enabled"));
        assert!(!operator.contains("s3cret-token"), "the token is not in the page");
        // the sign-in form: a wrong token is refused, the right one sets the cookie
        let wrong = http.post(format!("{base_url}/login")).form(&[("token", "guess")]).send().await.unwrap();
        assert_eq!(wrong.status(), 403);
        let right = http.post(format!("{base_url}/login")).form(&[("token", "s3cret-token")]).send().await.unwrap();
        assert_eq!(right.status(), 303);
        assert!(right.headers()["set-cookie"].to_str().unwrap().starts_with("koa_dep_token=s3cret-token;"));
        let out = http.post(format!("{base_url}/logout")).send().await.unwrap();
        assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"), "sign out clears the cookie");
        // thumbnails
        let img = get(format!("/preview/{}", rows[1].id)).await;
        assert_eq!(img.status(), 200);
        assert_eq!(img.headers()["content-type"], "image/jpeg");
        assert_eq!(&img.bytes().await.unwrap()[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(get("/preview/99999".into()).await.status(), 404);
        // acknowledging needs the token
        let form = |token: &str| vec![("token", token.to_string()), ("code", "TRANSFER_ERROR".to_string()), ("instrument", "NIRES".to_string())];
        let denied = http.post(format!("{base_url}/ack")).form(&form("guess")).send().await.unwrap();
        assert_eq!(denied.status(), 403);
        let outstanding = || async { d.db().code_groups(false, None).await.unwrap().iter().any(|g| g.status_code.as_deref() == Some("TRANSFER_ERROR")) };
        assert!(outstanding().await, "nothing acknowledged");
        let denied = http.post(format!("{base_url}/ack")).header("cookie", "koa_dep_token=guess").form(&form("")[1..]).send().await.unwrap();
        assert_eq!(denied.status(), 403, "a wrong cookie");
        assert!(outstanding().await, "nothing acknowledged");
        // the page's button: the cookie, no token field
        let done = http.post(format!("{base_url}/ack")).header("cookie", "koa_dep_token=s3cret-token").form(&form("")[1..]).send().await.unwrap();
        assert_eq!(done.status(), 303);
        assert_eq!(done.headers()["location"], "/");
        assert!(!outstanding().await, "acknowledged");
        assert!(!get("/".into()).await.text().await.unwrap().contains("<td class=code>TRANSFER_ERROR</td>"));
        // metrics
        let m = get("/metrics".into()).await;
        assert!(m.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let m = m.text().await.unwrap();
        for want in [
            r#"koa_dep_files{level="0",instrument="NIRES",status="COMPLETE",code=""} 2"#,
            r#"koa_dep_files{level="0",instrument="NIRES",status="ERROR",code="TRANSFER_ERROR"} 1"#,
            r#"koa_dep_queue_depth{level="0"} 0"#,
            r#"koa_dep_step_seconds_bucket{instrument="NIRES",step="load",le="+Inf"} 3"#,
            r#"koa_dep_job_seconds_count{instrument="NIRES"} 3"#,
            r#"koa_dep_jobs_finished_total{instrument="NIRES",status="COMPLETE",code=""} 3"#,
            "koa_dep_daemon_queued_total 3",
            "koa_dep_daemon_accepted_total 3",
            "koa_dep_database_up 1",
            "# TYPE koa_dep_step_seconds histogram",
        ] {
            assert!(m.contains(want), "{want} missing from\n{m}");
        }
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}

#[test]
fn a_silent_scheduled_instrument_is_reported_and_clears_with_a_file() {
    let rt = runtime();
    let s = Scratch::new();
    let (mut cfg, incoming) = watched(&s, &["NIRES"]);
    // no schedule service: an unknown schedule counts as scheduled (the
    // telescope is configured, so the run needs no service)
    cfg.services.fixture = None;
    cfg.instruments.entry("NIRES".into()).or_default().telescope = Some(2);
    cfg.service[0].silent_minutes = Some(0.02);
    cfg.daemon.check_s = 0.2;
    let dir = incoming.join("nires");
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let port = smtp_server(tx).await;
        cfg.notify.smtp_host = Some("127.0.0.1".into());
        cfg.notify.smtp_port = port;
        cfg.notify.to = vec!["koaadmin@example.org".into()];
        let (d, stop, task) = start(cfg).await;
        assert!(!d.services_view()[0].silent, "not silent at start");
        assert!(wait_until(20, || async { d.services_view()[0].silent }).await, "silent after 1.2 s without a file");
        let mail = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a mail").unwrap();
        assert!(mail.contains("[NIRES] SILENT_INSTRUMENT"), "{mail}");
        let (name, f) = small_nires(1);
        drop_frame(&f, &dir.join(name));
        assert!(wait_until(60, || async { count(&d, Status::Complete).await == 1 }).await);
        assert!(wait_until(5, || async { !d.services_view()[0].silent }).await, "a new file clears it");
        assert!(d.services_view()[0].last_file_age_s.is_some());
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}

#[test]
fn files_waiting_for_ipac_are_listed() {
    let rt = runtime();
    let s = Scratch::new();
    let (mut cfg, _incoming) = watched(&s, &["NIRES"]);
    cfg.daemon.http_listen = Some("127.0.0.1:0".into());
    cfg.daemon.ipac_wait_min = 0.0;
    rt.block_on(async {
        let (d, stop, task) = start(cfg).await;
        assert!(wait_until(10, || async { d.http_addr().is_some() }).await);
        // a row transferred and never answered by IPAC
        let id = d
            .db()
            .insert_job(&koa_dep::db::NewJob {
                level: 0,
                instrument: "NIRES",
                service: None,
                ofname: "/s/sdata1500/nires9/x.fits",
                status: koa_dep::db::Status::Processing,
                reprocess: false,
                transfer: true,
                stage_file: None,
                koaid: Some("NR.20240315.30000.10"),
            })
            .await
            .unwrap();
        assert!(d.db().transfer_started(id).await.unwrap());
        d.db().transfer_done(id, "/dest").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let page = reqwest::get(format!("http://{}/", d.http_addr().unwrap())).await.unwrap().text().await.unwrap();
        let waiting = page.split("id=ipac-waiting>").nth(1).map(|t| t.split("</p>").next().unwrap_or("")).unwrap_or("");
        assert!(waiting.contains("1 files transferred") && waiting.contains("NR.20240315.30000.10"), "{waiting:?}");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    });
}
