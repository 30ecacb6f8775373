//! The Keck API and EPICS-archiver client against a real HTTP server this
//! test starts on a local port (axum), answering the reference's shapes.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use koa_dep::db::Status;
use koa_dep::pipeline::JobOptions;
use koa_dep::samples::demo::{Obs, nires};
use koa_dep::sandbox::bindings::types::ServiceError;
use koa_dep::services::Services;
use koa_dep::services::http::KeckApi;
use koa_dep_tests::*;
use serde_json::{Value, json};

type Q = Query<HashMap<String, String>>;

/// getPI requests served (to check one lookup per SEMID).
static PI_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn proposal(q: &Q, field: &str, value: Value) -> (StatusCode, Json<Value>) {
    match q.get("ktn").map(String::as_str) {
        Some("2024A_C272") => (StatusCode::OK, Json(json!({"success": 1, "data": {field: value}}))),
        Some("2024A_E999") => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))),
        _ => (StatusCode::OK, Json(json!({"success": 0, "data": null}))),
    }
}

/// Start the fake Keck services; returns the base URL.
fn serve(rt: &tokio::runtime::Runtime) -> String {
    serve_with_delay(rt, Duration::ZERO)
}

/// The fake services, each answer delayed by `delay` (a slow network).
fn serve_with_delay(rt: &tokio::runtime::Runtime, delay: Duration) -> String {
    let app = axum::Router::new()
        .route("/api/schedule/getTelnr", get(|q: Q| async move { Json(json!([{"TelNr": if q.get("instr").map(String::as_str) == Some("NIRES") { "2" } else { "1" }}])) }))
        .route("/api/proposals/getPI", get(|q: Q| async move {
            PI_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            proposal(&q, "LastName", json!("de Kleer"))
        }))
        .route("/api/proposals/getAllocInst", get(|q: Q| async move { proposal(&q, "AllocInst", json!("CIT")) }))
        .route("/api/proposals/getTitle", get(|q: Q| async move { proposal(&q, "ProgramTitle", json!("Origin of the Irregular Satellites")) }))
        .route("/api/proposals/getApprovedPP", get(|q: Q| async move { proposal(&q, "ProprietaryPeriod", json!("12")) }))
        .route("/api/employee/getNightStaff", get(|_q: Q| async move {
            Json(json!([{"Type": "oa", "Alias": "early"}, {"Type": "sa", "Alias": "sa1"}, {"Type": "oar", "Alias": "jpelletier"}]))
        }))
        .route("/api/schedule/getTwilightData", get(|_q: Q| async move { Json(json!({"sunrise": "16:20:00", "sunset": "04:45:00"})) }))
        .route("/api/schedule/getSchedule", get(|_q: Q| async move {
            Json(json!({"Date": "2024-03-14", "TelNr": 2, "Instrument": "NIRES", "ProjCode": "C272", "StartTime": "18:45", "EndTime": "06:00", "ObsType": "Classical"}))
        }))
        .route("/retrieval/data/getData.json", get(|q: Q| async move {
            let pv = q.get("pv").cloned().unwrap_or_default();
            if pv.contains("pressure") {
                return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})));
            }
            // frame at 2024-03-15T08:21:14.52Z = 1710490874.52
            (StatusCode::OK, Json(json!([{"meta": {"name": pv}, "data": [
                {"secs": 1710490850, "nanos": 0, "val": 1.0},
                {"secs": 1710490875, "nanos": 70000000, "val": 2.5},
                {"secs": 1710490899, "nanos": 0, "val": 3.0}
            ]}])))
        }))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[test]
fn client_reads_every_shape_and_reports_failures() {
    let rt = runtime();
    let base = serve(&rt);
    let api = KeckApi::new(Some(format!("{base}/api")), Some(format!("{base}/retrieval/data/getData.json")), Duration::from_secs(5), rt.handle().clone()).unwrap();
    let api = std::sync::Arc::new(api);
    let call = |f: Box<dyn FnOnce(&KeckApi) -> String + Send>| {
        let api = api.clone();
        rt.block_on(rt.spawn_blocking(move || f(&api))).unwrap()
    };
    let p = call(Box::new(|a| format!("{:?}", a.program_info("2024A_C272").unwrap())));
    assert!(p.contains("de Kleer") && p.contains("CIT") && p.contains("Irregular") && p.contains("propint: Some(12)"), "{p}");
    let p = call(Box::new(|a| format!("{:?}", a.program_info("2024A_X000").unwrap())));
    assert!(p.contains("pi: None") && p.contains("getPI?ktn=2024A_X000"), "{p}");
    let p = call(Box::new(|a| format!("{:?}", a.program_info("2024A_E999").unwrap())));
    assert!(p.contains("HTTP 500"), "{p}");
    assert_eq!(call(Box::new(|a| a.telescope_number("NIRES").unwrap().to_string())), "2");
    let s = call(Box::new(|a| format!("{:?}", a.schedule("2024-03-14", Some(2), "NIRES").unwrap())));
    assert!(s.contains("C272") && s.contains("18:45"), "single object read as a list: {s}");
    let s = call(Box::new(|a| format!("{:?}", a.night_staff("2024-03-14", 2).unwrap())));
    assert!(s.contains("jpelletier"), "{s}");
    let w = call(Box::new(|a| format!("{:?}", a.weather(2, "2024-03-15T08:20:44Z", "2024-03-15T08:21:44Z").unwrap())));
    assert!(w.contains("WXPRESS") && w.contains("HTTP 503") && w.contains("val: 2.5"), "{w}");
    // a dead server is a failure, not a panic
    let dead = KeckApi::new(Some("http://127.0.0.1:9/api".into()), None, Duration::from_millis(500), rt.handle().clone()).unwrap();
    let e = rt.block_on(rt.spawn_blocking(move || dead.twilight("2024-03-15"))).unwrap();
    assert!(matches!(e, Err(ServiceError::Failed(_))), "{e:?}");
}

#[test]
fn a_frame_archived_against_the_services() {
    let rt = runtime();
    let base = serve(&rt);
    let s = Scratch::new();
    let mut cfg = s.cfg.clone();
    cfg.services.api_url = Some(format!("{base}/api/"));
    cfg.services.weather_url = Some(format!("{base}/retrieval/data/getData.json"));
    let a = archiver(&rt, cfg);
    let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 17), 4);
    let p = s.path(&format!("sdata/nires/{name}"));
    frame.write(&p).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    assert_eq!(codes(&r), vec!["EPICS_ARCHIVER_WARNING", "METADATA_SCHEMA_MISSING"], "{:?}", r.diagnostics);
    let f = koa_dep::fits::load(&r.products[0]).unwrap();
    let v = |k: &str| f.hdus[0].value(k).map(|v| v.py_str());
    assert_eq!(v("PROGPI").as_deref(), Some("deKleer"));
    assert_eq!(v("OA").as_deref(), Some("jpelletier"), "the last oa/oar entry");
    assert_eq!(v("WXDOMHUM").as_deref(), Some("2.5"), "closest sample");
    assert_eq!(v("WXPRESS").as_deref(), Some("null"), "failed channel");
    assert_eq!(v("WXTIME").as_deref(), Some("08:21:15.07"), "hundredths from zero-padded nanoseconds");
    assert_eq!(v("GUIDTIME").as_deref(), Some("08:21:15.07"));
    let row = rt.block_on(a.db.get(r.id)).unwrap().unwrap();
    assert_eq!(row.propint, Some(12), "a non-default proprietary period is recorded");
    // a second frame of the same program: the program record is cached
    let before = PI_CALLS.load(std::sync::atomic::Ordering::SeqCst);
    let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:31:14.52", 18), 5);
    let p = s.path(&format!("sdata/nires/{name}"));
    frame.write(&p).unwrap();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert_eq!(r.status, Status::Complete);
    assert_eq!(PI_CALLS.load(std::sync::atomic::Ordering::SeqCst), before, "one program lookup per SEMID");
}

#[test]
fn slow_services_do_not_count_against_the_component_deadline() {
    // every answer takes 1.5 s: the component's waits add up to well over
    // its 2 s deadline, which measures the guest's own time only
    let rt = runtime();
    let base = serve_with_delay(&rt, Duration::from_millis(1500));
    let s = Scratch::new();
    let mut cfg = s.cfg.clone();
    cfg.services.api_url = Some(format!("{base}/api/"));
    cfg.services.weather_url = Some(format!("{base}/retrieval/data/getData.json"));
    let a = archiver(&rt, cfg);
    let (name, frame) = nires("spec", "object", "C272", &Obs::new("2024-03-15", "08:21:14.52", 21), 4);
    let p = s.path(&format!("sdata/nires/{name}"));
    frame.write(&p).unwrap();
    let t = std::time::Instant::now();
    let r = archive(&rt, &a, "NIRES", &p, JobOptions::default());
    assert!(t.elapsed() > Duration::from_secs(4), "the services really were slow ({:?})", t.elapsed());
    assert_eq!(r.status, Status::Complete, "{:?}", r.diagnostics);
    assert!(!codes(&r).iter().any(|c| c.starts_with("COMPONENT_")), "{:?}", r.diagnostics);
    let f = koa_dep::fits::load(&r.products[0]).unwrap();
    assert_eq!(f.hdus[0].value("PROGPI").map(|v| v.py_str()).as_deref(), Some("deKleer"));
}
